"""FID, KID, precision/recall, density/coverage against independent computations (issue 14):
pytorch-fid's and torch-fidelity's installed code, closed forms, and brute-force loops.
"""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from harness import feature_metrics as fm
from harness import stats_files
from harness.errors import ConfigError, HarnessError

from .conftest import has


def _sets(n1=300, n2=260, d=48, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d)) * 0.3
    b = rng.normal(0.2, 1.1, size=(n2, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.5
    return a, b


@pytest.mark.skipif(not has("pytorch_fid"), reason="pytorch-fid not installed")
def test_fid_matches_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = _sets()
    r = fm.fid(a, b)
    ref = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert r.method == "cholesky"
    assert r.value == pytest.approx(ref, rel=1e-6)


@pytest.mark.skipif(not has("pytorch_fid"), reason="pytorch-fid not installed")
def test_fid_with_a_singular_covariance_falls_back_to_the_square_root():
    """A dead unit (a feature that is 0 for every sample) with N > D: S1 is exactly singular,
    Cholesky fails and the square-root path takes over."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = _sets()
    a[:, 3] = 0.0
    r = fm.fid(a, b)
    ref = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert r.method == "eigh" and not r.rank_deficient
    assert r.value == pytest.approx(ref, rel=1e-6)


def test_fid_of_identical_sets_is_zero():
    a, _ = _sets(n1=400, d=32)
    r = fm.fid(a, a.copy())
    assert abs(r.value) <= 1e-8 * np.trace(np.cov(a, rowvar=False))
    assert not r.rank_deficient


def test_fid_closed_form_for_known_gaussians():
    """Same rotation R for both: S_i = R diag(v_i) R^T, so tr sqrt(...) = sum sqrt(v1 v2)."""
    rng = np.random.default_rng(3)
    d = 20
    r, _ = np.linalg.qr(rng.normal(size=(d, d)))
    v1, v2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1 = fm.FeatureStats(mu1, r @ np.diag(v1) @ r.T, 10_000)
    s2 = fm.FeatureStats(mu2, r @ np.diag(v2) @ r.T, 10_000)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fm.frechet_distance(s1, s2).value == pytest.approx(closed, rel=1e-10)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations
    one = fm.frechet_distance(
        fm.FeatureStats(np.array([1.0]), np.array([[4.0]]), 100),
        fm.FeatureStats(np.array([-2.0]), np.array([[9.0]]), 100),
    )
    assert one.value == pytest.approx(9.0 + 1.0, rel=1e-12)


@pytest.mark.parametrize("block_rows", [8192, 16])  # one block; 16 + 16 + 16 + a short tail
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_feature_stats_use_np_cov_ddof_1(monkeypatch, block_rows, dtype):
    monkeypatch.setattr(fm, "COV_BLOCK_ROWS", block_rows)
    a, _ = _sets(n1=50, d=6)
    a = a.astype(dtype)
    s = fm.feature_stats(a)
    ref = np.cov(a.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(s.sigma, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(s.mu, a.astype(np.float64).mean(0), rtol=1e-14)
    assert s.sigma.dtype == np.float64 and s.mu.dtype == np.float64


@pytest.mark.skipif(not has("pytorch_fid"), reason="pytorch-fid not installed")
def test_fid_low_rank_path_equals_the_eigh_path_and_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = _sets(n1=30, n2=25, d=64)
    with pytest.warns(fm.RankDeficientWarning):
        low = fm.fid(a, b)
        full = fm.frechet_distance(fm.feature_stats(a), fm.feature_stats(b))
    assert low.method == "low_rank" and full.method == "eigh"
    # the eigh path takes sqrt of ~D-N rounding-level eigenvalues (~1e-13 each) of a singular
    # product: its error (~1e-8 relative here) is what the exact low-rank path avoids
    assert low.value == pytest.approx(full.value, rel=1e-7)
    ref = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert low.value == pytest.approx(ref, rel=1e-6)


def test_fid_rank_deficient_is_computed_warned_and_recorded():
    a, b = _sets(n1=20, n2=25, d=48)
    with pytest.warns(fm.RankDeficientWarning):
        r = fm.fid(a, b)
    assert np.isfinite(r.value) and r.rank_deficient and r.provenance()["fid_rank_deficient"]
    assert r.clipped_eigenvalues >= 0 and isinstance(r.value, float)


@pytest.mark.parametrize(
    "x1, x2, match",
    [
        (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2"),
        (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
        (np.zeros((5, 4)), np.zeros((5, 3)), "dimensions differ"),
        (np.zeros(5), np.zeros((5, 4)), "2-D"),
    ],
)
def test_bad_feature_inputs_are_one_line_errors(x1, x2, match):
    for f in (fm.fid, lambda a, b: fm.kid(a, b, subsets=2, subset_size=2), fm.prdc):
        with pytest.raises(HarnessError, match=match) as e:
            f(x1, x2)
        assert "\n" not in str(e.value)


def _kid_brute(x, y, degree=3):
    """Unbiased MMD^2 by explicit double loops (float64)."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(np.float64(a), np.float64(b))) / d + 1.0) ** degree

    m = len(x)
    sxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    syy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (sxx + syy) / (m * (m - 1)) - 2 * sxy / m**2


@pytest.mark.parametrize(
    "degree, matmul_dtype, input_dtype, rel",
    [
        (3, "float64", np.float64, 1e-10),
        (3, "float64", np.float32, 1e-10),  # float32 features gathered, converted per subset
        (2, "float64", np.float64, 1e-10),  # the general power path
        (3, "float32", np.float32, 1e-5),  # float32 inner products only
    ],
)
def test_kid_against_brute_force_double_loop(degree, matmul_dtype, input_dtype, rel):
    a, b = _sets(n1=30, n2=26, d=5)
    a, b = a.astype(input_dtype), b.astype(input_dtype)
    r = fm.kid(a, b, subsets=3, subset_size=12, seed=7, degree=degree, matmul_dtype=matmul_dtype)
    rng = np.random.RandomState(7)  # the documented subset draws
    vals = []
    for _ in range(3):
        x = a[rng.choice(len(a), 12, replace=False)]
        y = b[rng.choice(len(b), 12, replace=False)]
        vals.append(_kid_brute(x, y, degree))
    assert r.mean == pytest.approx(np.mean(vals), rel=rel)
    assert r.std == pytest.approx(np.std(vals), rel=rel * 100)
    assert r.provenance()["kid_matmul_dtype"] == matmul_dtype


def test_kid_unknown_matmul_dtype_is_a_one_line_error():
    a, b = _sets(n1=30, n2=26, d=5)
    with pytest.raises(ConfigError, match="kid.matmul_dtype='float16' is not one of") as e:
        fm.kid(a, b, subsets=2, subset_size=4, matmul_dtype="float16")
    assert "\n" not in str(e.value)


@pytest.mark.skipif(not has("torch_fidelity"), reason="torch-fidelity not installed")
def test_kid_matches_torch_fidelity_same_subsets():
    import torch
    from torch_fidelity.metric_kid import kid_features_to_metric

    a, b = _sets(n1=120, n2=110, d=64)
    ours = fm.kid(a, b, subsets=20, subset_size=50, seed=2020)
    theirs = kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=20,
        kid_subset_size=50,
        rng_seed=2020,
        verbose=False,
    )
    assert ours.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours.std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6)


