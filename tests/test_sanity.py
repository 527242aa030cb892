"""Each sanity check fires on a crafted input and stays quiet on a clean one; report schema."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import data, sanity, scores
from harness.scores import SplitSpec

from .conftest import needs_torch

TEN = SplitSpec(10)

ROOT = Path(__file__).resolve().parent.parent


def clean_probs(n=6000, c=100, seed=0):
    """Confident, class-balanced, well-mixed predictions (an ImageNet-like sample)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    p = np.full((n, c), 0.05 / (c - 1))
    p[np.arange(n), y] = 0.95
    return scores.prepare(p)


def natural_images(n=50, seed=0):
    return data.load_source("synthetic", count=n, seed=seed).read_all()


def test_sample_count():
    big = clean_probs(n=50_000, c=50)
    assert sanity.check_sample_count(big, TEN).status == sanity.PASS
    small = sanity.check_sample_count(clean_probs(n=2000), TEN)
    assert small.status == sanity.FAIL and small.value == 2000
    mid = sanity.check_sample_count(clean_probs(n=8000), TEN)
    assert mid.status == sanity.WARN
    # the extrapolated value at 50,000 is above the biased value at N (more samples per split)
    assert mid.details["predicted_is_at_50000"] > mid.details["is_at_n"]


def test_sample_count_reports_is_inf_and_fid_inf_from_the_given_arrays():
    """Issue 27: check 1 gives IS_inf and FID_inf (the extrapolation module's defaults: 15
    sizes from N/10, seed 0) with their standard errors when N >= 1,000; FID_inf needs a
    reference (said when there is none); below 1,000 nothing is fitted."""
    from harness import extrapolation as ex

    probs = clean_probs(n=2000)
    rng = np.random.default_rng(1)
    feats, ref = rng.normal(size=(2000, 8)), rng.normal(size=(3000, 8)) + 0.2
    c = sanity.check_sample_count(probs, TEN, features=feats, reference=ref)
    want_is, want_fid = ex.is_infinity(probs.probs), ex.fid_infinity(feats, ref)
    assert (c.details["is_inf"], c.details["is_inf_se"]) == (want_is.value, want_is.stderr)
    assert c.details["fid_inf"] == pytest.approx(want_fid.value, rel=1e-12)
    assert f"IS_inf = {want_is.value:.4g}" in c.why and "FID_inf = " in c.why
    c = sanity.check_sample_count(probs, TEN, features=feats)
    assert "fid_inf" not in c.details and "no reference" in c.details["fid_inf_note"]
    c = sanity.check_sample_count(clean_probs(n=999), TEN, features=feats[:999], reference=ref)
    assert "is_inf" not in c.details and c.details["extrapolation"].startswith("not attempted")


def test_input_format_fires_on_wrong_ranges_constant_and_bgr():
    good = natural_images()
    assert sanity.check_input_format(good).status == sanity.PASS
    zero_one = (good / 255.0).astype(np.uint8)  # [0, 1] floats cast to uint8: only 0 and 1
    c = sanity.check_input_format(zero_one)
    assert c.status == sanity.FAIL and "[0, 1] floats" in " ".join(c.details["problems"])
    m11 = good.astype(np.float64) / 127.5 - 1  # [-1, 1] written as uint8 by *255, clipped at 0
    clipped = np.clip(m11 * 255, 0, 255).astype(np.uint8)
    c = sanity.check_input_format(clipped)
    assert c.status == sanity.WARN and "clipped at 0" in " ".join(c.details["problems"])
    const = np.full_like(good, 120)
    assert sanity.check_input_format(const).status == sanity.FAIL
    # natural-looking colour statistics (ImageNet mean RGB ~ 124/116/104), then B and R swapped
    rng = np.random.default_rng(1)
    warm = np.clip(rng.normal([140, 118, 80], 30, size=(20, 16, 16, 3)), 0, 255).astype(np.uint8)
    assert sanity.check_input_format(warm).value["bgr_suspicion"] == "none"
    c = sanity.check_input_format(warm[..., ::-1])
    assert c.status == sanity.WARN and "BGR" in " ".join(c.details["problems"])
    assert c.value["bgr_suspicion"] in ("medium", "high")
    # a blue tint alone (sky, sea) is not evidence of swapped channels
    sky = np.clip(rng.normal([100, 140, 200], 30, size=(20, 16, 16, 3)), 0, 255).astype(np.uint8)
    c = sanity.check_input_format(sky)
    assert c.status == sanity.PASS and c.value["bgr_suspicion"] in ("none", "low")


