"""IS_inf and FID_inf (Chong & Forsyth 2020) against independent computations: the documented
subset convention replayed with literal IS/FID formulas (scipy's ``rel_entr``, ``sqrtm``) and
scipy's own least-squares line (``scipy.stats.linregress``), plus the known truths of
:class:`harness.simulated.SimulatedProbs` and of Gaussian features.
"""

from __future__ import annotations

import ast
import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg, special, stats

from harness import extrapolation as ex
from harness.errors import ConfigError
from harness.feature_metrics import FeatureStats
from harness.simulated import SimulatedProbs


def _subset_rows(n, sizes, seed):
    """The documented convention: one default_rng(seed), a fresh permutation per size."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n)[:s] for s in sizes]


def _is_literal(p):
    """exp(mean_i sum_j p_ij ln(p_ij / pbar_j)), one split."""
    pbar = p.mean(axis=0)
    return math.exp(float(np.mean([special.rel_entr(row, pbar).sum() for row in p])))


def _fid_literal(a, mu2, s2):
    mu1, s1 = a.mean(axis=0), np.cov(a, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _check_fit(res, values):
    fit = stats.linregress(1.0 / res.sizes, values)
    assert res.values == pytest.approx(values, rel=1e-10)
    assert res.value == pytest.approx(fit.intercept, rel=1e-9)
    assert res.stderr == pytest.approx(fit.intercept_stderr, rel=1e-7)
    assert res.slope == pytest.approx(fit.slope, rel=1e-9)
    assert res.r2 == pytest.approx(fit.rvalue**2, rel=1e-9)
    assert res.value_at_n == pytest.approx(values[-1], rel=1e-12)


def test_doctests():
    res = doctest.testmod(ex)
    assert res.attempted > 0 and res.failed == 0


def test_sample_sizes():
    assert ex.sample_sizes(100, n_min=10, count=10).tolist() == list(range(10, 101, 10))
    s = ex.sample_sizes(50_000)  # the papers' setting: 5,000 .. 50,000 in 15 steps
    assert len(s) == 15 and s[0] == 5000 and s[-1] == 50_000
    assert s[1] == 8214  # 5000 + 45000 / 14 = 8214.29
    assert ex.sample_sizes(7, count=3).tolist() == [2, 4, 7]  # n_min = max(7 // 10, 2)


def test_is_infinity_matches_a_literal_computation():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(6, 0.3), size=90)
    res = ex.is_infinity(probs, n_min=20, count=8, seed=11)
    sizes = np.rint(np.linspace(20, 90, 8)).astype(int)
    assert res.sizes.tolist() == sizes.tolist()
    values = np.array([_is_literal(probs[r]) for r in _subset_rows(90, sizes, 11)])
    _check_fit(res, values)
    assert res.value_at_n == pytest.approx(_is_literal(probs), rel=1e-12)  # the full set
    assert res.metric == "inception_score" and res.n == 90 and res.seed == 11


def test_fid_infinity_matches_a_literal_computation():
    rng = np.random.default_rng(4)
    gen = rng.normal(0.3, 1.2, size=(70, 3))
    ref = rng.normal(size=(120, 3)) @ np.array([[1, 0.2, 0], [0, 1, 0.4], [0, 0, 0.7]])
    res = ex.fid_infinity(gen, ref, n_min=15, count=6, seed=5)
    sizes = np.rint(np.linspace(15, 70, 6)).astype(int)
    mu2, s2 = ref.mean(axis=0), np.cov(ref, rowvar=False)
    values = np.array([_fid_literal(gen[r], mu2, s2) for r in _subset_rows(70, sizes, 5)])
    _check_fit(res, values)
    # reference statistics in place of reference features: the same numbers
    res2 = ex.fid_infinity(gen, FeatureStats(mu2, s2, len(ref)), n_min=15, count=6, seed=5)
    assert res2.values == pytest.approx(res.values, rel=1e-10)


def test_fid_infinity_with_fewer_samples_than_dimensions_and_dead_coordinates():
    """Subsets with N <= D, constant on coordinates where the reference is not (sparse,
    ReLU-like features): the reference's covariance is factored once and each subset uses its
    rows on the subset's live coordinates; the same FIDs as a literal sqrtm computation."""
    rng = np.random.default_rng(8)
    d = 12
    gen = np.maximum(rng.normal(-0.8, 1.0, size=(11, d)), 0.0)  # many exact zeros
    gen[:, 3] = 0.5  # constant in every subset
    ref = np.maximum(rng.normal(-0.2, 1.0, size=(40, d)), 0.0) @ rng.normal(size=(d, d))
    res = ex.fid_infinity(gen, ref, n_min=4, count=7, seed=2)
    sizes = np.rint(np.linspace(4, 11, 7)).astype(int)
    mu2, s2 = ref.mean(axis=0), np.cov(ref, rowvar=False)
    rows = _subset_rows(11, sizes, 2)
    dead_in_subsets = [int((gen[r].std(axis=0) == 0).sum()) for r in rows]
    assert min(dead_in_subsets) >= 1 and len(set(dead_in_subsets)) > 1  # masks do vary
    values = np.array([_fid_literal(gen[r], mu2, s2) for r in rows])
    assert res.values == pytest.approx(values, rel=1e-6)  # sqrtm of a singular product


