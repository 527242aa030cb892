"""The paper's 1-D two-Gaussian toy example (Barratt & Sharma 2018, section 4.1.1).

Data: with probability 1/2 each, x ~ N(-1, s) (class 0) or N(+1, s) (class 1).  The paper
writes "N(+-1, 2)" without saying whether 2 is the variance or the std, so ``scale_is``
(``"variance"`` or ``"std"``) says how ``scale`` is read; the generator N(0, 20) is read under
the same convention.  The classifier is the exact Bayes posterior

    p(y=1 | x) = sigmoid(2 x / sigma^2),

because log N(x; 1, sigma^2) - log N(x; -1, sigma^2) = 2 x / sigma^2.

For any generator g, p_hat(y=1) = E_g[p(y=1|x)] and ln IS(g) = H(p_hat) - E_g[H(p(y|x))].
This module computes that exactly (adaptive quadrature) and by Monte Carlo; the Monte Carlo
path goes through :mod:`harness.scores`, so the two are independent computations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, special

from .errors import HarnessError

GENERATORS = ("true_mixture", "plus_minus_infinity", "uniform_-100_100", "normal_0_20")

PAPER_CLAIMS = {
    "true_mixture": "the real data distribution: it scores lower than the pathological generators "
    "below",
    "plus_minus_infinity": "outputs only ±infinity yet attains the maximum IS = 2 (number of "
    "classes)",
    "uniform_-100_100": "samples look nothing like the data, yet it scores higher than the true "
    "mixture",
    "normal_0_20": "a broad Gaussian unlike the data, yet it scores higher than the true mixture",
}


@dataclass(frozen=True)
class ToySetup:
    scale: float = 2.0
    scale_is: str = "variance"  # how `scale` (and N(0, 20)'s 20) is read: "variance" | "std"
    wide_scale: float = 20.0
    uniform_low: float = -100.0
    uniform_high: float = 100.0

    def __post_init__(self):
        if self.scale_is not in ("variance", "std"):
            raise HarnessError(f"toy.scale_is must be 'variance' or 'std', got {self.scale_is!r}")
        if not self.scale > 0 or not self.wide_scale > 0:
            raise HarnessError("toy.scale and the wide generator's scale must be positive")
        if not self.uniform_high > self.uniform_low:
            raise HarnessError("toy uniform generator needs high > low")

    def sigma(self, value: float) -> float:
        """Standard deviation for a scale value under this setup's convention."""
        return math.sqrt(value) if self.scale_is == "variance" else float(value)

    @property
    def class_sigma(self) -> float:
        return self.sigma(self.scale)

    @property
    def slope(self) -> float:
        """a in p(y=1|x) = sigmoid(a x)."""
        return 2.0 / self.class_sigma**2


def posterior(x, setup: ToySetup) -> np.ndarray:
    """p(y=1|x) for the Bayes classifier; exact 0/1 at x = -inf/+inf."""
    return special.expit(setup.slope * np.asarray(x, dtype=np.float64))


def class_probs(x, setup: ToySetup) -> np.ndarray:
    """N x 2 matrix [p(y=0|x), p(y=1|x)], computed stably in both tails."""
    z = setup.slope * np.asarray(x, dtype=np.float64)
    return np.stack([special.expit(-z), special.expit(z)], axis=-1)


def binary_entropy_of_logit(z) -> np.ndarray:
    """H(sigmoid(z)) in nats, stable for any z: sigma(z) softplus(-z) + sigma(-z) softplus(z)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        h = special.expit(z) * np.logaddexp(0.0, -z) + special.expit(-z) * np.logaddexp(0.0, z)
    return np.where(np.isinf(z), 0.0, h)


def _entropy_nats(p: float) -> float:
    return float(-sum(v * math.log(v) for v in (p, 1.0 - p) if v > 0))


def _normal_pdf(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def densities(setup: ToySetup) -> dict:
    """Density function of each generator (``plus_minus_infinity`` has none: point masses)."""
    s = setup.class_sigma
    w = setup.sigma(setup.wide_scale)
    lo, hi = setup.uniform_low, setup.uniform_high
    return {
        "true_mixture": lambda x: 0.5 * _normal_pdf(x, -1, s) + 0.5 * _normal_pdf(x, 1, s),
        "uniform_-100_100": lambda x: np.where((x >= lo) & (x <= hi), 1.0 / (hi - lo), 0.0),
        "normal_0_20": lambda x: _normal_pdf(x, 0, w),
    }


def _expect(f, generator: str, setup: ToySetup) -> float:
    """E_g[f(x)] by adaptive quadrature over the generator's support (tails < 1e-30)."""
    opts = dict(epsabs=0.0, epsrel=1e-13, limit=500)
    if generator == "true_mixture":
        s = setup.class_sigma
        total = 0.0
        for mu in (-1.0, 1.0):
            span = 40.0 * s  # N(mu, s) beyond 40 sigma carries < 1e-300 of the mass
            for a, b in ((mu - span, mu), (mu, mu + span)):
                total += (
                    0.5
                    * integrate.quad(lambda x, m=mu: f(x) * _normal_pdf(x, m, s), a, b, **opts)[0]
                )
        return total
    if generator == "normal_0_20":
        w = setup.sigma(setup.wide_scale)
        span = 40.0 * w
        return sum(
            integrate.quad(lambda x: f(x) * _normal_pdf(x, 0.0, w), a, b, **opts)[0]
            for a, b in ((-span, 0.0), (0.0, span))
        )
    if generator == "uniform_-100_100":
        lo, hi = setup.uniform_low, setup.uniform_high
        pts = sorted({lo, min(max(0.0, lo), hi), hi})
        return sum(
            integrate.quad(f, a, b, **opts)[0] / (hi - lo)
            for a, b in zip(pts[:-1], pts[1:])
            if b > a
        )
    if generator == "plus_minus_infinity":
        return 0.5 * float(f(-np.inf)) + 0.5 * float(f(np.inf))
    raise HarnessError(f"unknown toy generator {generator!r}; choose from {', '.join(GENERATORS)}")


@dataclass(frozen=True)
class ToyExact:
    generator: str
    inception_score: float
    mutual_information_nats: float
    conditional_entropy_nats: float
    marginal_entropy_nats: float
    p_class1: float


def exact(generator: str, setup: ToySetup) -> ToyExact:
    """IS and entropies of a generator under the Bayes classifier, by quadrature."""
    a = setup.slope
    p1 = _expect(lambda x: float(special.expit(a * x)), generator, setup)
    h_cond = _expect(lambda x: float(binary_entropy_of_logit(a * x)), generator, setup)
    h_marg = _entropy_nats(p1)
    mi = max(h_marg - h_cond, 0.0)
    return ToyExact(generator, math.exp(mi), mi, h_cond, h_marg, p1)


def sample(generator: str, n: int, setup: ToySetup, rng: np.random.Generator) -> np.ndarray:
    """n draws from a generator (``plus_minus_infinity`` yields exact +-inf)."""
    if generator == "true_mixture":
        mu = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return mu + setup.class_sigma * rng.standard_normal(n)
    if generator == "plus_minus_infinity":
        return np.where(rng.random(n) < 0.5, -np.inf, np.inf)
    if generator == "uniform_-100_100":
        return rng.uniform(setup.uniform_low, setup.uniform_high, n)
    if generator == "normal_0_20":
        return setup.sigma(setup.wide_scale) * rng.standard_normal(n)
    raise HarnessError(f"unknown toy generator {generator!r}; choose from {', '.join(GENERATORS)}")