def test_order_fires_on_class_sorted_samples():
    prep = clean_probs()
    assert sanity.check_order(prep, TEN).status == sanity.PASS
    order = np.argsort(prep.probs.argmax(1), kind="stable")
    sorted_prep = scores.PreparedProbs(prep.probs[order], prep.neg_entropy[order])
    c = sanity.check_order(sorted_prep, TEN)
    assert c.status == sanity.WARN
    assert c.value["mean_run_length"] > 10 and c.value["is_as_loaded"] < c.value["is_shuffled"]


def test_splits_flags_a_gap_larger_than_the_std():
    # quiet only when each split's marginal is estimated well (2 classes, 5,000 samples per split)
    assert sanity.check_splits(clean_probs(n=50_000, c=2), TEN).status == sanity.PASS
    # with 100 classes the split bias already exceeds the std over splits at 50,000 samples:
    # the systematic error the paper describes, which the reported +- does not cover
    c = sanity.check_splits(clean_probs(n=50_000), TEN)
    assert c.status == sanity.WARN and c.details["gap"] > 3 * c.value["is_10_splits_std"]
    small = sanity.check_splits(clean_probs(n=300), TEN)  # 30 samples per split for 100 classes
    assert small.status == sanity.WARN and small.details["gap"] > small.value["is_10_splits_std"]


def test_backbone_spread_and_preprocessing():
    assert (
        sanity.check_backbone_spread(
            {"tf2015": 10.0, "torchvision": 10.2}, "tf2015", "tf2015"
        ).status
        == sanity.PASS
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": 11.2}, "tf2015", "tf2015").status
        == sanity.WARN
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": 10.1}, "keras", "tf2015").status
        == sanity.WARN
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": None}, "tf2015", "tf2015").status
        == sanity.WARN
    )
    assert sanity.check_preprocessing({"a": 10.0, "b": 10.1}, "a").status == sanity.PASS
    assert sanity.check_preprocessing({"a": 10.0, "b": 10.5}, "a").value[
        "spread_pct"
    ] == pytest.approx(5.0)


def test_memorization_copies_and_collapse():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 64)) + 5  # features with a shared mean, like ReLU pool features
    fresh = rng.normal(size=(200, 64)) + 5
    assert sanity.check_memorization(fresh, train, 0.995).status == sanity.PASS
    copies = np.concatenate([fresh[:190], train[:10]])  # 5% copied
    c = sanity.check_memorization(copies, train, 0.995)
    assert c.status == sanity.FAIL and c.value["copied_from_reference"] == pytest.approx(0.05)
    collapsed = np.repeat(fresh[:20], 10, axis=0)
    assert sanity.check_memorization(collapsed, None, 0.995).status == sanity.FAIL
    # issue 27: C_T and authenticity beside the copy rates (reported, not judged); samples
    # that are all reference images are never authentic, and C_T is far below 0
    assert sanity.check_memorization(collapsed, None, 0.995).value["ct"] is None
    c = sanity.check_memorization(train[:100], train, 0.995)
    assert c.value["authenticity"] == 0.0 and c.value["ct"] < -3
    assert c.details["ct_sets"] == "train / held-out: seeded halves of the reference set"
    c = sanity.check_memorization(fresh, train, 0.995)
    assert c.status == sanity.PASS and c.value["authenticity"] > 0 and c.value["ct"] > -3


def test_domain_fit_and_numerics():
    assert sanity.check_domain_fit(clean_probs()).status == sanity.PASS
    flat = scores.prepare(np.full((100, 1000), 1e-3))
    assert sanity.check_domain_fit(flat).status == sanity.FAIL
    logits = np.array([[0.0, -2000.0], [1.0, 2.0]])
    c = sanity.check_numerics(logits, scores.prepare(scores.softmax(logits)))
    assert c.status == sanity.PASS and c.value["underflowed_rows"] == 1
    assert sanity.check_numerics(np.array([[np.nan, 0]]), clean_probs(10, 2)).status == sanity.FAIL