def test_kid_subset_larger_than_n_is_one_line_error():
    a, b = _sets(n1=30, n2=20, d=4)
    with pytest.raises(ConfigError, match="kid.subset_size=25 is larger") as e:
        fm.kid(a, b, subsets=2, subset_size=25)
    assert "\n" not in str(e.value)


def _prdc_brute(real, fake, k_pr, k_dc):
    drr, dff, drf = cdist(real, real), cdist(fake, fake), cdist(real, fake)

    def kth(dm, k):  # k-th nearest other point: index k of the sorted row (index 0 is itself)
        return np.sort(dm, axis=1)[:, k]

    r_pr, f_pr, r_dc = kth(drr, k_pr), kth(dff, k_pr), kth(drr, k_dc)
    precision = np.mean(
        [any(drf[i, j] <= r_pr[i] for i in range(len(real))) for j in range(len(fake))]
    )
    recall = np.mean(
        [any(drf[i, j] <= f_pr[j] for j in range(len(fake))) for i in range(len(real))]
    )
    density = sum(drf[i, j] <= r_dc[i] for i in range(len(real)) for j in range(len(fake)))
    density /= k_dc * len(fake)
    coverage = np.mean([drf[i].min() <= r_dc[i] for i in range(len(real))])
    return precision, recall, density, coverage


def test_prdc_k_below_one_is_a_one_line_error():
    real, fake = _sets(n1=20, n2=20, d=4)
    with pytest.raises(ConfigError, match="k_precision_recall must be a positive integer"):
        fm.prdc(real, fake, k_pr=0)


