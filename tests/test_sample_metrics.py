"""Xu et al. 2018's metric set against independent computations: literal transcriptions of the
definitions, brute-force double loops, scipy (``cdist``, ``pdist``, ``wasserstein_distance``)
and POT's own solver on the full cost matrix.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import wasserstein_distance

from harness import sample_metrics as sm
from harness.errors import ConfigError


def _sets(m=14, n=11, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(0.4, 1.3, size=(n, d))


def test_doctests():
    res = doctest.testmod(sm)
    assert res.attempted > 0 and res.failed == 0


# --- Mode Score ----------------------------------------------------------------------------


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def test_mode_score_matches_the_definitions():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(5, 0.4), size=17)
    probs[0] = [1, 0, 0, 0, 0]  # exact zeros: 0 log 0 = 0
    ref = rng.dirichlet(np.ones(5), size=23)
    p_star = [sum(r[j] for r in ref) / len(ref) for j in range(5)]
    p_y = [sum(r[j] for r in probs) / len(probs) for j in range(5)]
    cross = sum(_kl(row, p_star) for row in probs) / len(probs)
    inception = sum(_kl(row, p_y) for row in probs) / len(probs)
    marginal = _kl(p_y, p_star)
    che = sm.mode_score(probs, ref, form="che")
    assert che.value == pytest.approx(math.exp(cross - marginal), rel=1e-12)
    assert che.value == pytest.approx(math.exp(inception), rel=1e-12)  # the identity
    xu = sm.mode_score(probs, ref)  # the default form
    assert xu.form == "xu"
    assert xu.value == pytest.approx(math.exp(inception - marginal), rel=1e-12)
    assert (xu.cross_kl, xu.inception_kl, xu.marginal_kl) == pytest.approx(
        (cross, inception, marginal), rel=1e-12
    )
    assert che.provenance()["mode_score_form"] == "che"


def test_mode_score_with_a_class_missing_from_the_reference():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    ref = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])  # p*(class 2) = 0, probs predicts it
    with pytest.raises(ConfigError, match="reference_probs gives probability 0 to 1 class"):
        sm.mode_score(probs, ref, form="che")
    xu = sm.mode_score(probs, ref)
    assert xu.value == 0.0 and math.isinf(xu.marginal_kl)
    with pytest.raises(ConfigError, match="reference_probs has 2 classes"):
        sm.mode_score(probs, ref[:, :2] / ref[:, :2].sum(1, keepdims=True))
    with pytest.raises(ConfigError, match="form="):
        sm.mode_score(probs, probs, form="other")


# --- MMD ---------------------------------------------------------------------------------------


def _mmd2_brute(x, y, sigma):
    def k(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * sigma**2))

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_matches_a_double_loop(monkeypatch):
    x, y = _sets()
    res = sm.mmd2_gaussian(x, y, bandwidth=0.8)
    assert res.value == pytest.approx(_mmd2_brute(x, y, 0.8), rel=1e-10, abs=1e-14)
    assert res.bandwidth_rule == "set" and res.bandwidth == 0.8
    sigma = float(np.median(pdist(np.concatenate([x, y]))))  # the median heuristic
    auto = sm.mmd2_gaussian(x, y)
    assert auto.bandwidth == pytest.approx(sigma, rel=1e-12)
    assert auto.value == pytest.approx(_mmd2_brute(x, y, sigma), rel=1e-10)
    assert auto.provenance()["mmd_bandwidth_rule"] == "median heuristic"
    monkeypatch.setattr(sm, "BLOCK_ROWS", 4)  # several row blocks: the same sums
    assert sm.mmd2_gaussian(x, y).value == pytest.approx(auto.value, rel=1e-12)


def test_mmd2_median_on_a_seeded_subsample(monkeypatch):
    x, y = _sets(m=30, n=25)
    monkeypatch.setattr(sm, "MEDIAN_MAX_POINTS", 20)
    res = sm.mmd2_gaussian(x, y, seed=3)
    pooled = np.concatenate([x, y])
    sub = pooled[np.random.default_rng(3).choice(55, 20, replace=False)]
    assert res.bandwidth == pytest.approx(float(np.median(pdist(sub))), rel=1e-12)
    assert res.median_points == 20 and res.seed == 3
    assert "20 of 55 pooled points" in res.provenance()["mmd_median_over"]


def test_mmd2_of_one_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(5)
    vals = [sm.mmd2_gaussian(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)), 1.0).value
            for _ in range(30)]  # fmt: skip
    assert min(vals) < 0 < max(vals)  # unbiased: negative values occur
    assert abs(np.mean(vals)) < 3 * np.std(vals) / math.sqrt(len(vals))


def test_mmd2_bad_bandwidth():
    x, y = _sets()
    for bad in (0, -1.0, float("nan"), "wide", True):
        with pytest.raises(ConfigError, match="bandwidth"):
            sm.mmd2_gaussian(x, y, bandwidth=bad)
    with pytest.raises(ConfigError, match="bandwidth: the median pairwise distance"):
        sm.mmd2_gaussian(np.zeros((5, 2)), np.zeros((4, 2)))


# --- Wasserstein-1 ------------------------------------------------------------------------------


def test_wasserstein1_exact_matches_pot_on_the_full_cost_matrix():
    ot = sm._import_ot()  # POT itself, imported without the unused tensorflow/torch backends

    x, y = _sets(m=25, n=18, d=4)
    res = sm.wasserstein1(x, y)
    ref = ot.emd2(np.full(25, 1 / 25), np.full(18, 1 / 18), cdist(x, y))
    assert res.value == pytest.approx(ref, rel=1e-10)
    assert res.method == "exact (POT emd2)"
    assert sm.wasserstein1(x, x.copy()).value == pytest.approx(0.0, abs=1e-12)


def test_wasserstein1_in_one_dimension_matches_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(31, 1)), rng.exponential(size=(17, 1))
    assert sm.wasserstein1(x, y).value == pytest.approx(
        wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-10
    )


def test_wasserstein1_sliced_above_exact_max():
    ot = sm._import_ot()

    x, y = _sets(m=30, n=20, d=5)
    res = sm.wasserstein1(x, y, exact_max=25, projections=200, seed=4)
    assert res.method.startswith("sliced (POT sliced_wasserstein_distance, p=1")
    ref = ot.sliced_wasserstein_distance(x, y, n_projections=200, p=1, seed=4)
    assert res.value == pytest.approx(float(ref), rel=1e-12)
    # the mean of 1-D W_1 over unit directions never exceeds W_1 (projections are 1-Lipschitz)
    assert res.value <= sm.wasserstein1(x, y).value
    prov = res.provenance()
    assert prov["w1_projections"] == 200 and prov["w1_seed"] == 4
    json.dumps(prov)


# --- 1-NN two-sample test -----------------------------------------------------------------------


def _one_nn_brute(real, fake):
    z = np.concatenate([real, fake])
    lab = [1] * len(real) + [0] * len(fake)
    d = cdist(z, z)
    correct = []
    for i in range(len(z)):
        best, arg = math.inf, -1
        for j in range(len(z)):  # strict <: the lowest index wins a tie
            if j != i and d[i, j] < best:
                best, arg = d[i, j], j
        correct.append(lab[arg] == lab[i])
    c = np.array(correct)
    return c.mean(), c[: len(real)].mean(), c[len(real) :].mean()


def test_one_nn_matches_a_double_loop(monkeypatch):
    x, y = _sets(m=20, n=16)
    res = sm.one_nn_two_sample(x, y)
    assert (res.accuracy, res.accuracy_real, res.accuracy_fake) == pytest.approx(
        _one_nn_brute(x, y), abs=0
    )
    monkeypatch.setattr(sm, "BLOCK_ROWS", 3)
    assert sm.one_nn_two_sample(x, y) == res


def test_one_nn_ties_go_to_the_lowest_pooled_index():
    # grid points: exact ties at distance 1; a fake copy of a real point (tie at distance 0)
    real = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    fake = np.array([[1.0, 0.0], [5.0, 5.0], [9.0, 10.0], [9.0, 8.0]])
    res = sm.one_nn_two_sample(real, fake)
    assert (res.accuracy, res.accuracy_real, res.accuracy_fake) == _one_nn_brute(real, fake)
    # fake [1, 0] is at distance 1 from real 0 and real 1: real 0 (index 0) wins, wrong label
    idx, dist = sm.nearest_neighbors(np.concatenate([real, fake]), None, exclude_self=True)
    assert idx[4] == 0 and dist[4] == 1.0
    assert idx[5] == 2 and dist[5] == 0.0  # the copy: exactly 0
    assert idx[3] == 6  # real [9, 9]: fakes 6 and 7 tie at 1, the lower index wins


def test_one_nn_detects_separation_and_memorisation():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(50, 3))
    assert sm.one_nn_two_sample(real, real + 100).accuracy == 1.0
    assert sm.one_nn_two_sample(real, real + 1e-9).accuracy == 0.0  # copies


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda x, y: sm.mmd2_gaussian(x, y[:, :2]), "y has 2 feature dimensions but x has 3"),
        (lambda x, y: sm.mmd2_gaussian(np.where(x > 1, np.nan, x), y), "x has NaN or inf"),
        (lambda x, y: sm.wasserstein1(x, y[:, None]), "y must be 2-D"),
        (lambda x, y: sm.wasserstein1(x, y, exact_max=0), "exact_max must be at least 1"),
        (lambda x, y: sm.wasserstein1(x, y, projections=2.5), "projections must be an integer"),
        (lambda x, y: sm.one_nn_two_sample(x[:1], y), "real has 1 row"),
        (lambda x, y: sm.one_nn_two_sample(x, y.astype(str)), "fake must be a real numeric"),
        (lambda x, y: sm.one_nn_two_sample(x, np.where(y > 1, np.inf, y)), "fake has NaN"),
        (lambda x, y: sm.mode_score(x, y), "probs has negative entries"),
    ],
)
def test_bad_inputs_are_one_line_config_errors(call, named):
    x, y = _sets()
    with pytest.raises(ConfigError, match=named) as info:
        call(x, y)
    assert "\n" not in str(info.value)
