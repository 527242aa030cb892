"""Every experiment end to end through Hydra's compose API on tiny inputs (random weights, small
images), with the tables' numbers checked against independent computations: logits straight
from the backbone and IS by a brute-force scipy loop, not the experiment pipeline's own code."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import backbones, data, scores
from harness.api import compose, run_with_config
from harness.errors import ConfigError, MissingInputError

from .conftest import needs_tf, needs_torch

pytestmark = needs_torch


def brute_is(logits, n_splits):
    """The original improved-gan loop with scipy.stats.entropy, independent of harness.scores."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n, out = len(p), []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        py = part.mean(0)
        out.append(math.exp(np.mean([stats.entropy(r, py) for r in part])))
    return float(np.mean(out)), float(np.std(out))


def run(name, tmp_path, *overrides):
    cfg = compose(name, [f"output_root={tmp_path}", "progress=false", *overrides])
    return run_with_config(cfg, tmp_path / name)


def synth(key, count=12, extra=()):
    return [f"dataset@datasets.{key}=synthetic", f"datasets.{key}.count={count}", *extra]


@needs_tf
def test_weights_sensitivity(tmp_path):
    res = run(
        "weights_sensitivity",
        tmp_path,
        "weights=random:0",
        "~datasets.imagenet_val",
        *synth("cifar10_train"),
        "backbones.torchvision.input_size=75",
        "backbones.keras.input_size=75",
        "backbones.tfhub.input_size=75",
        "n_splits=3",
    )
    t = res.table
    cols = {
        "backbone",
        "dataset_key",
        "is_mean",
        "is_std",
        "sg_nats",
        "sg_bits",
        "h_y_given_x_bits",
        "paper_is_mean",
        "diff_to_paper_pct",
        "weights_sha256",
        "framework_versions",
        "resize",
        "value_range",
        "classes",
        "bias",
        "n_splits",
        "split_assignment",
        "std_ddof",
        "n_samples",
        "seed",
        "device",
        "dtype",
    }
    assert cols <= set(t.columns)
    assert list(t.backbone) == ["tf2015", "torchvision", "keras", "tfhub"]
    imgs = data.load_source("synthetic", count=12).read_all()
    for b, kw in (("torchvision", {"input_size": 75}), ("keras", {"input_size": 75})):
        ref_mean, ref_std = brute_is(
            backbones.load_backbone(b, weights="random:0", **kw).logits(imgs), 3
        )
        row = t.set_index("backbone").loc[b]
        assert row.is_mean == pytest.approx(ref_mean, rel=1e-5) and row.is_std == pytest.approx(
            ref_std, rel=1e-4, abs=1e-6
        )
        assert pd.isna(row.paper_is_mean)  # synthetic images are not the paper's CIFAR-10
    pw = res.tables["pairwise"].set_index(["backbone_a", "backbone_b"])
    kt = pw.loc[("keras", "torchvision")]  # the paper's orientation
    assert kt.diff_pct == pytest.approx((kt.is_a / kt.is_b - 1) * 100) and pd.isna(
        kt.paper_diff_pct
    )
    # paper numbers appear only beside the paper's datasets: a real CIFAR-10 layout says so
    from .test_data import write_cifar

    write_cifar(tmp_path / "c10")
    assert (
        data.load_source("cifar10", root=str(tmp_path / "c10")).paper_dataset() == "cifar10_train"
    )
    assert (
        data.load_source("cifar10", root=str(tmp_path / "c10"), split="test").paper_dataset()
        == "cifar10_test"
    )
    assert (tmp_path / "weights_sensitivity" / "weights_sensitivity.png").exists()
    assert "RANDOM WEIGHTS" in (tmp_path / "weights_sensitivity" / "table.md").read_text()


def test_weights_sensitivity_offline_names_every_missing_file_before_computing(tmp_path):
    with pytest.raises(MissingInputError) as ei:
        run("weights_sensitivity", tmp_path, f"data_root={tmp_path / 'none'}")
    msg = str(ei.value)
    for part in (
        "inception-2015-12-05.tgz",
        "inception_v3_google-0cc3c7bd.pth",
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "tfhub",
        "cifar-10-batches-py",
        "imagenet",
        "weights=random:<seed>",
    ):
        assert part in msg, part
    assert "\n" not in msg
    assert not list((tmp_path / "weights_sensitivity").glob("table.*"))  # nothing half-written


