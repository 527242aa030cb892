"""The paper's findings, tested on the digits CNN trained here (issue 25, item 5).

Barratt & Sharma's claims (../shared/paper-notes.md), checked on real trained networks on any
machine, offline: the digits CNN of :mod:`harness.digits_cnn` (PyTorch seeds 0 and 1, Keras
seed 0), trained once per test session into the session's cache (``INCEPTION_NOTE_CACHE``, set
by ``conftest.py``), on scikit-learn's bundled digits.  The experiments run with the overrides of
``+experiment=paper``'s digits items (``experiments.paper.DIGITS_ITEMS``), so these tests check
what ``make run`` shows.

Every threshold is the paper's claim, not a tuned number:

* (a) IS of real test digits is high: above 8 of the maximum 10;
* (b) the PyTorch- and Keras-trained weights give different IS on the same images (paper: 11.5%
  on CIFAR-10, far beyond the split std of ~1.5%);
* (c) more splits at a fixed N give a lower mean IS (paper Table 2: 9.9147 at 1 split, 9.0884 at
  200);
* (d) contiguous splits of class-sorted data give a lower IS than shuffled data (ImageNet val
  sorted: ~63 against hundreds);
* (e) a generator replaying training images scores an IS at least as high as the real held-out
  images while every sample is a copy;
* (f) intra-class collapse to one image per class leaves IS within its own noise while FID moves
  by more than 3x its noise (the rule of ``metric_properties``: noise = how far two real sets of
  N differ, sqrt(mean((A - B)^2) / 2) over disjoint random halves A, B, two halvings per seed);
* (h) Xu et al. 2018: in a suitable feature space kernel MMD and the 1-NN test detect mode
  collapse, mode dropping and memorization, IS does not detect collapse or memorization;
* (g) FGSM with the paper's step (eps 0.001 on a [-1, 1] scale, 100 iterations, cycling
  targets) drives IS close to its maximum: 986.10 of 1000 from uniform noise (98.61%), 900.15
  of 1000 from generated CIFAR-10 images (90.02%; here: from real test digits).

Where a finding does not reproduce on digits, the test asserts what was measured and says so
(README, "Reproduced on a trained digits classifier"): (b) the difference on in-domain digits is
far below the split std; (g) the paper's step barely moves the 8x8 classifier.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import pytest

from .conftest import needs_tf, needs_torch

pytestmark = [needs_torch, needs_tf]

#: the paper's IS after FGSM as a fraction of the maximum: from uniform noise (986.10 / 1000)
#: and from images of the domain (CIFAR-10 WGAN samples, 900.15 / 1000)
PAPER_FGSM_FRACTION = {"uniform noise": 986.10 / 1000, "test digits": 900.15 / 1000}
#: IS of real images the issue expects of a 10-class classifier on its own test images
HIGH_IS = 8.0


def _cache_dir() -> str:
    return os.environ["INCEPTION_NOTE_CACHE"]


@pytest.fixture(scope="session")
def trained():
    """The default digits CNN checkpoints, trained once per session into the session cache
    (where ``weights=trained:digits_cnn/...`` finds them)."""
    from harness import digits_cnn

    t0 = time.perf_counter()
    got = digits_cnn.trained_checkpoints(_cache_dir())
    print(f"\ndigits CNNs ready in {time.perf_counter() - t0:.1f} s")
    return got


@pytest.fixture(scope="session")
def nets(trained):
    from harness import backbones

    out = {}
    for key, preset in (
        ("pytorch", "digits_torch"),
        ("keras", "digits_keras"),
        ("pytorch_seed1", "digits_torch_s1"),
    ):
        name, settings, _ = backbones.PRESETS[preset]
        out[key] = backbones.load_backbone(name, **settings, cache_dir=_cache_dir())
    return out


@pytest.fixture(scope="session")
def digits_sets():
    from harness import data

    out = {}
    for split in ("train", "test"):
        src = data.load_source("digits", split=split, progress=False)
        out[split] = (src.read_all(), np.asarray(src.labels))
    return out


def _item(label: str) -> dict:
    from experiments.paper import DIGITS_ITEMS

    (item,) = [i for i in DIGITS_ITEMS if i["label"] == label]
    return item


@pytest.fixture(scope="session")
def run_item(trained, tmp_path_factory):
    """Runs one of ``paper``'s digits items as ``make run`` does (once per session)."""
    from harness.api import run_experiment

    done = {}

    def run(label: str):
        if label not in done:
            item = _item(label)
            t0 = time.perf_counter()
            out = run_experiment(
                item["name"],
                [*item["overrides"], "seed=0", "progress=false"],
                tmp_path_factory.mktemp(label),
            )
            print(f"\n{label}: {time.perf_counter() - t0:.1f} s")
            done[label] = out
        return done[label]

    return run


