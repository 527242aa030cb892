"""Class-probability vectors from a known generative process, with known mutual information.

The ``simulated`` probability source stands in for a classifier's outputs when no network or
data is available, and gives ground truth for the bias of the split estimator:

* each sample has a "true" class y* ~ Categorical(pi), pi ~ Dirichlet(alpha 1) drawn once
  from the seed (a non-uniform marginal over C = 1000 classes);
* its confidence leak a ~ Beta(beta_a, beta_b);
* p(y|x) = (1 - a) e_{y*} + a / C  (the rest spread uniformly).

Then p(y) = E[1 - a] pi + E[a] / C exactly, and H(y|x) depends on a alone:
h(a) = -(1 - a + a/C) ln(1 - a + a/C) - (C - 1) (a/C) ln(a/C).  The true mutual information
I(y; x) = H(p(y)) - E_a[h(a)] is computed with adaptive quadrature over the Beta density
(accurate to ~1e-10), so exp(I) is the true Inception Score the estimators try to recover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, special, stats


@dataclass(frozen=True)
class SimulatedProbs:
    num_classes: int = 1000
    beta_a: float = 2.0
    beta_b: float = 5.0
    seed: int = 0

    def marginal_classes(self) -> np.ndarray:
        return np.random.default_rng([self.seed, 1]).dirichlet(np.ones(self.num_classes))

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n x C float64 probabilities (rows sum to 1 exactly up to rounding)."""
        rng = np.random.default_rng([self.seed, 2] if seed is None else [self.seed, 3, seed])
        c = self.num_classes
        ystar = rng.choice(c, size=n, p=self.marginal_classes())
        a = rng.beta(self.beta_a, self.beta_b, size=n)
        p = np.repeat((a / c)[:, None], c, axis=1)
        p[np.arange(n), ystar] += 1.0 - a
        return p

    def _h(self, a: float) -> float:
        c = self.num_classes
        top = 1.0 - a + a / c
        rest = a / c
        return -(special.xlogy(top, top) + (c - 1) * special.xlogy(rest, rest))

    def true_conditional_entropy(self) -> float:
        dist = stats.beta(self.beta_a, self.beta_b)
        val, _ = integrate.quad(
            lambda a: self._h(a) * dist.pdf(a), 0.0, 1.0, epsabs=1e-13, epsrel=1e-12, limit=200
        )
        return float(val)

    def true_marginal(self) -> np.ndarray:
        mean_a = self.beta_a / (self.beta_a + self.beta_b)
        return (1.0 - mean_a) * self.marginal_classes() + mean_a / self.num_classes

    def true_mutual_information(self) -> float:
        q = self.true_marginal()
        h_y = float(-special.xlogy(q, q).sum())
        return h_y - self.true_conditional_entropy()

    def true_inception_score(self) -> float:
        return math.exp(self.true_mutual_information())

    def describe(self) -> dict:
        return {
            "source": "simulated",
            "num_classes": self.num_classes,
            "beta_a": self.beta_a,
            "beta_b": self.beta_b,
            "sim_seed": self.seed,
            "true_mutual_information_nats": self.true_mutual_information(),
            "true_inception_score": self.true_inception_score(),
        }