def test_splits_simulated_against_ground_truth(tmp_path):
    res = run(
        "splits",
        tmp_path,
        "source=simulated",
        "simulated.n=20000",
        "sample_sizes=[500,2000,20000]",
        "resamples=3",
    )
    t = res.table.set_index("n_splits")
    from harness.simulated import SimulatedProbs

    sim = SimulatedProbs(seed=0)
    p = sim.sample(20000)
    # independent: brute-force IS on the same samples, and a large-sample estimate of the truth
    assert t.loc[10, "is_mean"] == pytest.approx(brute_is(np.log(p), 10)[0], rel=1e-9)
    assert t.loc[1, "is_mean"] == pytest.approx(t.loc[1, "exp_sg"], rel=1e-12)
    big = sim.sample(200_000, seed=1)
    assert t.loc[1, "true_is"] == pytest.approx(math.exp(scores.improved_score(big).nats), rel=5e-3)
    assert (t.is_mean.diff().dropna() < 0).all()  # more splits, lower IS
    assert t.loc[200, "bias_vs_true_pct"] < t.loc[10, "bias_vs_true_pct"] < 0
    sizes = res.tables["sample_sizes"]
    assert list(sizes.n_samples) == [500, 2000, 20000] and list(sizes.resamples) == [3, 3, 1]
    assert (sizes.is_lo95 <= sizes.is_mean).all() and (sizes.is_mean <= sizes.is_hi95).all()
    # issue 27: IS_inf beside it, from the same 20,000 probabilities (the fit itself is checked
    # against scipy in test_extrapolation); its error against the truth is in the table
    ext = res.tables["extrapolation"].iloc[0]
    assert ext.is_1split_at_n == pytest.approx(t.loc[1, "is_mean"], rel=1e-12)
    assert ext.is_inf_sizes_count == 15 and ext.is_inf_size_min == 2000 and ext.is_inf_se > 0
    assert ext.is_inf_error == pytest.approx(ext.is_inf - ext.true_is, rel=1e-12)
    print(f"\nIS_inf error {ext.is_inf_error:+.3f}, IS at N error {ext.is_1split_at_n_error:+.3f}")
    assert (tmp_path / "splits" / "extrapolation.csv").exists()


def test_splits_network_and_paper_values(tmp_path):
    res = run(
        "splits",
        tmp_path,
        "weights=random:0",
        "dataset=synthetic",
        "dataset.count=40",
        "backbone.input_size=75",
        "n_splits=[1,2,4]",
        "sample_sizes=[20,40]",
        "resamples=2",
    )
    logits = backbones.load_backbone("torchvision", weights="random:0", input_size=75).logits(
        data.load_source("synthetic", count=40).read_all()
    )
    t = res.table.set_index("n_splits")
    for k in (1, 2, 4):
        assert t.loc[k, "is_mean"] == pytest.approx(brute_is(logits, k)[0], rel=1e-5)
    assert t.paper_value.isna().all()  # not torchvision on 50,000 CIFAR-10 images


@needs_tf
def test_beyond_imagenet(tmp_path):
    res = run(
        "beyond_imagenet",
        tmp_path,
        "weights=random:0",
        *synth("cifar10_train", 16),
        *synth("imagenet_val", 16),
        "datasets.noise.count=16",
        "~backbones.tf2015",
        "~backbones.keras",
        "~backbones.tfhub",
        "backbones.torchvision.input_size=75",
        "n_splits=2",
    )
    t = res.table.set_index("dataset_key")
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75)
    for key, src in (
        ("cifar10_train", data.load_source("synthetic", count=16)),
        ("noise", data.load_source("noise", count=16, seed=0)),
    ):
        lg = net.logits(src.read_all())
        p = scores.softmax(lg)
        h = np.mean([stats.entropy(r, base=2) for r in p])
        assert t.loc[key, "h_y_given_x_bits"] == pytest.approx(h, rel=1e-6)
    assert t.loc["noise", "paper_h_y_given_x_bits"] == 6.512  # real noise images: the paper's row
    assert pd.isna(t.loc["cifar10_train", "paper_h_y_given_x_bits"])  # synthetic under that key: no
    top = res.tables["top_classes"]
    assert (
        list(top["rank"]) == list(range(1, 11)) and (top.marginal_prob.diff().dropna() <= 0).all()
    )
    assert "airplane" in top.cifar10_classes.iloc[0]


