"""harness.scores against independent computations (scipy.stats.entropy loops, closed forms)."""

import doctest
import math

import numpy as np
import pytest
from scipy import special, stats

from harness import scores
from harness.errors import HarnessError


def dirichlet(n, c, alpha=0.3, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(c, alpha), size=n)


def brute_split_scores(p, n_splits):
    """The original improved-gan loop, written out with scipy.stats.entropy (natural log)."""
    n = p.shape[0]
    out = []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        py = part.mean(axis=0)
        kls = [stats.entropy(row, py) for row in part]
        out.append(math.exp(np.mean(kls)))
    return np.array(out)


@pytest.mark.parametrize("n,c,splits", [(100, 10, 1), (103, 7, 10), (57, 1000, 3), (40, 2, 40)])
def test_inception_score_matches_brute_force(n, c, splits):
    p = dirichlet(n, c, seed=n + c)
    res = scores.inception_score(p, n_splits=splits)
    ref = brute_split_scores(p, splits)
    np.testing.assert_allclose(res.split_scores, ref, rtol=1e-12)
    assert res.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert res.std == pytest.approx(np.std(ref), rel=1e-9, abs=1e-14)


def test_contiguous_split_boundaries_follow_original_code():
    p = dirichlet(10, 4)
    res = scores.inception_score(p, n_splits=3)
    assert res.split_sizes == (3, 3, 4)  # i*N//S: 0, 3, 6, 10
    # split 0 is exactly rows 0..2
    assert res.split_scores[0] == pytest.approx(brute_split_scores(p[:3], 1)[0], rel=1e-12)


def test_uniform_rows_give_one_and_one_hot_gives_class_count():
    assert scores.inception_score(np.full((50, 7), 1 / 7), n_splits=5).mean == pytest.approx(
        1.0, abs=1e-12
    )
    labels = np.tile(np.arange(9), 20)  # each split sees all 9 classes equally
    onehot = np.eye(12)[labels]
    res = scores.inception_score(onehot, n_splits=4)
    assert res.mean == pytest.approx(9.0, rel=1e-12)
    assert res.std == pytest.approx(0.0, abs=1e-12)


def test_one_hot_with_unequal_frequencies_is_exp_of_label_entropy():
    labels = np.repeat([0, 1, 2, 5], [10, 20, 30, 40])
    p = np.eye(6)[labels]
    freq = np.array([10, 20, 30, 40]) / 100
    assert scores.inception_score(p, 1).mean == pytest.approx(
        math.exp(stats.entropy(freq)), rel=1e-12
    )


def test_bounds_on_random_inputs():
    for seed in range(5):
        p = dirichlet(200, 13, alpha=0.05 + seed * 0.5, seed=seed)
        for s in (1, 4, 10):
            r = scores.inception_score(p, s)
            assert np.all(r.split_scores >= 1 - 1e-12) and np.all(r.split_scores <= 13 + 1e-9)


def test_permutation_invariance_with_one_split_and_order_seed():
    p = dirichlet(300, 20)
    perm = np.random.default_rng(7).permutation(300)
    a = scores.inception_score(p, 1).mean
    assert scores.inception_score(p[perm], 1).mean == pytest.approx(a, rel=1e-12)
    # order=int applies default_rng(seed).permutation before the contiguous cut
    res = scores.inception_score(p, 10, order=7)
    np.testing.assert_allclose(res.split_scores, brute_split_scores(p[perm], 10), rtol=1e-12)
    assert res.order == 7
    assert scores.inception_score(p, 10).mean != pytest.approx(res.mean, rel=1e-9)


def test_ddof_zero_and_one():
    p = dirichlet(500, 10)
    ref = brute_split_scores(p, 10)
    r0 = scores.inception_score(p, 10, ddof=0)
    r1 = scores.inception_score(p, 10, ddof=1)
    assert r0.std == pytest.approx(np.std(ref, ddof=0), rel=1e-9)
    assert r1.std == pytest.approx(np.std(ref, ddof=1), rel=1e-9)
    assert r1.std == pytest.approx(r0.std * math.sqrt(10 / 9), rel=1e-9)
    with pytest.raises(HarnessError, match="ddof=1 needs more than 1 splits"):
        scores.inception_score(p, 1, ddof=1)  # an undefined std is an error, never NaN
    with pytest.raises(HarnessError, match="ddof=5 needs more than 5 splits, but n_splits=3"):
        scores.inception_score(p, 3, ddof=5)