def test_is_infinity_is_closer_to_the_true_score_than_is_at_n():
    """SimulatedProbs(C=1000, beta(1, 20): confident rows, so ln IS_N is low by about
    0.83 (C - 1) / (2N)), N = 4,000, sizes 1,000 .. 4,000 (n_min = C, where the measured bias
    x n is within 3 % of its large-n value), 15 sizes, seeds 0-4, chosen before measuring.

    Measured (true IS 416.94): IS_N 372.6 / 372.2 / 374.9 / 374.4 / 377.1, IS_inf 404.3 /
    399.6 / 404.5 / 405.0 / 405.8: IS_inf is 3.51 / 2.57 / 3.36 / 3.54 / 3.57 times closer
    (8 seeds: 2.26 to 3.57).  NOT the issue's 5x: fitting IS itself (as the authors do) in 1/N,
    IS_N = IS exp(-k/N) is convex in 1/N, and the noise-free line through sizes 1,000 .. 4,000
    already stops at 5.0x (k = 383 to 395); wider ranges bend more, narrower or larger N let the
    N-sample fluctuation (sd(KL) / sqrt(N) ~ 0.013 in ln IS here) dominate: with the default
    SimulatedProbs at N = 20,000 the mean over 8 seeds of IS_inf - truth is -0.07 against
    -0.80 for IS_N (the bias is gone), but per seed the factor ranges 0.13 to 10.  The assertion
    is the measured property with margin: at least 2x closer on every seed.
    """
    sim = SimulatedProbs(num_classes=1000, beta_a=1.0, beta_b=20.0)
    truth = sim.true_inception_score()
    factors = []
    for seed in range(5):
        res = ex.is_infinity(sim.sample(4000, seed=seed), n_min=1000, seed=seed)
        assert res.value_at_n < res.value < truth  # both low; the extrapolation less so
        factors.append(abs(res.value_at_n - truth) / abs(res.value - truth))
    assert min(factors) >= 2.0, factors