@pytest.mark.parametrize("block", [7, 1024])
def test_prdc_against_brute_force_definitions(block):
    real, fake = _sets(n1=60, n2=45, d=6, seed=4)
    r = fm.prdc(real, fake, block=block)
    p, rc, dn, cv = _prdc_brute(real, fake, 3, 5)
    assert (r.precision, r.recall, r.coverage) == pytest.approx((p, rc, cv), abs=1e-12)
    assert r.density == pytest.approx(dn, rel=1e-12)
    assert 0 < r.precision < 1 and 0 < r.recall < 1  # the sets differ: not a trivial 0/1 case


def test_stats_files_round_trip_and_sidecar_checks(tmp_path):
    a, _ = _sets(n1=40, d=8)
    meta = {
        "backbone": "tf2015_torch",
        "weights_sha256": "abc",
        "resize": "tf1_bilinear",
        "feature_layer": "pool3",
    }
    path = stats_files.save_stats(tmp_path / "ref.npz", fm.feature_stats(a, meta))
    with np.load(path) as z:  # the TTUR / pytorch-fid / clean-fid layout
        assert sorted(z.files) == ["mu", "sigma"]
    side = json.loads(stats_files.sidecar_path(path).read_text())
    assert side["n_samples"] == 40 and side["backbone"] == "tf2015_torch"
    stats, notes = stats_files.load_stats(path, expect=meta)
    assert notes == [] and stats.n == 40
    np.testing.assert_allclose(stats.sigma, np.cov(a, rowvar=False), rtol=1e-12, atol=1e-14)
    other = {**meta, "resize": "antialias"}
    with pytest.raises(ConfigError, match="resize='tf1_bilinear'.*allow_mismatched_stats"):
        stats_files.load_stats(path, expect=other)
    _, notes = stats_files.load_stats(path, expect=other, allow_mismatched=True)
    assert len(notes) == 1 and "allowed" in notes[0]
    stats_files.sidecar_path(path).unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _, notes = stats_files.load_stats(path, expect=other)
    assert "cannot be checked" in notes[0] and w
    with pytest.raises(HarnessError, match="does not exist"):
        stats_files.load_stats(tmp_path / "missing.npz")


@pytest.fixture(scope="module")
def stats_run(tmp_path_factory):
    pytest.importorskip("torch")
    from harness import api

    wd = tmp_path_factory.mktemp("refstats")
    out = api.run_experiment(
        "reference_stats",
        [
            "dataset=synthetic",
            "dataset.count=30",
            "weights=random:0",
            "progress=false",
            "backbone.input_size=75",
            f"out={wd / 'ref.npz'}",
        ],
        run_dir=wd / "run",
    )
    return wd, out


def test_reference_stats_experiment_writes_checked_statistics(stats_run):
    from harness import backbones, data

    wd, out = stats_run
    f = (
        backbones.load_backbone("tf2015_torch", weights="random:0", input_size=75)
        .features(data.load_source("synthetic", count=30).read_all())
        .astype(np.float64)
    )
    for path in (wd / "ref.npz", wd / "run" / "stats.npz"):
        with np.load(path) as z:
            np.testing.assert_allclose(z["mu"], f.mean(0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                z["sigma"], np.cov(f, rowvar=False), rtol=1e-4, atol=1e-4 * np.abs(z["sigma"]).max()
            )
        side = json.loads(stats_files.sidecar_path(path).read_text())
        assert side["random_weights"] and side["n_samples"] == 30
        assert side["backbone"] == "tf2015_torch" and side["resize"] == "tf1_bilinear"


def test_sanity_fid_check_uses_stats_and_refuses_mismatched_ones(stats_run, tmp_path):
    from harness import api

    wd, _ = stats_run
    base = [
        "dataset=synthetic",
        "dataset.count=24",
        "dataset.seed=3",
        "weights=random:0",
        "progress=false",
        f"reference_stats={wd / 'ref.npz'}",
        "checks=[10]",  # check 10 and the reporting line are what this test reads
    ]
    with pytest.raises(ConfigError, match="allow_mismatched_stats=true"):
        api.run_experiment(
            "sanity",
            [*base, "backbone=torchvision", "backbone.input_size=75"],
            run_dir=tmp_path / "a",
        )
    res = api.run_experiment(
        "sanity", [*base, "backbone=tf2015_torch", "backbone.input_size=75"], run_dir=tmp_path / "b"
    )
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    (c10,) = [c for c in report["checks"] if c["id"] == 10]
    assert c10["status"] == "WARN" and c10["details"]["fid_rank_deficient"]  # 24 < 2,048
    assert (
        "FID = " in report["reporting_line"] and "ref.npz (30 images)" in report["reporting_line"]
    )
    assert res.table.check.str.startswith("10.").any()