# ---------------------------------------------------------------------------- (a) and (b)
def test_a_real_test_digits_get_a_high_inception_score(run_item):
    t = run_item("digits_weights_sensitivity").table
    test = t[t.dataset_key == "digits_test"].set_index("backbone_key")
    print("\n(a) IS of the 539 test digits, 10 splits:", test.is_mean.round(4).to_dict())
    assert set(test.index) == {"pytorch", "keras", "pytorch_seed1"}
    assert (test.is_mean > HIGH_IS).all(), test.is_mean
    # top-1 through the backbone contract (the digits' label space is the networks')
    assert (test.top1 > 0.95).all(), test.top1
    # exp S(G) = IS with one split over all 539 (no split bias): also above 8
    assert (np.exp(test.sg_nats) > HIGH_IS).all()
    assert (test.num_classes == 10).all() and test.paper_is_mean.isna().all()


def test_b_pytorch_and_keras_weights_differ_but_far_less_than_the_split_std(run_item):
    """Paper: Keras vs Torch differ by 11.5% on CIFAR-10, ~8x the split std (0.148-0.181).
    Measured on the digits test images: a difference far below the split std (the networks
    are confident on in-domain digits, so IS is set by the images' class balance): the
    finding does not reproduce in the paper's magnitude; the test asserts what was measured."""
    t = run_item("digits_weights_sensitivity").table
    test = t[t.dataset_key == "digits_test"].set_index("backbone_key")
    torch_is, keras_is = test.loc["pytorch", "is_mean"], test.loc["keras", "is_mean"]
    diff = keras_is - torch_is
    std = min(test.loc["pytorch", "is_std"], test.loc["keras", "is_std"])
    print(
        f"\n(b) digits test: keras {keras_is:.4f} vs pytorch {torch_is:.4f}: "
        f"{diff / torch_is * 100:+.3f}% ({abs(diff) / std:.3f}x the split std {std:.4f}); "
        f"pytorch_seed1 {test.loc['pytorch_seed1', 'is_mean']:.4f}"
    )
    for dkey in ("noise", "photo_tiles"):
        sub = t[t.dataset_key == dkey].set_index("backbone_key")
        print(f"    {dkey}: " + ", ".join(f"{k} {v:.4f}" for k, v in sub.is_mean.items()))
    assert diff != 0  # different weights, different numbers
    assert abs(diff) < std  # ... but not beyond the split std (not the paper's 11.5%)


# ---------------------------------------------------------------------------- (c)
def test_c_more_splits_at_fixed_n_give_a_lower_mean_is(run_item):
    t = run_item("digits_splits").table
    ks, means = t.n_splits.tolist(), t.is_mean.to_numpy()
    print("\n(c) IS by n_splits (N=539):", {k: round(float(v), 4) for k, v in zip(ks, means)})
    assert ks == sorted(ks) and ks[0] == 1 and len(ks) >= 3
    assert np.all(np.diff(means) < 0), means  # strictly falling, as in the paper's Table 2
    # one split over all N is exp S(G) (a closed form: the same marginal)
    assert means[0] == pytest.approx(t.exp_sg.iloc[0], rel=1e-12)


# ---------------------------------------------------------------------------- (d)
def test_d_class_sorted_contiguous_splits_score_lower_than_shuffled(run_item):
    out = run_item("digits_ordering")
    t = out.table
    loaded = t[t.split_order == "as_loaded"].iloc[0]
    shuffled = t[t.split_order != "as_loaded"]
    print(
        f"\n(d) class-sorted, contiguous: {loaded.is_mean:.4f} ± {loaded.is_std:.4f} "
        f"({loaded.mean_distinct_predicted_classes_per_split:.1f} classes per split); shuffled "
        f"over {len(shuffled)} seeds: {shuffled.is_mean.min():.4f} .. {shuffled.is_mean.max():.4f}"
    )
    assert (t.arrangement == "class_sorted").all()
    assert len(shuffled) >= 2
    assert (loaded.is_mean < shuffled.is_mean).all()