def test_fid_infinity_recovers_a_closed_form_fid():
    """Reference: the exact statistics of N(0, I_32); generated: N(0.1, S) with S's eigenvalues
    evenly spaced in [0.5, 2] (a seeded rotation), so FID = |mu|^2 + sum(l) + 32 - 2 sum(sqrt l)
    = 2.00501 exactly.  N = 2,000, default sizes 200 .. 2,000, seeds 0-4 (chosen up front).

    Measured: FID_inf 1.9906 / 1.9880 / 2.0016 / 2.1198 / 2.0059, OLS standard errors 0.036 /
    0.051 / 0.029 / 0.021 / 0.023, i.e. -0.40 / -0.33 / -0.12 / +5.45 / +0.04 SE from the
    closed form; FID at the smallest size 3.32 / 4.12 / 3.36 / 3.89 / 3.85 (36 to 90 SE above);
    FID at N 2.12 / 2.21 / 2.11 / 2.29 / 2.20.  Seed 3 lies 5.45 SE off: the OLS standard error
    is the line's precision and leaves out the N-sample fluctuation every subset shares (the
    spread (sd) of FID_inf over 8 seeds is 0.078, about 2.5x the typical SE).  Asserted: the mean
    over the seeds within 3 standard errors of that mean (measured 0.66), every FID_inf at
    least 5x closer than the smallest size's FID (measured >= 16x), the smallest size more than
    30 SE off, and 4 of the 5 within 3 of their own SE.
    """
    d = 32
    rng = np.random.default_rng(1234)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = np.linspace(0.5, 2.0, d)
    mu = np.full(d, 0.1)
    truth = float(mu @ mu + lam.sum() + d - 2 * np.sqrt(lam).sum())
    chol = np.linalg.cholesky((q * lam) @ q.T)
    ref = FeatureStats(np.zeros(d), np.eye(d), -1)
    results = []
    for seed in range(5):
        x = mu + np.random.default_rng([7, seed]).normal(size=(2000, d)) @ chol.T
        results.append(ex.fid_infinity(x, ref, seed=seed))
    inf = np.array([r.value for r in results])
    se = np.array([r.stderr for r in results])
    smallest = np.array([r.values[0] for r in results])
    assert abs(inf.mean() - truth) < 3 * inf.std(ddof=1) / math.sqrt(len(inf))
    assert (np.abs(smallest - truth) >= 5 * np.abs(inf - truth)).all()
    assert ((smallest - truth) > 30 * se).all()
    assert np.count_nonzero(np.abs(inf - truth) < 3 * se) >= 4


class _CountingArray:
    """An array-like that counts how often it is converted (a stand-in for cached outputs)."""

    def __init__(self, a):
        self.a, self.conversions = a, 0

    def __array__(self, dtype=None, copy=None):
        self.conversions += 1
        return self.a if dtype is None else self.a.astype(dtype)


def test_takes_arrays_and_never_runs_a_network():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=60)
    feats = rng.normal(size=(60, 4))
    wrapped_p, wrapped_f = _CountingArray(probs), _CountingArray(feats)
    assert ex.is_infinity(wrapped_p, count=5).value == ex.is_infinity(probs, count=5).value
    assert ex.fid_infinity(wrapped_f, feats[:30], count=5).value == pytest.approx(
        ex.fid_infinity(feats, feats[:30], count=5).value, rel=1e-12
    )
    assert wrapped_p.conversions == 1 and wrapped_f.conversions == 1  # read once, then indexed
    with pytest.raises(ConfigError, match="features is a callable"):
        ex.fid_infinity(lambda images: feats, feats)
    # nothing in the module can reach a backbone, a cache or the pipeline
    tree = ast.parse(Path(ex.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    allowed = {"__future__", "math", "dataclasses", "numpy"}
    allowed |= {".errors", ".feature_metrics", ".sample_metrics", ".scores"}
    assert imported <= allowed, imported - allowed


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda p, f: ex.is_infinity(p, n_min=60), "n_min=60"),  # n_min >= N
        (lambda p, f: ex.is_infinity(p, n_min=1), "n_min must be at least 2"),
        (lambda p, f: ex.is_infinity(p[:12]), "count=15"),  # only 11 sizes from 2 to 12
        (lambda p, f: ex.is_infinity(p, count=2), "count must be at least 3"),
        (lambda p, f: ex.is_infinity(np.where(p > 0.5, np.nan, p)), "probs contains NaN"),
        (lambda p, f: ex.fid_infinity(f, f[:, :3]), "reference has 3 feature dimensions"),
        (lambda p, f: ex.fid_infinity(f, FeatureStats(np.zeros(3), np.eye(3), 9)), "statistics"),
        (lambda p, f: ex.fid_infinity(np.where(f > 2, np.nan, f), f), "features has NaN"),
        (lambda p, f: ex.fid_infinity(f, np.where(f > 2, np.inf, f)), "reference has NaN or inf"),
        (lambda p, f: ex.fid_infinity(f[:, 0], f), "features must be 2-D"),
        (lambda p, f: ex.is_infinity(p, seed=-1), "seed must be at least 0"),
    ],
)
def test_wrong_arguments_are_one_line_config_errors(call, named):
    rng = np.random.default_rng(1)
    probs, feats = rng.dirichlet(np.ones(4), size=60), rng.normal(size=(60, 4))
    with pytest.raises(ConfigError, match=named) as info:
        call(probs, feats)
    assert "\n" not in str(info.value)