def test_ordering(tmp_path):
    res = run(
        "ordering",
        tmp_path,
        "weights=random:0",
        *synth("imagenet_val", 40, ["datasets.imagenet_val.arrangement=class_sorted"]),
        "backbones.torchvision.input_size=75",
        "n_splits=4",
        "shuffle_seeds=[0,1]",
    )
    t = res.table
    lg = backbones.load_backbone("torchvision", weights="random:0", input_size=75).logits(
        data.load_source("synthetic", count=40, arrangement="class_sorted").read_all()
    )
    assert t.is_mean.iloc[0] == pytest.approx(brute_is(lg, 4)[0], rel=1e-5)
    perm = np.random.default_rng(1).permutation(40)
    assert t.set_index("split_order").loc["shuffled(seed=1)", "is_mean"] == pytest.approx(
        brute_is(lg[perm], 4)[0], rel=1e-5
    )
    assert set(res.tables["summary"].columns) >= {
        "as_loaded_is",
        "shuffled_is_mean_over_seeds",
        "order_effect_pct",
    }


def test_memorization(tmp_path):
    res = run(
        "memorization",
        tmp_path,
        "weights=random:0",
        *synth("train", 30),
        *synth("heldout", 20, ["datasets.heldout.seed=7"]),
        "backbones.torchvision.input_size=75",
        "replay_sizes=[5,30]",
        "n_samples=20",
        "n_splits=2",
        "kid.subset_size=10",
        "data_copying.min_per_cell=5",  # 10-20 samples per set here
    )
    t = res.table
    replay = t[t.memorised_images > 0]
    assert (replay.nn_dup_rate_vs_train == 1.0).all()  # replayed samples are training images
    held = t[t.memorised_images == 0].iloc[0]
    assert held.nn_dup_rate_vs_train == 0.0
    # independent: IS of the K=5 replay from the backbone's logits of the training images
    lg = backbones.load_backbone("torchvision", weights="random:0", input_size=75).logits(
        data.load_source("synthetic", count=30).read_all()
    )
    idx = np.random.default_rng([0, 5]).integers(0, 5, size=20)
    assert replay.iloc[0].is_mean == pytest.approx(brute_is(lg[idx], 2)[0], rel=1e-5)
    assert replay.iloc[0].within_sample_dup_rate == 1.0  # 20 draws from 5 images
    # FID vs train, independently: pytorch-fid on features straight from the backbone
    from pytorch_fid.fid_score import calculate_frechet_distance

    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75)
    ft = net.features(data.load_source("synthetic", count=30).read_all()).astype(np.float64)
    fs = ft[idx]
    ref = calculate_frechet_distance(
        fs.mean(0), np.cov(fs, rowvar=False), ft.mean(0), np.cov(ft, rowvar=False)
    )
    assert replay.iloc[0].fid_vs_train == pytest.approx(ref, rel=1e-5)
    assert t.kid_vs_train.notna().all()
    # issue 27: replayed training images are never authentic and C_T flags them: every one of
    # the 20 is at distance 0 from the training set, so U = 0 against the 10 held-out test
    # images in the single cell: Z_U = -(20*10/2 - 0.5) / sqrt(20*10*31/12) = -4.38
    assert (replay.authenticity == 0.0).all()
    assert replay.ct.to_numpy() == pytest.approx(-99.5 / math.sqrt(200 * 31 / 12))
    assert held.authenticity > 0.5 and held.ct > replay.ct.max() + 2
    assert held.ct_n_generated == 10 and held.ct_n_test == 10  # the held-out halves


def test_adversarial_and_its_cpu_guard(tmp_path):
    res = run(
        "adversarial",
        tmp_path,
        "weights=random:0",
        "backbone.input_size=75",
        "attack.n_images=8",
        "attack.iterations=3",
        "attack.eps=0.01",
        "attack.n_splits=2",
        "attack.batch_size=8",
        "attack.grid_classes=3",
    )
    t = res.table
    assert t.is_1split.iloc[-1] > t.is_1split.iloc[0]
    assert len(res.tables["history"]) == 4
    with np.load(tmp_path / "adversarial" / "images.npz") as z:
        assert z["final_uint8"].dtype == np.uint8 and z["final_uint8"].shape == (8, 75, 75, 3)
        assert z["targets"].tolist() == list(range(8))
    # and the same images re-scored independently give the table's quantised IS
    with np.load(tmp_path / "adversarial" / "images.npz") as z:
        lg = backbones.load_backbone("torchvision", weights="random:0", input_size=75).logits(
            z["final_uint8"]
        )
    assert t.is_mean.iloc[-1] == pytest.approx(brute_is(lg, 2)[0], rel=1e-4)
    with pytest.raises(MissingInputError, match="minutes on this CPU"):
        run("adversarial", tmp_path / "big", "weights=random:0")