# ---------------------------------------------------------------------------- (e)
def test_e_a_replaying_generator_scores_at_least_the_real_is_with_every_sample_a_copy(run_item):
    t = run_item("digits_memorization").table
    replay = t[t.memorised_images == 1258].iloc[0]  # replays the whole training split
    held = t[t.memorised_images == 0].iloc[0]  # the real held-out test digits
    print(
        f"\n(e) replaying the 1,258 training digits: IS {replay.is_mean:.4f}, copy rate "
        f"{replay.nn_dup_rate_vs_train:.3f}, FID vs train {replay.fid_vs_train:.3f}; held-out: "
        f"IS {held.is_mean:.4f}, copy rate {held.nn_dup_rate_vs_train:.4f}, FID vs train "
        f"{held.fid_vs_train:.3f}"
    )
    assert replay.nn_dup_rate_vs_train == 1.0
    assert replay.is_mean >= held.is_mean
    assert held.nn_dup_rate_vs_train < 1.0
    # issue 27: the statistics made for this catch it where IS cannot.  C_T is a z-score (Meehan
    # et al.: << 0 is copying; -3 is the one-sided 0.13% level); every copy is inauthentic
    # (Alaa et al.: closer to its training image than that image's own nearest neighbour)
    print(
        f"    C_T: replay {replay.ct:.2f}, held-out {held.ct:.2f}; authenticity: replay "
        f"{replay.authenticity:.3f}, held-out {held.authenticity:.3f}"
    )
    assert replay.ct < -3 < held.ct
    assert replay.authenticity == 0.0 < held.authenticity


# ---------------------------------------------------------------------------- issue 27
def test_extrapolated_scores_from_one_pass_on_the_trained_digits_cnn(
    trained, tmp_path, monkeypatch
):
    """Sanity check 1 on 1,258 real digits (N >= 1,000): IS_inf and FID_inf with their
    standard errors, from the one pass of the samples and of the reference (counted).  Chong &
    Forsyth's finding: FID at finite N is biased upwards, so the line in 1/N falls towards
    N = inf (FID_inf below FID at N); the full-set point of the fit is check 10's FID."""
    from harness.api import run_experiment
    from harness.backbones.base import Backbone

    calls, forward = [], Backbone.forward

    def counted(self, images, features=False):
        calls.append(len(images))
        return forward(self, images, features)

    monkeypatch.setattr(Backbone, "forward", counted)
    item = _item("digits_sanity")
    over = [
        o.replace("split=test", "split=train") if o.startswith("dataset.") else o
        for o in item["overrides"]
    ]
    over = [o.replace("reference.split=train", "reference.split=test") for o in over]
    res = run_experiment(
        "sanity",
        [*over, "checks=[1,10]", "cache.enabled=false", "progress=false"],
        tmp_path / "run",
    )
    assert sum(calls) == 1258 + 539  # one pass of the samples, one of the reference
    import json

    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    c1, c10 = ({c["id"]: c for c in rep["checks"]}[i] for i in (1, 10))
    d = c1["details"]
    print(
        f"\nIS_inf {d['is_inf']:.4f} ± {d['is_inf_se']:.2g} (1 split at N: {d['is_inf_at_n']:.4f})"
        f"; FID_inf {d['fid_inf']:.4f} ± {d['fid_inf_se']:.2g} (at N: {d['fid_inf_at_n']:.4f})"
    )
    assert c1["value"] == 1258 and d["is_inf_sizes_count"] == d["fid_inf_sizes_count"] == 15
    assert d["fid_inf_slope"] > 0 and d["fid_inf"] < d["fid_inf_at_n"]
    assert d["fid_inf_at_n"] == pytest.approx(c10["details"]["fid"], rel=1e-9)
    assert "IS_inf = " in c1["why"] and "FID_inf = " in c1["why"]
    assert res.result.random_weights is False