def test_provenance_records_the_method():
    rng = np.random.default_rng(2)
    res = ex.is_infinity(rng.dirichlet(np.ones(4), size=50), count=4, seed=9)
    prov = res.provenance()
    assert prov["is_inf_method"] == "least squares in 1/N (Chong & Forsyth 2020)"
    assert prov["is_inf_splits"] == 1 and prov["is_inf_seed"] == 9
    assert (prov["is_inf_sizes_count"], prov["is_inf_size_min"], prov["is_inf_size_max"]) == (
        4,
        5,
        50,
    )
    json.dumps(prov)  # plain values only
    f = ex.fid_infinity(rng.normal(size=(40, 2)), rng.normal(size=(30, 2)), count=4)
    assert f.provenance()["fid_inf_reference"].startswith("features (n=30)")


def test_subset_moments_equal_numpys_covariance_on_both_routes():
    """A subset of more than half the rows is the full set's centred product minus its
    complement's; either route equals np.cov / np.mean of the subset (float32 input too)."""
    rng = np.random.default_rng(3)
    f = (rng.normal(size=(301, 6)) * [1, 2, 3, 0.1, 5, 1] + 40).astype(np.float32)
    moments = ex._SubsetMoments(f)
    for size in (20, 150, 151, 300, 301):
        rows = rng.permutation(301)[:size]
        got = moments.stats(rows)
        sub = f[rows].astype(np.float64)
        assert got.n == size
        np.testing.assert_allclose(got.mu, sub.mean(axis=0), rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(got.sigma, np.cov(sub, rowvar=False), rtol=1e-9, atol=1e-11)


def test_fid_against_a_factored_reference_equals_the_general_route():
    from harness.feature_metrics import (
        feature_stats,
        frechet_distance,
        frechet_distance_to_factored,
    )

    rng = np.random.default_rng(4)
    ref = feature_stats(rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)))
    factors = {}
    for k in range(3):
        s = feature_stats(rng.normal(size=(100 + 50 * k, 5)) * (1 + k))
        fast = frechet_distance_to_factored(s, ref, factors)
        assert fast.value == pytest.approx(frechet_distance(s, ref).value, rel=1e-10)
    assert factors["ref_cholesky"].shape == (5, 5)
    # a sample set with no more samples than dimensions takes the general (exact) route
    small = feature_stats(rng.normal(size=(4, 5)))
    assert frechet_distance_to_factored(small, ref, factors).value == pytest.approx(
        frechet_distance(small, ref).value, rel=1e-12
    )


def test_fid_infinity_equals_each_subsets_own_statistics_also_with_a_dead_feature():
    """The complement covariances and the factored reference give each subset's FID as its
    own statistics through frechet_distance do; a constant feature takes the general route."""
    from harness.feature_metrics import feature_stats, frechet_distance

    rng = np.random.default_rng(9)
    ref = feature_stats(rng.normal(size=(500, 8)) * 1.5)
    gen = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8)) + 2.0
    dead = gen.copy()
    dead[:, 3] = 7.0
    for x in (gen, dead):
        res = ex.fid_infinity(x, ref, n_min=60, count=5, seed=1)
        own = [
            frechet_distance(feature_stats(x[r]), ref).value for r in ex._subsets(400, res.sizes, 1)
        ]
        np.testing.assert_allclose(res.values, own, rtol=1e-10)


def test_fid_infinity_of_float32_features_equals_their_float64_copy():
    """float32 features stay float32 (no full float64 copy) and are converted block by block:
    the same values as their exact float64 copy."""
    rng = np.random.default_rng(12)
    ref = rng.normal(size=(300, 6))
    x32 = (rng.normal(size=(250, 6)) + 0.5).astype(np.float32)
    a = ex.fid_infinity(x32, ref, n_min=30, count=5, seed=3)
    b = ex.fid_infinity(x32.astype(np.float64), ref, n_min=30, count=5, seed=3)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12)
