"""Chong & Forsyth 2020's effectively unbiased IS and FID: IS_inf and FID_inf.

IS and FID computed from N samples are biased, the bias roughly linear in 1/N (for the IS, to
first order ``ln IS_N`` is low by ``sum_y Var_x p(y|x) / (2 N p(y))``, at most
``(C - 1) / (2N)`` for C classes).  The extrapolated score (../shared/paper-notes.md section
10): evaluate the score on subsets of ``count`` sizes :func:`sample_sizes`
(``linspace(n_min, N, count)`` rounded), fit ``value = a + b / size`` by ordinary least
squares, and report the intercept ``a`` (the score at ``1/size = 0``).  Conventions:

* subsets: one ``np.random.default_rng(seed)``; for each size (ascending) a fresh
  ``permutation(N)`` whose first ``size`` rows are the subset (without replacement; the
  authors' code shuffles the array in place with ``np.random.shuffle`` and takes the first
  rows: the same distribution).  The last size is N: the full set, reordered.
* sizes: ``np.rint(np.linspace(n_min, N, count))`` (half to even; the authors' code truncates
  with ``astype('int32')``); ``n_min`` defaults to ``max(N // 10, 2)`` (dgm-eval:
  ``min(5000, max(N // 10, 2))``, the authors: 5,000; all agree at N = 50,000).
* IS: one split per subset, ``exp(mean_i KL(p(y|x_i) || p_hat(y)))`` with ``p_hat`` the
  subset's mean row (:func:`harness.scores.inception_score` with ``n_splits=1``; the authors'
  ``calculate_inception_score`` defaults to ``num_splits=1``).  The IS itself is fitted, as the
  authors do: ``IS_n ~ IS exp(-k / n)`` is convex in 1/n, so the line undershoots unless the
  smallest size is well above ``k`` (~ the bias constant above; with k = 395 and sizes
  1,000 .. 4,000 the noise-free line leaves a fifth of IS_N's bias).
* FID: each subset's statistics against reference statistics fixed from the **full**
  reference set (as dgm-eval and the authors' code do), by
  :func:`harness.feature_metrics.fid_against_stats` (``feature_stats`` + ``frechet_distance``;
  exact in the subset's sample space when size <= D).
* fit: the intercept's standard error is the classic OLS one, ``sqrt(s^2 [(X'X)^-1]_00)`` with
  ``s^2 = RSS / (k - 2)``; it measures the scatter of the subset values about the line and
  treats them as independent.  They are not (all subsets come from one set of N), and the
  N-sample fluctuation shared by every subset is not in it: it is the line's precision, not the
  error of the intercept against the population score (tests/test_extrapolation.py: FID_inf's
  spread over seeds is 2.5x its typical standard error).

Nothing here runs a network: both functions take the cached pass's arrays.

>>> import numpy as np
>>> sample_sizes(1000, count=4).tolist()
[100, 400, 700, 1000]
>>> res = is_infinity(np.full((100, 4), 0.25), count=5)   # a classifier that knows nothing
>>> round(res.value, 12), res.sizes.tolist()
(1.0, [10, 32, 55, 78, 100])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, HarnessError
from .feature_metrics import (
    COV_BLOCK_ROWS,
    FeatureStats,
    feature_stats,
    fid_against_stats,
    frechet_distance_to_factored,
)
from .sample_metrics import _check_int, _check_seed, check_features
from .scores import PreparedProbs, inception_score, prepare

__all__ = [
    "METHOD",
    "ExtrapolationResult",
    "sample_sizes",
    "is_infinity",
    "fid_infinity",
]

METHOD = "least squares in 1/N (Chong & Forsyth 2020)"
SUBSETS = (
    "without replacement: np.random.default_rng(seed), a fresh permutation(N) per size "
    "(ascending), its first n rows"
)


def sample_sizes(n: int, n_min: int | None = None, count: int = 15) -> np.ndarray:
    """``count`` distinct integer sizes ``np.rint(np.linspace(n_min, n, count))``, ascending,
    the last = ``n``; ``n_min`` None: ``max(n // 10, 2)``.

    >>> sample_sizes(50000).tolist()[:3]
    [5000, 8214, 11429]
    """
    n = _check_int(n, "n", 3)
    count = _check_int(count, "count", 3)
    if n_min is None:
        n_min = max(n // 10, 2)
    n_min = _check_int(n_min, "n_min", 2)
    if n_min >= n:
        raise ConfigError(
            f"n_min={n_min} must be smaller than the number of samples N={n}; lower n_min or "
            "use more samples"
        )
    sizes = np.unique(np.rint(np.linspace(n_min, n, count)).astype(np.int64))
    if len(sizes) < count:
        raise ConfigError(
            f"count={count}: only {len(sizes)} distinct sizes lie from n_min={n_min} to N={n}; "
            f"use more samples, a smaller n_min, or a smaller count (at most {n - n_min + 1})"
        )
    return sizes


@dataclass(frozen=True)
class ExtrapolationResult:
    """A score extrapolated to infinitely many samples by a line in 1/size.

    ``value``: the intercept (the score at 1/size = 0); ``stderr``: its classic OLS standard
    error (module docstring: the line's precision only); ``slope``: the coefficient of 1/size;
    ``r2``: the fit's R^2 (1.0 when every value is equal); ``sizes``/``values``: the subsets'
    sizes and scores; ``value_at_n``: the score of the full set (the last size, N).
    """

    metric: str  # "inception_score" | "fid"
    value: float
    stderr: float
    slope: float
    r2: float
    sizes: np.ndarray
    values: np.ndarray
    value_at_n: float
    n: int
    seed: int
    details: dict = field(default_factory=dict)

    def provenance(self) -> dict:
        p = {"inception_score": "is_inf", "fid": "fid_inf"}[self.metric]
        out = {
            f"{p}_method": METHOD,
            f"{p}_sizes_count": len(self.sizes),
            f"{p}_size_min": int(self.sizes[0]),
            f"{p}_size_max": int(self.sizes[-1]),
            f"{p}_seed": self.seed,
            f"{p}_subsets": SUBSETS,
            f"{p}_stderr": self.stderr,
            f"{p}_stderr_kind": "classic OLS s^2 (X'X)^-1, s^2 = RSS/(k-2): the line's "
            "precision (subsets treated as independent)",
            f"{p}_slope": self.slope,
            f"{p}_r2": self.r2,
            f"{p}_at_n": self.value_at_n,
        }
        out.update({f"{p}_{k}": v for k, v in self.details.items()})
        return out


def _fit_line(sizes: np.ndarray, values: np.ndarray):
    """OLS of ``values`` on ``1 / sizes`` with an intercept: (intercept, its standard error,
    slope, R^2).  Centred on the mean of 1/size (the same fit, better conditioned)."""
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    k = len(x)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    s2 = rss / (k - 2)
    stderr = math.sqrt(s2 * (1.0 / k + x.mean() ** 2 / sxx))
    r2 = 1.0 - rss / tss if tss > 0 else 1.0
    return intercept, stderr, slope, r2


def _subsets(n: int, sizes: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    for size in sizes:
        yield rng.permutation(n)[:size]


def _result(metric, sizes, values, n, seed, details) -> ExtrapolationResult:
    intercept, stderr, slope, r2 = _fit_line(sizes, values)
    return ExtrapolationResult(
        metric, intercept, stderr, slope, r2, sizes, values, float(values[-1]), n, seed, details
    )


def is_infinity(
    probs, n_min: int | None = None, count: int = 15, seed: int = 0
) -> ExtrapolationResult:
    """IS_inf: the one-split Inception Score of ``count`` random subsets of ``probs`` (N x C
    class probabilities), extrapolated to 1/size = 0 (module docstring)."""
    try:
        prep = prepare(probs)
    except HarnessError as exc:  # one line naming probs, as a ConfigError
        raise ConfigError(str(exc)) from None
    seed = _check_seed(seed)
    sizes = sample_sizes(prep.n, n_min, count)
    values = np.empty(len(sizes))
    for i, rows in enumerate(_subsets(prep.n, sizes, seed)):
        sub = PreparedProbs(probs=prep.probs[rows], neg_entropy=prep.neg_entropy[rows])
        values[i] = inception_score(sub, n_splits=1).mean
    return _result("inception_score", sizes, values, prep.n, seed, {"splits": 1})


def fid_infinity(
    features,
    reference,
    n_min: int | None = None,
    count: int = 15,
    seed: int = 0,
    factors: dict | None = None,
) -> ExtrapolationResult:
    """FID_inf of generated ``features`` (N x D) against ``reference``: reference features
    (M x D) or their :class:`~harness.feature_metrics.FeatureStats`, fixed from the full
    reference set; the generated features are subsampled per size (module docstring).
    ``factors``: an empty dict kept across calls against the same reference statistics (its
    covariance is then factored once for all of them: the same numbers)."""
    f = check_features(features, "features", as_float64=False)  # float64 blockwise below
    if isinstance(reference, FeatureStats):
        ref = reference
        if ref.dim != f.shape[1]:
            raise ConfigError(
                f"reference statistics have {ref.dim} feature dimensions but features has "
                f"{f.shape[1]}; both must come from the same backbone layer"
            )
        described = f"FeatureStats (n={ref.n})"
    else:
        r = check_features(reference, "reference")
        if r.shape[1] != f.shape[1]:
            raise ConfigError(
                f"reference has {r.shape[1]} feature dimensions but features has {f.shape[1]}; "
                "both must come from the same backbone layer"
            )
        ref = feature_stats(r)
        described = f"features (n={len(r)}), statistics of the full set"
    seed = _check_seed(seed)
    sizes = sample_sizes(len(f), n_min, count)
    values = np.empty(len(sizes))
    factors = {} if factors is None else factors  # the reference's covariance factored once
    moments = _SubsetMoments(f)
    for i, rows in enumerate(_subsets(len(f), sizes, seed)):
        if len(rows) <= f.shape[1]:  # exact in the subset's sample space
            values[i] = fid_against_stats(f[rows], ref, factors).value
        else:
            values[i] = frechet_distance_to_factored(moments.stats(rows), ref, factors).value
    return _result("fid", sizes, values, len(f), seed, {"reference": described})


class _SubsetMoments:
    """Mean and covariance (ddof 1) of row subsets of one feature set, in float64 about the
    full set's mean (a shift that leaves every covariance unchanged and keeps the products
    small).  A subset of more than half the rows takes the full set's centred product minus
    its complement's (the same value; at most N/2 rows of products per subset instead of up
    to N: FID_inf's 15 sizes cost ~1.6x fewer row products, benchmarks/README.md)."""

    def __init__(self, features: np.ndarray):
        self.f = features
        self.center = features.mean(axis=0, dtype=np.float64)
        self._full = None  # (sum, product) of all rows, when a large subset first needs it
        rows = min(COV_BLOCK_ROWS, len(features))
        # gathered and centred rows go into two reused buffers (no fresh pages per block)
        self._raw = np.empty((rows, features.shape[1]), dtype=features.dtype)
        self._buf = np.empty((rows, features.shape[1]))

    def _moments(self, rows: np.ndarray):
        d = self.f.shape[1]
        total, prod = np.zeros(d), np.zeros((d, d))
        for s in range(0, len(rows), COV_BLOCK_ROWS):
            idx = rows[s : s + COV_BLOCK_ROWS]
            raw = np.take(self.f, idx, axis=0, out=self._raw[: len(idx)])
            block = np.subtract(raw, self.center, out=self._buf[: len(idx)], dtype=np.float64)
            total += block.sum(axis=0)
            prod += block.T @ block
        return total, prod

    def stats(self, rows: np.ndarray) -> FeatureStats:
        n, m = len(self.f), len(rows)
        if 2 * m > n:
            if self._full is None:
                self._full = self._moments(np.arange(n))
            keep = np.ones(n, dtype=bool)
            keep[rows] = False
            rest_sum, rest_prod = self._moments(np.flatnonzero(keep))
            total, prod = self._full[0] - rest_sum, self._full[1] - rest_prod
        else:
            total, prod = self._moments(np.sort(rows))
        mean = total / m
        sigma = (prod - m * np.outer(mean, mean)) / (m - 1)
        return FeatureStats(self.center + mean, (sigma + sigma.T) / 2, m)