def test_identity_log_is_equals_improved_score_equals_entropy_difference():
    p = dirichlet(400, 50, alpha=0.2)
    ln_is = math.log(scores.inception_score(p, 1).mean)
    sg = scores.improved_score(p)
    h_y = stats.entropy(p.mean(axis=0))
    h_yx = np.mean([stats.entropy(r) for r in p])
    assert ln_is == pytest.approx(sg.nats, rel=1e-12)
    assert sg.nats == pytest.approx(h_y - h_yx, rel=1e-10)
    assert sg.bits == pytest.approx(sg.nats / math.log(2), rel=1e-15)
    assert scores.conditional_entropy(p, base=math.e) == pytest.approx(h_yx, rel=1e-12)
    assert scores.marginal_entropy(p, base=2) == pytest.approx(
        stats.entropy(p.mean(0), base=2), rel=1e-12
    )
    assert scores.conditional_entropy(p) == pytest.approx(h_yx / math.log(2), rel=1e-12)


def test_improved_score_spread_is_from_per_sample_kl():
    p = dirichlet(120, 6)
    py = p.mean(axis=0)
    kl = np.array([stats.entropy(r, py) for r in p])
    sg = scores.improved_score(p)
    assert sg.per_sample_std == pytest.approx(np.std(kl, ddof=1), rel=1e-10)
    assert sg.sem == pytest.approx(np.std(kl, ddof=1) / math.sqrt(120), rel=1e-10)
    np.testing.assert_allclose(scores.per_sample_kl(p), kl, rtol=1e-10, atol=1e-15)


def test_zero_log_zero_one_hot_and_underflow_are_finite():
    onehot = np.eye(5)[[0, 1, 2, 3, 4, 0]]
    r = scores.inception_score(onehot, 2)
    assert np.all(np.isfinite(r.split_scores))
    # softmax of very separated logits underflows to exact 0 in float64
    logits = np.array([[0.0, -800.0, -2000.0], [-900.0, 0.0, 5.0], [3.0, 3.0, -1e4]])
    p = scores.softmax(logits)
    assert (p == 0).any()
    assert scores.underflow_count(p) == 3
    for v in (
        scores.inception_score(p, 1).mean,
        scores.improved_score(p).nats,
        scores.conditional_entropy(p),
        scores.marginal_entropy(p),
    ):
        assert math.isfinite(v)
    # split where a class is absent from the whole split: q_j = 0 and p_ij = 0 together
    p2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert scores.inception_score(p2, 1).mean == pytest.approx(2.0)


def test_softmax_stable_for_any_magnitude_and_float64():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20, 30)) * 50
    np.testing.assert_allclose(scores.softmax(z), special.softmax(z, axis=-1), rtol=1e-12)
    big = np.array([[1e300, 1e300 - 1e290, 0.0]])
    out = scores.softmax(big)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert out.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        scores.softmax(z.T, axis=0), special.softmax(z.T, axis=0), rtol=1e-12
    )
    assert scores.softmax(np.float32([[1, 2]])).dtype == np.float64


def test_top_marginal_classes():
    p = dirichlet(300, 40, seed=3)
    top = scores.top_marginal_classes(p, k=10)
    q = p.mean(axis=0)
    assert top.indices.tolist() == np.argsort(-q, kind="stable")[:10].tolist()
    np.testing.assert_allclose(top.probs, q[top.indices])
    assert list(top)[0] == (int(top.indices[0]), float(top.probs[0]))
    assert len(scores.top_marginal_classes(p, k=100).indices) == 40


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.ones(5) / 5, "must be 2-D"),
        (np.ones((4, 1)), "at least 2"),
        (np.array([[0.5, np.nan], [0.5, 0.5]]), "NaN or inf"),
        (np.array([[1.5, -0.5], [0.5, 0.5]]), "negative entries"),
        (
            np.array([[0.5, 0.4], [0.5, 0.5]]),
            r"sum to 1 within 1e-06: 1 row\(s\) are off, worst by 0.1",
        ),
        (np.zeros((0, 3)), "no rows"),
    ],
)
def test_bad_input_errors_are_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as ei:
        scores.inception_score(bad, n_splits=1)
    assert "\n" not in str(ei.value)


def test_row_sum_tolerance_is_1e_6():
    p = np.array([[0.5, 0.5 + 5e-7], [0.5, 0.5]])
    scores.inception_score(p, 1)  # within tolerance
    with pytest.raises(ValueError, match="worst by 2e-06"):
        scores.inception_score(np.array([[0.5, 0.5 + 2e-6], [0.5, 0.5]]), 1)


@pytest.mark.parametrize(
    "s, msg",
    [
        (0, "n_splits must be at least 1"),
        (-1, "n_splits must be at least 1"),
        (11, "n_splits=11 is more than the N=10 samples"),
        (True, "n_splits must be an integer"),
    ],
)
def test_bad_n_splits(s, msg):
    with pytest.raises(HarnessError, match=msg):
        scores.inception_score(dirichlet(10, 3), n_splits=s)


def test_bad_order_and_ddof():
    with pytest.raises(ValueError, match="order must be None"):
        scores.inception_score(dirichlet(10, 3), 2, order="shuffle")
    with pytest.raises(ValueError, match="ddof"):
        scores.inception_score(dirichlet(10, 3), 2, ddof=-1)


def test_doctests():
    res = doctest.testmod(scores, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