def test_reporting_line():
    prov = {
        "backbone": "tf2015_torch",
        "weights": "pretrained",
        "weights_kind": "pretrained",
        "weights_title": "Inception 2015-12-05 graph (PyTorch port)",
        "weights_sha256": "0cc3c7bd" + "a" * 56,
        "resize": "tf1_bilinear",
        "input_size": 299,
    }
    r = scores.ISResult(
        8.1234,
        0.0912,
        np.zeros(10),
        10,
        50000,
        0,
        split_sizes=(5000,) * 10,
        spec=scores.SplitSpec(10),
    )
    line, latex = sanity.reporting_line(prov, r, 2.0712)
    assert line == (
        "IS = 8.12 ± 0.09 (mean ± std over 10 splits of 5,000; Inception 2015-12-05 graph "
        "(PyTorch port), sha256 0cc3c7bdaaaa…; TF1 bilinear to 299; 50,000 samples) · "
        "S(G) = 2.07 nats"
    )
    assert latex.startswith(r"$\mathrm{IS} = 8.12 \pm 0.09$") and "50{,}000" in latex
    rnd = {**prov, "weights_kind": "random", "weights": "random:0", "weights_sha256": "random:0"}
    assert sanity.reporting_line(rnd, r, 2.0712)[0].startswith("RANDOM WEIGHTS, not a real")
    shuffled = scores.ISResult(
        8.0,
        0.1,
        np.zeros(10),
        10,
        50001,
        1,
        split_sizes=(5000, 5001),
        spec=scores.SplitSpec(10, "floor", "numpy_randomstate", 2020, 1),
    )
    line = sanity.reporting_line(prov, shuffled, 2.0)[0]
    assert "sample std (n-1) over 10 splits of 5,000-5,001 after a seeded shuffle" in line


def test_format_value_units_and_digits():
    assert sanity.format_value("spread_pct", 3.2612345) == "3.26%"
    assert sanity.format_value("sg_bits", 2.07123) == "2.071 bits"
    assert sanity.format_value("x", 78.41999816894531) == "78.42"
    assert sanity.format_value("n", 50000) == "50,000"
    v = {"a": 1.0, "b": 2.5, "c": 3.25, "d": 4.0, "e_pct": 5.0}  # no truncation to 4 entries
    assert sanity.format_value("v", v) == "a = 1; b = 2.5; c = 3.25; d = 4; e_pct = 5.00%"


REPORT_KEYS = {
    "report_version",
    "random_weights",
    "reporting_line",
    "reporting_line_latex",
    "summary",
    "checks",
    "backbone",
    "samples",
    "reference",
}
CHECK_KEYS = {"id", "name", "status", "value", "threshold", "why", "fix", "details"}


