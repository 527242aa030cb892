"""The 1-D toy example against closed forms and the trapezoidal rule (independent of quad)."""

import math

import numpy as np
import pytest

from harness import toy


def trapezoid_expect(f, mu, sigma, step=0.01):
    """E[f(X)], X ~ N(mu, sigma^2), by the trapezoidal rule on a uniform grid.

    For integrands analytic in a strip around the real axis (here: the nearest pole of
    sigmoid(a x) is at distance pi/a) the uniform trapezoidal rule converges geometrically,
    error ~ exp(-2 pi d / step): far below 1e-12 here.  Independent of scipy's quad.
    """
    x = np.arange(mu - 40 * sigma, mu + 40 * sigma + step / 2, step)
    dens = np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return float(np.sum(f(x) * dens) * step)


def h_binary(p):
    p = np.clip(p, 1e-300, 1 - 1e-16)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def is_from_conditional_entropy(h_cond):
    # by symmetry p_hat(y=1) = 1/2 for every generator here, so H(y) = ln 2
    return math.exp(math.log(2) - h_cond)


@pytest.mark.parametrize("scale_is", ["variance", "std"])
def test_plus_minus_infinity_attains_the_maximum(scale_is):
    ex = toy.exact("plus_minus_infinity", toy.ToySetup(scale_is=scale_is))
    assert ex.inception_score == 2.0
    assert ex.conditional_entropy_nats == 0.0


@pytest.mark.parametrize("scale_is", ["variance", "std"])
def test_uniform_matches_closed_form(scale_is):
    # integral over R of H(sigmoid(a x)) dx = pi^2 / (3 a); the tails beyond +-100 are < e^-50
    s = toy.ToySetup(scale_is=scale_is)
    h_cond = math.pi**2 / (3 * s.slope * 200.0)
    ex = toy.exact("uniform_-100_100", s)
    assert ex.inception_score == pytest.approx(is_from_conditional_entropy(h_cond), rel=1e-10)


@pytest.mark.parametrize("scale_is", ["variance", "std"])
def test_true_mixture_and_wide_normal_match_trapezoid_rule(scale_is):
    s = toy.ToySetup(scale_is=scale_is)
    a = s.slope
    f = lambda x: h_binary(1 / (1 + np.exp(-a * x)))  # noqa: E731
    sig = s.class_sigma
    h_mix = 0.5 * trapezoid_expect(f, -1, sig) + 0.5 * trapezoid_expect(f, 1, sig)
    assert toy.exact("true_mixture", s).inception_score == pytest.approx(
        is_from_conditional_entropy(h_mix), rel=1e-8
    )
    h_wide = trapezoid_expect(f, 0, s.sigma(20.0))
    assert toy.exact("normal_0_20", s).inception_score == pytest.approx(
        is_from_conditional_entropy(h_wide), rel=1e-8
    )


def test_conventions_differ_and_are_read_consistently():
    v, sd = toy.ToySetup(scale_is="variance"), toy.ToySetup(scale_is="std")
    assert v.class_sigma == pytest.approx(math.sqrt(2)) and sd.class_sigma == 2.0
    assert v.sigma(20) == pytest.approx(math.sqrt(20)) and sd.sigma(20) == 20
    assert v.slope == pytest.approx(1.0) and sd.slope == pytest.approx(0.5)
    with pytest.raises(ValueError, match="variance' or 'std"):
        toy.ToySetup(scale_is="sd")


def test_posterior_is_bayes_rule():
    s = toy.ToySetup()
    x = np.linspace(-5, 5, 11)
    pdf = lambda x, m: np.exp(-((x - m) ** 2) / (2 * s.class_sigma**2))  # noqa: E731
    bayes = pdf(x, 1) / (pdf(x, 1) + pdf(x, -1))
    np.testing.assert_allclose(toy.posterior(x, s), bayes, rtol=1e-12)
    np.testing.assert_allclose(toy.class_probs(x, s).sum(axis=1), 1.0, rtol=1e-15)


def test_pathological_generators_beat_the_true_mixture():
    s = toy.ToySetup()
    base = toy.exact("true_mixture", s).inception_score
    for g in ("plus_minus_infinity", "uniform_-100_100", "normal_0_20"):
        assert toy.exact(g, s).inception_score > base


def test_monte_carlo_agrees_with_exact_within_sampling_error():
    from harness import scores

    s = toy.ToySetup()
    rng = np.random.default_rng(0)
    for g in toy.GENERATORS:
        probs = toy.class_probs(toy.sample(g, 200_000, s, rng), s)
        sg = scores.improved_score(probs)
        ex = toy.exact(g, s)
        assert abs(sg.nats - ex.mutual_information_nats) < 5 * sg.sem + 1e-5, g


def test_unknown_generator():
    with pytest.raises(ValueError, match="unknown toy generator"):
        toy.exact("cauchy", toy.ToySetup())