@needs_tf
def test_implementation_vs_weights(tmp_path):
    res = run(
        "implementation_vs_weights",
        tmp_path,
        "weights=random:0",
        "dataset=synthetic",
        "dataset.count=12",
        "~backbones.tf2015",
        "backbones.torchvision.input_size=75",
        "backbones.keras.input_size=75",
        "n_splits=2",
    )
    t = res.table.set_index(["run", "backbone_or_resize"])
    imgs = data.load_source("synthetic", count=12).read_all()
    # keras' implementation running torchvision's (random:0) weights, computed directly
    k = backbones.load_backbone(
        "keras",
        weights="ported:torchvision:random:0",
        input_size=75,
        resize="tf1_bilinear",
        classes="imagenet1000",
    )
    assert t.loc[("implementation", "keras"), "is_mean"] == pytest.approx(
        brute_is(k.logits(imgs), 2)[0], rel=1e-4
    )
    assert t.loc[("own", "keras"), "weights_spec"] == "random:1"  # own weights differ per backbone
    d = res.tables["decomposition"].iloc[0]
    assert d.total_pct == pytest.approx(d.implementation_pct + d.weights_pct + d.remainder_pct)
    assert set(res.tables["resize"].resize) >= {"tf1_bilinear", "pil_bicubic", "antialias"}


def test_paper_offline_and_paper_figs(tmp_path):
    res = run(
        "paper",
        tmp_path,
        f"data_root={tmp_path / 'none'}",
        "paper.experiments=[{name: toy_gaussian, overrides: ['toy.mc_samples=20000']},"
        "{name: splits, label: splits_simulated, "
        "overrides: ['source=simulated', 'simulated.n=5000']},"
        "{name: weights_sensitivity}, {name: adversarial}]",
    )
    t = res.table.set_index("experiment")
    assert t.loc["toy_gaussian", "status"] == "ran" and t.loc["splits_simulated", "status"] == "ran"
    assert t.loc["weights_sensitivity", "status"] == "skipped"
    miss = res.tables["missing"]
    torch_file = miss[miss.missing.str.contains("inception_v3_google-0cc3c7bd.pth")]
    assert len(torch_file) == 1  # each missing file once, naming who needs it
    assert "weights_sensitivity" in torch_file.needed_by.iloc[0]
    assert f"[{torch_file['item'].iloc[0]}]" in t.loc["weights_sensitivity", "detail"]
    assert not (tmp_path / "paper" / "weights_sensitivity").exists()  # no empty dir for a skip
    assert t.loc["adversarial", "status"] == "skipped"
    out = tmp_path / "figs"
    figs = run("paper_figs", tmp_path, f"paper_figs.out_dir={out}")
    regen = figs.table.set_index("experiment")
    assert regen.loc["toy_gaussian", "source"] == "real"  # the toy needs no weights
    # the offline splits run is a simulation: Table 2 stays a placeholder, the simulation is
    # drawn beside it, labelled
    assert regen.loc["splits", "source"] == "none"
    assert (out / "toy_gaussian.png").exists() and (out / "table2_splits_simulated.pdf").exists()
    readme = (out / "README.md").read_text()
    assert "`toy_gaussian`" in readme and "+experiment=toy_gaussian" in readme
    assert "python -m harness +experiment=splits source=network" in readme
    pd.read_csv(tmp_path / "paper" / "table.csv")