@needs_torch
def test_sanity_experiment_end_to_end_json_schema_and_strict_exit(tmp_path):
    x = data.load_source("synthetic", count=60).read_all()
    np.savez(tmp_path / "samples.npz", images=x)
    np.savez(
        tmp_path / "train.npz",
        images=np.concatenate([x[:30], data.load_source("synthetic", count=30, seed=9).read_all()]),
    )
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "+experiment=sanity",
        "weights=random:0",
        "dataset=arrays",
        f"dataset.path={tmp_path / 'samples.npz'}",
        "+dataset@reference=arrays",
        f"reference.path={tmp_path / 'train.npz'}",
        "backbone.input_size=75",
        "~other_backbones",
        "progress=false",
        "n_splits=4",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    r = subprocess.run(cmd + ["strict=true"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "check(s) FAILED" in r.stderr.strip().splitlines()[-1]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert REPORT_KEYS <= set(rep) and rep["random_weights"] is True
    assert [c["id"] for c in rep["checks"]] == list(range(1, 13))  # 10: FID/KID (reference)
    for c in rep["checks"]:
        # random weights: check 8 (domain fit) is measured but not judged; 12 needs encoders=
        judged = {8: (sanity.NOT_JUDGED,), 12: (sanity.NOT_RUN,)}.get(
            c["id"], ("PASS", "WARN", "FAIL")
        )
        assert CHECK_KEYS <= set(c) and c["status"] in judged
    by = {c["name"]: c for c in rep["checks"]}
    assert by["sample_count"]["status"] == "FAIL"  # 60 samples
    assert by["memorization_collapse"]["value"]["copied_from_reference"] == pytest.approx(
        0.5
    )  # 30 of 60 copied
    assert "RANDOM WEIGHTS" in rep["reporting_line"] and "60 samples" in rep["reporting_line"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Reporting line" in md and "RANDOM WEIGHTS" in md
    for f in ("check3_order.png", "check4_splits.png", "check6_resize.png"):
        assert (tmp_path / "run" / f).exists()
    # one backbone only (~other_backbones): a sentence, not a single-bar chart
    assert not (tmp_path / "run" / "check5_backbones.png").exists() and "no chart" in md
    # the same run dir is not reused by accident ...
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (
        r.returncode == 2 and "already holds results" in r.stderr and "overwrite=true" in r.stderr
    )
    # ... and without strict the same run exits 0 (check 1 alone: it FAILs at 60 samples)
    r = subprocess.run(
        cmd + ["overwrite=true", "checks=[1]"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [(c["id"], c["status"]) for c in rep["checks"]] == [(1, "FAIL")]


def _sanity_api(tmp_path, *extra):
    from harness import api

    x = data.load_source("synthetic", count=40).read_all()
    np.savez(tmp_path / "s.npz", images=x)
    return api.run_experiment(
        "sanity",
        [
            "weights=random:0",
            "dataset=arrays",
            f"dataset.path={tmp_path / 's.npz'}",
            "backbone.input_size=75",
            "~other_backbones",
            "progress=false",
            "n_splits=4",
            f"cache.dir={tmp_path / 'cache'}",
            *extra,
        ],
        run_dir=tmp_path / "run",
    )


@pytest.fixture
def count_passes(monkeypatch):
    """Network passes over a source (cache misses), recorded as (backbone, resize) pairs."""
    from harness.cache import LogitsCache

    passes, orig = [], LogitsCache.get

    def get(self, backbone, source, *a, **k):
        res = orig(self, backbone, source, *a, **k)
        if not res.from_cache:
            passes.append((backbone.name, backbone.provenance()["resize"]))
        return res

    monkeypatch.setattr(LogitsCache, "get", get)
    return passes


@needs_torch
def test_quick_report_is_one_network_pass(tmp_path, count_passes):
    res = _sanity_api(tmp_path, "quick=true")
    assert count_passes == [("tf2015_torch", "tf1_bilinear")]
    ids = [int(c.split(".")[0]) for c in res.table.check]
    assert 5 not in ids and 6 not in ids and {1, 2, 3, 4, 7, 8, 9, 11} <= set(ids)


@needs_torch
def test_identical_resizes_share_one_pass_and_checks_select(tmp_path, count_passes):
    _sanity_api(tmp_path, "backbone=torchvision", "checks=[6]")
    resizes = [r for _, r in count_passes]
    # native = torch bilinear align_corners=True (computed once for both names); tf2_bilinear =
    # torch bilinear align_corners=False (one pass for both)
    assert len(resizes) == len(set(resizes)) == 5, resizes
    assert not {"tf2_bilinear", "torch_bilinear(align_corners=False)"} <= set(resizes)
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [c["id"] for c in rep["checks"]] == [6]


@needs_torch
def test_every_value_is_in_report_md_and_the_line_says_what_it_is(tmp_path):
    _sanity_api(tmp_path)
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    md = (tmp_path / "run" / "report.md").read_text()
    for c in rep["checks"]:
        values = c["value"] if isinstance(c["value"], dict) else {c["name"]: c["value"]}
        for k, v in {
            **values,
            **{k: v for k, v in c["details"].items() if k != "problems"},
        }.items():
            assert sanity.format_value(k, v) in md, (c["name"], k)
    line = rep["reporting_line"]
    assert "over 4 splits of 10" in line and "sha256" in line and "TF1 bilinear to 75" in line
    assert line.startswith("RANDOM WEIGHTS") and "40 samples" in line
    assert "78.41999816894531" not in md


def test_figures_have_labelled_axes():
    import pandas as pd

    from harness.sanity import report as exp

    fig = exp.bars_figure({"a": 10.0, "b": 10.3, "c": None}, "a", "backbone", "check 5")
    (ax,) = fig.axes
    assert ax.get_ylabel() and ax.get_xlabel() and ax.get_ylim()[0] > 0  # not from 0: annotated
    assert any("10.3" in t.get_text() for t in ax.texts) and "spread 3.00%" in ax.get_title()
    assert exp.bars_figure({"a": 10.0}, "a", "backbone", "one bar") is None  # a sentence instead
    t = pd.DataFrame(
        {
            "n_splits": [1, 2, 5],
            "is_mean": [3.0, 2.9, 2.8],
            "is_std": [0, 0.1, 0.1],
            "exp_sg": [3.0] * 3,
        }
    )
    ax = exp.splits_figure(t).axes[0]
    assert ax.get_ylabel() and ax.get_xlabel() == "number of splits"
    assert [tk.get_text() for tk in ax.get_xticklabels()][:3] == ["1", "2", "5"]
    rep = {  # check 3 found by its id (checks=[3] alone made it the first entry)
        "checks": [
            {"id": 1},
            {
                "id": 3,
                "details": {"split_scores_as_loaded": [1, 2], "split_scores_shuffled": [2, 1]},
            },
        ]
    }
    ax = exp.order_figure(rep).axes[0]
    assert ax.get_ylabel() and ax.get_xlabel() == "split"


# ------------------------------------------------------------------------------ 12 encoder spread
def _spread_cfg(**kw):
    from types import SimpleNamespace

    base = {"seed": 0, "max_images": 1000, "permutations": 39, "alpha": 0.05}
    return SimpleNamespace(**{**base, "cmmd_estimator": "reference", **kw})


def test_encoder_test_tells_apart_a_shift_and_a_loss_of_diversity_and_is_calibrated():
    """Check 12's per-network permutation test.  A shifted set and a less diverse one (0.8 x the
    reference's spread in 64 dimensions, n = 200: where comparing with a second real set called
    it "as close as real", FD's small-n bias growing with diversity) are told apart in every
    seed; samples drawn as the reference is are told apart in about alpha of the trials (100
    trials at alpha = 0.05: at most 12, three binomial standard deviations above the mean)."""
    from harness import feature_metrics as fm

    C = sanity.checks
    rng = np.random.default_rng(0)
    cfg = _spread_cfg()
    for seed in range(3):
        ref = rng.normal(size=(200, 64))
        for s in (rng.normal(size=(200, 64)) + 0.5, 0.8 * rng.normal(size=(200, 64))):
            draws = C.permutation_draws(200, 200, _spread_cfg(seed=seed))
            t = C.encoder_test(s, ref, "fd", draws, cfg)
            assert t["call"] == C.TELLS_APART and t["p_value"] == 1 / 40 and t["z"] > 3
    ref, s = rng.normal(size=(200, 64)), rng.normal(size=(150, 64)) + 0.5
    t = C.encoder_test(s, ref, "fd", C.permutation_draws(150, 200, cfg), cfg)
    assert t["value"] == pytest.approx(fm.fid(s, ref).value, rel=1e-12)  # all rows, in order
    # every network judges the same images: FD of 3 x the features is 9 x, z and p unchanged
    t3 = C.encoder_test(3 * s, 3 * ref, "fd", C.permutation_draws(150, 200, cfg), cfg)
    assert t3["value"] == pytest.approx(9 * t["value"], rel=1e-9)
    assert t3["z"] == pytest.approx(t["z"], rel=1e-9) and t3["p_value"] == t["p_value"]
    few = _spread_cfg(permutations=19)
    alarms = 0
    for trial in range(100):
        a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
        draws = C.permutation_draws(20, 20, _spread_cfg(seed=trial, permutations=19))
        alarms += C.encoder_test(a, b, "fd", draws, few)["call"] == C.TELLS_APART
    assert alarms <= 12
    # the unbiased CMMD (null mean ~ 0, often < 0) still gives a finite z
    k = C.encoder_test(s, ref, "cmmd", C.permutation_draws(150, 200, cfg),
                       _spread_cfg(cmmd_estimator="unbiased"))  # fmt: skip
    assert np.isfinite(k["z"]) and k["call"] == C.TELLS_APART
    # max_images: a seeded subset of each set
    capped = C.permutation_draws(150, 200, _spread_cfg(max_images=40))
    assert len(capped[0]) == len(capped[1]) == 40 and len(capped[2]) == 39


def _test(call: str, z: float = 1.0) -> dict:
    p = 0.025 if call == "tells them apart" else 0.5
    return {"value": 1.0, "p_value": p, "z": z, "null_mean": 0.5, "call": call,
            "rank_deficient": False}  # fmt: skip


def test_encoder_spread_passes_when_the_networks_agree_and_warns_when_not():
    C = sanity.checks
    apart, alike = _test(C.TELLS_APART, 6.0), _test(C.CANNOT_TELL, 0.2)
    setup = {"alpha": 0.05, "permutations": 39}
    prim = {"inc": "fd_inc", "dino": "fd_dino"}
    agree = C.check_encoder_spread({"fd_inc": apart, "fd_dino": apart}, prim, False, setup)
    assert agree.status == sanity.PASS and agree.id == 12
    assert agree.value == {"networks": 2, "fd_inc_z": 6.0, "fd_dino_z": 6.0}
    differ = C.check_encoder_spread({"fd_inc": apart, "fd_dino": alike}, prim, False, setup)
    assert differ.status == sanity.WARN
    assert differ.details["calls"] == {"inc": C.TELLS_APART, "dino": C.CANNOT_TELL}
    # one network with two distances (CLIP: CMMD and FD) is one network: not enough to compare
    clip = C.check_encoder_spread(
        {"cmmd_clip": apart, "fd_clip": alike}, {"clip": "cmmd_clip"}, False, setup
    )
    assert clip.status == sanity.WARN and clip.value["networks"] == 1
    random = C.check_encoder_spread({"fd_inc": apart, "fd_dino": alike}, prim, True, setup)
    assert random.status == sanity.NOT_JUDGED and "not judged" in random.threshold