# ---------------------------------------------------------------------------- (f)
def _one_image_per_class(labels: np.ndarray, rng) -> np.ndarray:
    """Rows of a collapsed set: every position keeps its class but shows one image of it."""
    rows = np.arange(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rows[members] = rng.choice(members)
    return rows


def test_f_intra_class_collapse_moves_fid_beyond_its_noise_but_not_is(nets, digits_sets):
    """Computed here from the classifier's logits and penultimate features (harness.scores,
    harness.feature_metrics), with the noise rule of metric_properties."""
    from harness import feature_metrics as fm
    from harness import scores

    net = nets["pytorch"]
    (x_test, y_test), (x_train, _) = digits_sets["test"], digits_sets["train"]
    logits, feats = net.forward(x_test, features=True)
    _, ref = net.forward(x_train, features=True)
    probs = scores.softmax(logits.astype(np.float64))

    def metrics(rows):
        with warnings.catch_warnings():  # a collapsed set has 10 distinct rows: rank-deficient
            warnings.simplefilter("ignore", fm.RankDeficientWarning)
            fid = fm.fid(feats[rows], ref).value
        return scores.inception_score(probs[rows], n_splits=10).mean, fid

    n = len(y_test)
    base_is, base_fid = metrics(np.arange(n))
    seeds = (0, 1, 2)
    diffs = []
    for s in seeds:
        for key in ([s, 999], [s, 999, 1]):  # two halvings per seed
            perm = np.random.default_rng(key).permutation(n)
            diffs.append(np.subtract(metrics(perm[: n // 2]), metrics(perm[n // 2 :])))
    noise_is, noise_fid = np.sqrt(np.mean(np.square(diffs), axis=0) / 2)
    collapsed = np.array(
        [metrics(_one_image_per_class(y_test, np.random.default_rng([s, 1]))) for s in seeds]
    )
    d_is, d_fid = collapsed.mean(axis=0) - (base_is, base_fid)
    print(
        f"\n(f) one image per class: IS {base_is:.4f} -> {base_is + d_is:.4f} ({d_is:+.4f}, "
        f"{d_is / base_is * 100:+.2f}%; noise {noise_is:.4f}, {abs(d_is) / noise_is:.2f}x); FID "
        f"{base_fid:.3f} -> {base_fid + d_fid:.3f} ({d_fid / noise_fid:.1f}x its noise "
        f"{noise_fid:.4f})"
    )
    assert abs(d_is) <= 3 * noise_is
    assert abs(d_fid) > 3 * noise_fid


# ---------------------------------------------------------------------------- (g)
def _fgsm(net, images, eps: float):
    from harness import attack

    settings = attack.AttackSettings(
        eps=eps, eps_units="minus_one_one", iterations=100, n_splits=10, batch_size=100
    )
    targets = attack.cycling_targets(len(images), net.num_classes)
    res = attack.run_attack(net, images, settings, targets=targets, progress=False)
    return res.final["start"], res.final["quantized_uint8"], res.final["max_possible_is"]


@pytest.fixture(scope="session")
def attack_starts(digits_sets):
    from harness import data

    noise = data.load_source("noise", size=8, count=100, seed=0, progress=False).read_all()
    return {"uniform noise": noise, "test digits": digits_sets["test"][0][:100]}


def test_g_fgsm_with_the_papers_step_does_not_drive_the_digits_is_to_its_maximum(
    nets, attack_starts
):
    """Paper: 98.61% of the maximum from uniform noise, 90.02% from generated images.
    Measured with the paper's step on the 8x8 digits CNN (IS over 10 splits of 10, as the
    paper's classic IS; each split holds every target once, so its maximum is 10): from noise
    IS rises, but far from the maximum; from test digits it does not rise: the finding does not
    reproduce; the test asserts what was measured."""
    net = nets["pytorch"]
    got = {}
    for start, images in attack_starts.items():
        before, after, top = _fgsm(net, images, 0.001)
        got[start] = (before, after)
        print(
            f"\n(g) {start}, eps 0.001 x 100: IS {before['is_mean']:.3f} -> {after['is_mean']:.3f}"
            f" (10 splits), {before['is_1split']:.3f} -> {after['is_1split']:.3f} (1 split) of "
            f"{top}; target probability {before['mean_target_prob']:.3f} -> "
            f"{after['mean_target_prob']:.3f}"
        )
        assert top == 10
        assert after["is_mean"] < PAPER_FGSM_FRACTION[start] * top  # not close to the maximum
    noise_before, noise_after = got["uniform noise"]
    assert noise_after["is_1split"] < PAPER_FGSM_FRACTION["uniform noise"] * 10
    assert noise_after["is_mean"] > noise_before["is_mean"]  # it does rise from noise
    digits_before, digits_after = got["test digits"]
    for key in ("is_mean", "is_1split"):
        assert digits_after[key] <= digits_before[key]  # ... and not from the test digits


def test_g_fgsm_with_ten_times_the_papers_step_reaches_the_maximum(nets, attack_starts):
    """Not the paper's setting: the same attack with eps 0.01 (100 steps: up to the whole
    [-1, 1] range) reaches the paper's fractions of the maximum (98.61% from noise, 90.02%
    from images of the domain), so the gap above is the step size on a 64-pixel input, not a
    broken gradient path."""
    net = nets["pytorch"]
    for start, images in attack_starts.items():
        before, after, top = _fgsm(net, images, 0.01)
        print(
            f"\n(g') {start}, eps 0.01 x 100: IS {before['is_mean']:.4f} -> "
            f"{after['is_mean']:.4f} of {top} (10 splits)"
        )
        assert after["is_mean"] > before["is_mean"]
        assert after["is_mean"] >= PAPER_FGSM_FRACTION[start] * top


# ---------------------------------------------------------------------------- (h)
def test_h_xu_et_als_metric_properties_on_the_digits_features(trained, tmp_path):
    """``paper``'s digits metric_properties item, narrowed to the corruptions Xu et al.'s claim
    is about and the metrics it names (IS, kernel MMD, 1-NN; FID beside them), the rule of
    ``metric_properties`` (|effect| > 3 x the set-to-set noise, memorization by its contrast
    between reference halves).  Reproduces: MMD and 1-NN detect collapse, dropping and
    memorization; IS detects neither collapse nor memorization.  Measured, not their claim:
    on 8x8 digits a 1 px shift (1/8 of the image) moves MMD and 1-NN (and IS) beyond the
    noise, so no metric here is "robust to small transforms"."""
    from harness.api import run_experiment

    item = _item("digits_metric_properties")
    # the item's own row selections (the same draws, so the same values as ``make run``)
    keep = ("corruptions.intra_class_collapse", "corruptions.mode_dropping")
    keep += ("corruptions.memorization=", "corruptions.shift")
    overrides = [o for o in item["overrides"] if o.startswith(keep) or "corruptions." not in o]
    overrides += [
        f"corruptions.{c}=[]"
        for c in ("memorization_jittered", "noise", "rotate", "jpeg", "blur", "sample_size")
    ]
    overrides += [
        "extra_metrics=[mmd2,one_nn_accuracy]",
        "detection.sample_efficiency=false",
        "seed=0",
        "progress=false",
    ]
    t0 = time.perf_counter()
    res = run_experiment(item["name"], overrides, tmp_path / "run").result
    det = res.tables["detects"].set_index(["metric", "corruption"])
    print(f"\n(h) {time.perf_counter() - t0:.1f} s")
    print(det[["change_at_strongest", "noise_std", "effect_in_noise_units", "direction"]])
    for metric in ("mmd2", "one_nn_accuracy", "fid"):
        for corr in ("intra_class_collapse", "mode_dropping", "memorization"):
            assert det.loc[(metric, corr), "detects"], (metric, corr)
    # ... but MMD only just: every sample a copy moves it 3.5x its noise (1-NN: 19x)
    assert 3 < abs(det.loc[("mmd2", "memorization"), "effect_in_noise_units"]) < 5
    for corr in ("intra_class_collapse", "memorization"):
        assert not det.loc[("is_mean", corr), "detects"], corr
    # memorization: FID and MMD call copying the reference *better*, 1-NN worse (below 0.5)
    assert det.loc[("fid", "memorization"), "direction"] == "better"
    assert det.loc[("mmd2", "memorization"), "direction"] == "better"
    assert det.loc[("one_nn_accuracy", "memorization"), "direction"] == "worse"
    # measured (not Xu et al.'s claim): a 1 px shift of an 8x8 digit moves MMD and 1-NN
    assert (
        det.loc[("mmd2", "shift"), "detects"] and det.loc[("one_nn_accuracy", "shift"), "detects"]
    )


# ---------------------------------------------------------------------------- the inputs
def test_class_sorted_is_a_stable_sort_of_the_split_by_label():
    from harness import data

    loaded = data.load_source("digits", split="test", progress=False)
    ordered = data.load_source("digits", split="test", arrangement="class_sorted", progress=False)
    y, idx = np.asarray(loaded.labels), loaded.original_indices
    # independent: sort (label, original index) pairs
    want = [i for _, i in sorted(zip(y.tolist(), idx.tolist()))]
    assert ordered.original_indices.tolist() == want
    assert np.all(np.diff(ordered.labels) >= 0)
    x_l, x_o = loaded.read_all(), ordered.read_all()
    pos = {i: k for k, i in enumerate(idx.tolist())}
    np.testing.assert_array_equal(x_o, x_l[[pos[i] for i in want]])
    assert ordered.fingerprint() != loaded.fingerprint()
    assert ordered.provenance()["arrangement"] == "class_sorted"
    assert loaded.provenance()["arrangement"] == "as_loaded"


def test_photo_tiles_follow_their_documented_rules():
    """Every rule recomputed here in floats and loops from scikit-learn's photographs."""
    from sklearn.datasets import load_sample_images

    from harness import data
    from harness.errors import HarnessError

    bunch = load_sample_images()
    by_name = {
        str(f).replace("\\", "/").rsplit("/", 1)[-1]: im
        for f, im in zip(bunch.filenames, bunch.images)
    }
    size, block, tiles = 8, 4, []
    for name in ("china.jpg", "flower.jpg"):
        rgb = by_name[name].astype(np.float64)
        grey = np.floor(rgb.mean(axis=-1) + 0.5)  # (R+G+B)/3 has no .5: any rounding agrees
        h, w = grey.shape[0] // block, grey.shape[1] // block
        small = np.empty((h, w))
        for i in range(h):
            for j in range(w):
                small[i, j] = math.floor(
                    grey[i * block : (i + 1) * block, j * block : (j + 1) * block].mean() + 0.5
                )
        for i in range(h // size):
            for j in range(w // size):
                tiles.append(small[i * size : (i + 1) * size, j * size : (j + 1) * size])
    chosen = np.sort(np.random.default_rng(3).choice(len(tiles), 50, replace=False))
    src = data.load_source("photo_tiles", size=size, block=block, count=50, seed=3, progress=False)
    x = src.read_all()
    assert src.total_tiles == len(tiles) == 2 * (106 // 8) * (160 // 8)
    assert x.shape == (50, 8, 8, 3) and x.dtype == np.uint8 and src.labels is None
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all()
    np.testing.assert_array_equal(x[..., 0], np.stack([tiles[i] for i in chosen]))
    assert (
        src.fingerprint()
        != data.load_source(
            "photo_tiles", size=size, block=block, count=50, seed=4, progress=False
        ).fingerprint()
    )
    with pytest.raises(HarnessError, match="make only 120 tiles"):
        data.load_source("photo_tiles", count=121)


def test_the_digits_items_compose_and_never_take_the_runs_weights_or_device():
    from experiments import paper
    from harness.api import compose
    from harness.errors import ConfigError

    cfg = compose("paper", ["weights=random:0", "device=cuda", "seed=3"])
    items = [i for i in cfg.paper.experiments if i.get("section") == "digits"]
    assert [i.label for i in items] == [i["label"] for i in paper.DIGITS_ITEMS]
    assert all(i.label.startswith("digits_") for i in items)
    for item in items:
        passed = paper._item_passthrough(item, cfg)
        assert passed == ["seed=3", "progress=true"], passed
        compose(item.name, [*item.overrides, *passed])  # each composes and validates
    inception = [i for i in cfg.paper.experiments if i.get("section") is None]
    assert "weights=random:0" in paper._item_passthrough(inception[-1], cfg)
    with pytest.raises(ConfigError, match="passthrough"):
        compose("paper", ["paper.experiments=[{name: splits, passthrough: [colour]}]"])
    with pytest.raises(ConfigError, match="used twice"):
        compose("paper", ["paper.experiments=[{name: splits}, {name: splits}]"])