def test_fid_sensitivity_rows_against_pytorch_fid_and_brute_force(tmp_path):
    from pytorch_fid.fid_score import calculate_frechet_distance

    res = run(
        "fid_sensitivity",
        tmp_path,
        "weights=random:0",
        "~backbones.tf2015",
        "~backbones.keras",
        "~backbones.tfhub",
        "dataset=synthetic",
        "dataset.count=24",
        "dataset@reference=synthetic",
        "reference.count=20",
        "reference.seed=5",
        "backbones.torchvision.input_size=75",
        "backbones.tf2015_torch.input_size=75",
        "resizes=[antialias,torch_bilinear_align_corners]",
        "kid.subset_size=10",
        "kid.subsets=5",
        "extra_metrics=[is_inf,fid_inf,mode_score,mmd2,w1,one_nn_accuracy,cmmd]",
    )
    t = res.table.set_index(["backbone_key", "resize_variant"])
    assert len(t) == 6 and set(res.tables["pairwise"].backbone_a) == {"tf2015_torch"}
    # independent: features straight from the backbone, FID by pytorch-fid (scipy sqrtm)
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75)
    fs = net.features(data.load_source("synthetic", count=24).read_all()).astype(np.float64)
    fr = net.features(data.load_source("synthetic", count=20, seed=5).read_all()).astype(np.float64)
    ref = calculate_frechet_distance(
        fs.mean(0), np.cov(fs, rowvar=False), fr.mean(0), np.cov(fr, rowvar=False)
    )
    row = t.loc[("torchvision", "native")]
    assert row.fid == pytest.approx(ref, rel=1e-5) and bool(row.fid_rank_deficient)
    # torchvision's native resize is torch bilinear align_corners=True: one pass, same numbers
    same = t.loc[("torchvision", "torch_bilinear_align_corners")]
    assert same.resize_operation == row.resize_operation and same.fid == row.fid
    # precision: fraction of samples inside the reference's k=3 balls (brute force, scipy)
    from scipy.spatial.distance import cdist

    d_rr, d_rs = cdist(fr, fr), cdist(fr, fs)
    radius = np.sort(d_rr, axis=1)[:, 3]
    assert row.precision == pytest.approx(np.mean((d_rs <= radius[:, None]).any(0)), abs=1e-12)
    assert row.is_mean == pytest.approx(
        brute_is(net.logits(data.load_source("synthetic", count=24).read_all()), 10)[0], rel=1e-5
    )
    assert "compute_precision" in res.table.columns
    assert (res.table.kid_matmul_dtype == "float64").all()  # the default, recorded per row
    # issue 27, each against its own brute force on the same features: the 1-NN two-sample
    # test (leave-one-out, real rows first), the unbiased Gaussian MMD^2 with the median
    # heuristic, the exact W1 by POT's own solver on the full cost matrix
    import ot
    from scipy.spatial.distance import pdist

    pooled = np.concatenate([fr, fs])
    label = np.r_[np.zeros(len(fr)), np.ones(len(fs))]
    d = cdist(pooled, pooled)
    np.fill_diagonal(d, np.inf)
    assert row.one_nn_accuracy == pytest.approx(np.mean(label[d.argmin(1)] == label), abs=1e-12)
    sigma = np.median(pdist(pooled))
    k = np.exp(-(cdist(pooled, pooled) ** 2) / (2 * sigma**2))
    kxx, kyy, kxy = k[20:, 20:], k[:20, :20], k[20:, :20]
    mmd = (
        (kxx.sum() - np.trace(kxx)) / (24 * 23)
        + (kyy.sum() - np.trace(kyy)) / (20 * 19)
        - 2 * kxy.mean()
    )
    assert row.mmd2 == pytest.approx(mmd, rel=1e-9) and row.mmd_bandwidth == pytest.approx(sigma)
    w1 = ot.emd2(np.full(24, 1 / 24), np.full(20, 1 / 20), cdist(fs, fr))
    assert row.w1 == pytest.approx(w1, rel=1e-9) and row.w1_method == "exact (POT emd2)"
    assert np.isfinite(row.is_inf) and row.fid_inf_se > 0 and row.fid_inf_sizes_count == 15
    assert row.mode_score > 0 and row.survey_mode_score_form == "xu"
    # CMMD as its authors' code computes it: 1000 x the V-statistic, sigma 10, every pair
    g = np.exp(-(cdist(pooled, pooled) ** 2) / (2 * 10.0**2))
    cmmd = 1000 * (g[20:, 20:].mean() + g[:20, :20].mean() - 2 * g[20:, :20].mean())
    assert row.cmmd == pytest.approx(cmmd, rel=1e-9) and row.cmmd_estimator == "reference"


@pytest.mark.parametrize("name", ["fid_sensitivity", "memorization", "metric_properties", "sanity"])
def test_unknown_kid_matmul_dtype_is_refused_before_any_input(tmp_path, name):
    # the default datasets are absent here: the setting must be refused before they are read
    extra = ["dataset.root=/nonexistent"] if name == "sanity" else []
    with pytest.raises(ConfigError, match="kid.matmul_dtype must be one of float64, float32") as e:
        run(name, tmp_path, "weights=random:0", "kid.matmul_dtype=float16", *extra)
    assert "\n" not in str(e.value)
