"""Xu et al. 2018's sample-based metrics on any features or class probabilities.

Pure numpy, float64, each function taking arrays (the cached pass's outputs: no network is
called) and returning a frozen dataclass with ``provenance()``.  Definitions
(../shared/paper-notes.md section 10):

* **Mode Score**, ``form="xu"`` (the default): what Xu et al.'s code computes (``metric.py``,
  ``mode_score``), ``exp(E_x KL(p(y|x) || p(y)) - KL(p(y) || p*(y)))``: the one-split IS
  penalised by the mismatch of the label marginals (``KL = inf`` there gives 0).  Che et al.
  2016's formula as written, ``form="che"``:
  ``exp(E_x KL(p(y|x) || p*(y)) - KL(p(y) || p*(y)))``, ``p*(y)`` the mean row of
  ``reference_probs`` (the reference set's label marginal), ``p(y)`` the mean row of ``probs``,
  ``0 log 0 = 0``.  Expanding both KLs, the ``p*`` terms cancel: this equals
  ``exp(H(y) - H(y|x))``, the one-split Inception Score, whenever it is finite (a class with
  ``p*(y) = 0`` that ``probs`` predicts makes it ``inf - inf``: a :class:`ConfigError`).
  Both are recorded with their parts; ``xu`` is the default because ``che`` cannot tell
  anything the IS does not.
* **Kernel MMD^2** (Gretton et al. 2012), unbiased: ``k(a, b) = exp(-|a - b|^2 / (2 sigma^2))``,
  ``sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
  - 2 sum_{i, j} k(x_i, y_j) / (m n)`` (can be slightly negative).  ``sigma`` set, or by the
  median heuristic: ``np.median`` of the Euclidean distances of all distinct pairs ``i < j`` of
  the pooled set ``x`` then ``y`` (at most :data:`MEDIAN_MAX_POINTS` points: a larger pooled set
  is subsampled with ``np.random.default_rng(seed).choice(N, MEDIAN_MAX_POINTS, replace=False)``,
  recorded).  Kernel sums in row blocks (no N x N matrix).
* **Wasserstein-1** with uniform weights and Euclidean ground cost: exact optimal transport
  (POT's ``ot.emd2``, network simplex) when both sets have at most ``exact_max`` rows, else the
  sliced Wasserstein-1 ``E_theta W_1(theta#x, theta#y)`` over ``projections`` random directions
  uniform on the sphere (POT's ``ot.sliced_wasserstein_distance(..., p=1)``: each projection's
  1-D ``W_1``, averaged; smaller than ``W_1`` by a dimension-dependent factor (about
  ``sqrt(2 / (pi D))`` for a shift), so the two are never compared).
* **1-NN two-sample test** (Lopez-Paz & Oquab 2017): real and fake pooled (real rows first),
  each row labelled by its nearest *other* row (Euclidean; leave-one-out); accuracy overall, on
  real, on fake (0.5 overall: indistinguishable).  A tie in distance goes to the lowest index
  of the pooled order (real then fake); ties are decided on direct-difference distances.

Euclidean distances come from ``|a|^2 + |b|^2 - 2 a.b`` (BLAS) on rows centred on a common
mean, in blocks of :data:`BLOCK_ROWS` rows; pairs closer than 1e-3 of their norms (where that
formula loses digits: duplicates, copies) are recomputed by direct differences, so a copy is at
distance exactly 0.

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(30, 3))
>>> one_nn_two_sample(x, x).accuracy            # duplicates: every row's nearest is its twin
0.0
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, HarnessError
from .scores import validate_probs

__all__ = [
    "BLOCK_ROWS",
    "MEDIAN_MAX_POINTS",
    "MODE_SCORE_FORMS",
    "ModeScoreResult",
    "MMDResult",
    "WassersteinResult",
    "OneNNResult",
    "check_features",
    "check_feature_pair",
    "nearest_neighbors",
    "mode_score",
    "mmd2_gaussian",
    "median_heuristic",
    "wasserstein1",
    "one_nn_two_sample",
]

#: rows per block in the distance computations (block x N float64 at a time)
BLOCK_ROWS = 1024
#: the median heuristic uses at most this many pooled points (4,000: 8 million distances)
MEDIAN_MAX_POINTS = 4000
#: squared distances below this fraction of |a|^2 + |b|^2 are recomputed by direct differences
_CANCEL_RTOL = 1e-6
#: nearest-neighbour candidates within this fraction of |a|^2 + max |b|^2 of the best squared
#: distance are re-ranked on direct-difference distances (far above BLAS rounding)
_TIE_RTOL = 1e-9


# --- validation ------------------------------------------------------------------------------


def check_features(x, name: str, min_rows: int = 2, as_float64: bool = True) -> np.ndarray:
    """``x`` as a C-contiguous float64 N x D array, or a one-line :class:`ConfigError` naming
    ``name``: not 2-D, not numeric, fewer than ``min_rows`` rows, no columns, NaN or inf.
    ``as_float64=False``: float32 stays float32 (for callers that convert blocks to float64
    themselves; no full-size float64 copy)."""
    if callable(x) and not hasattr(x, "__array__"):
        raise ConfigError(
            f"{name} is a callable ({type(x).__name__}); pass the cached feature array "
            "(these metrics never run a network)"
        )
    a = np.asarray(x)
    if a.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (N samples x D features), got shape {a.shape}")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise ConfigError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise ConfigError(f"{name} must be real, got dtype {a.dtype}")
    if a.shape[1] < 1:
        raise ConfigError(f"{name} has no feature columns (shape {a.shape})")
    if len(a) < min_rows:
        raise ConfigError(f"{name} has {len(a)} row(s); this metric needs at least {min_rows}")
    keep = not as_float64 and a.dtype == np.float32
    a = np.ascontiguousarray(a, dtype=np.float32 if keep else np.float64)
    if not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a).all(axis=1)))
        raise ConfigError(f"{name} has NaN or inf in {bad} row(s); fix the upstream features")
    return a


def check_feature_pair(x, y, names=("x", "y"), min_rows: int = 2):
    """Both sets validated by :func:`check_features`, with equal feature dimensions."""
    a = check_features(x, names[0], min_rows)
    b = check_features(y, names[1], min_rows)
    if a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"{names[1]} has {b.shape[1]} feature dimensions but {names[0]} has {a.shape[1]}; "
            "both sets must come from the same backbone layer"
        )
    return a, b


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _check_seed(seed) -> int:
    seed = _check_int(seed, "seed", 0)
    if seed > 2**32 - 1:
        raise ConfigError(f"seed={seed} must be from 0 to {2**32 - 1}")
    return seed


# --- Euclidean distances in blocks -----------------------------------------------------------


def _sq_norms(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, a)


def _direct_sq(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``|a_i - b_j|^2`` by direct differences for the index pairs, in chunks."""
    out = np.empty(len(i))
    step = max(1, (1 << 22) // max(a.shape[1], 1))  # ~32 MB of differences at a time
    for s in range(0, len(i), step):
        diff = a[i[s : s + step]] - b[j[s : s + step]]
        out[s : s + step] = np.einsum("ij,ij->i", diff, diff)
    return out


def _sq_dists(a, a2, b, b2) -> np.ndarray:
    """Squared Euclidean distances, BLAS formula; cancelling pairs recomputed directly."""
    scale = a2[:, None] + b2[None, :]
    d = scale - 2.0 * (a @ b.T)
    i, j = np.nonzero(d < _CANCEL_RTOL * scale)
    if len(i):
        d[i, j] = _direct_sq(a, b, i, j)
    np.maximum(d, 0.0, out=d)
    return d


def _centred(*sets: np.ndarray):
    """The sets shifted by their pooled mean (distances unchanged, fewer digits cancelled)."""
    center = np.concatenate(sets).mean(axis=0)
    return [s - center for s in sets]


def nearest_neighbors(query, ref, exclude_self: bool = False, block: int | None = None):
    """Index and Euclidean distance of each ``query`` row's nearest ``ref`` row (exact).

    ``exclude_self``: search ``query`` itself (``ref`` is ignored, may be None); row i may not
    pick itself (leave-one-out).  Ties go to the lowest ``ref`` index: candidates within BLAS
    rounding of the best are re-ranked on direct-difference distances of the rows as given,
    which are also the returned distances.  ``block``: query rows per block (default
    :data:`BLOCK_ROWS`).  Arrays are validated by the caller (float64, 2-D, equal widths).
    """
    block = BLOCK_ROWS if block is None else int(block)
    query = np.asarray(query, dtype=np.float64)
    ref = query if exclude_self else np.asarray(ref, dtype=np.float64)
    if exclude_self:
        (q,) = _centred(query)
        r = q
    else:
        q, r = _centred(query, ref)
    q2, r2 = _sq_norms(q), _sq_norms(r)
    if exclude_self and len(r) < 2:
        raise HarnessError("a leave-one-out nearest neighbour needs at least 2 rows")
    idx = np.empty(len(q), dtype=np.int64)
    dist = np.empty(len(q))
    r2max = float(r2.max(initial=0.0))
    for s in range(0, len(q), block):
        d = _sq_dists(q[s : s + block], q2[s : s + block], r, r2)
        rows = np.arange(len(d))
        if exclude_self:
            d[rows, rows + s] = np.inf
        best = d.min(axis=1)
        tol = _TIE_RTOL * (q2[s : s + block] + r2max)
        ci, cj = np.nonzero(d <= (best + tol)[:, None])
        exact = _direct_sq(query, ref, ci + s, cj)  # the rows as given: ties stay ties
        # per row: smallest exact distance, then lowest column (lexsort: last key first)
        order = np.lexsort((cj, exact, ci))
        first = np.ones(len(order), dtype=bool)
        first[1:] = ci[order][1:] != ci[order][:-1]
        pick = order[first]
        idx[s + ci[pick]] = cj[pick]
        dist[s + ci[pick]] = np.sqrt(exact[pick])
    return idx, dist


# --- Mode Score --------------------------------------------------------------------------------

MODE_SCORE_FORMS = ("che", "xu")


@dataclass(frozen=True)
class ModeScoreResult:
    """Mode Score and its parts, in nats: ``cross_kl`` = E_x KL(p(y|x) || p*(y)),
    ``inception_kl`` = E_x KL(p(y|x) || p(y)) (ln of the one-split IS), ``marginal_kl`` =
    KL(p(y) || p*(y)).  ``che`` = exp(cross_kl - marginal_kl) (= exp(inception_kl) when finite);
    ``xu`` = exp(inception_kl - marginal_kl)."""

    value: float
    form: str
    cross_kl: float
    inception_kl: float
    marginal_kl: float
    n: int
    n_reference: int
    num_classes: int

    def provenance(self) -> dict:
        formula = {
            "che": "exp(E KL(p(y|x)||p*(y)) - KL(p(y)||p*(y))) (Che et al. 2016)",
            "xu": "exp(E KL(p(y|x)||p(y)) - KL(p(y)||p*(y))) (Xu et al. 2018 code)",
        }[self.form]
        return {
            "mode_score_form": self.form,
            "mode_score_formula": formula,
            "mode_score_reference_marginal": f"mean of {self.n_reference} reference rows",
            "mode_score_marginal_kl_nats": self.marginal_kl,
            "mode_score_inception_kl_nats": self.inception_kl,
        }


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p_i || q) per row (nats), 0 log 0 = 0, +inf where q = 0 < p."""
    logp = np.log(p, out=np.zeros_like(p), where=p > 0)
    with np.errstate(divide="ignore"):
        logq = np.log(q)
    neg_h = np.einsum("ij,ij->i", p, logp)
    support = p > 0
    cross = np.where(support, p * np.where(np.isfinite(logq), logq, 0.0), 0.0).sum(axis=1)
    kl = neg_h - cross
    kl[(support & ~(q > 0)).any(axis=1)] = np.inf
    return np.maximum(kl, 0.0)


def mode_score(probs, reference_probs, form: str = "xu") -> ModeScoreResult:
    """Mode Score of ``probs`` (N x C) against the label marginal of ``reference_probs``.

    ``form="che"``: Che et al.'s formula (this module's docstring: it equals the one-split IS
    whenever finite); ``form="xu"``: Xu et al.'s code.  A class the reference marginal gives
    probability 0 but ``probs`` predicts makes ``che`` undefined (``inf - inf``: ConfigError)
    and ``xu`` 0.
    """
    if form not in MODE_SCORE_FORMS:
        raise ConfigError(f"form={form!r} is not one of {', '.join(MODE_SCORE_FORMS)}")
    try:
        p = validate_probs(probs, "probs")
        ref = validate_probs(reference_probs, "reference_probs")
    except HarnessError as exc:  # one line naming the argument, as a ConfigError
        raise ConfigError(str(exc)) from None
    if p.shape[1] != ref.shape[1]:
        raise ConfigError(
            f"reference_probs has {ref.shape[1]} classes but probs has {p.shape[1]}; both must "
            "come from the same classifier head"
        )
    p_star = ref.mean(axis=0)
    p_y = p.mean(axis=0)
    cross = float(_kl_rows(p, p_star).mean())
    inception = float(_kl_rows(p, p_y).mean())
    marginal = float(_kl_rows(p_y[None, :], p_star)[0])
    if form == "che":
        if math.isinf(cross):
            missing = int(np.count_nonzero((p_y > 0) & (p_star == 0)))
            raise ConfigError(
                f"reference_probs gives probability 0 to {missing} class(es) that probs "
                "predicts: Che et al.'s Mode Score is inf - inf there (undefined); use a larger "
                "reference set, smoothed probabilities, or form='xu' (which gives 0)"
            )
        value = math.exp(cross - marginal)
    else:
        value = 0.0 if math.isinf(marginal) else math.exp(inception - marginal)
    return ModeScoreResult(
        value, form, cross, inception, marginal, len(p), len(ref), int(p.shape[1])
    )


# --- kernel MMD --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MMDResult:
    """Unbiased MMD^2 with a Gaussian kernel of bandwidth ``bandwidth`` (sigma)."""

    value: float
    bandwidth: float
    bandwidth_rule: str  # "median heuristic" | "set"
    n_x: int
    n_y: int
    median_points: int | None = None  # pooled points the median was taken over
    seed: int | None = None  # the subsample's seed, when the pooled set was subsampled

    def provenance(self) -> dict:
        out = {
            "mmd_estimator": "unbiased MMD^2 (U-statistic, diagonals excluded)",
            "mmd_kernel": "gaussian exp(-|a-b|^2 / (2 sigma^2))",
            "mmd_bandwidth": self.bandwidth,
            "mmd_bandwidth_rule": self.bandwidth_rule,
        }
        if self.bandwidth_rule != "set":
            total = self.n_x + self.n_y
            out["mmd_median_over"] = (
                f"all {total} pooled points (distinct pairs)"
                if self.median_points == total
                else f"{self.median_points} of {total} pooled points, "
                f"np.random.default_rng({self.seed}).choice without replacement"
            )
        return out


def median_heuristic(z: np.ndarray, max_points: int = MEDIAN_MAX_POINTS, seed: int = 0):
    """Median Euclidean distance over distinct pairs ``i < j`` of ``z`` (float64 N x D), on a
    seeded subsample of ``max_points`` rows when larger.  Returns (median, points used)."""
    if len(z) > max_points:
        z = z[np.random.default_rng(seed).choice(len(z), max_points, replace=False)]
    (c,) = _centred(z)
    c2 = _sq_norms(c)
    parts = []
    for s in range(0, len(c), BLOCK_ROWS):
        d = _sq_dists(c[s : s + BLOCK_ROWS], c2[s : s + BLOCK_ROWS], c, c2)
        rows, cols = np.triu_indices(len(d), k=1, m=len(c) - s)
        parts.append(d[rows, cols + s])
    return float(np.median(np.sqrt(np.concatenate(parts)))), len(z)


def _gauss_sum(a, a2, b, b2, gamma: float, same: bool) -> float:
    """sum of exp(-gamma |a_i - b_j|^2) over all pairs (i != j when ``same``), in blocks."""
    total = 0.0
    for s in range(0, len(a), BLOCK_ROWS):
        d = _sq_dists(a[s : s + BLOCK_ROWS], a2[s : s + BLOCK_ROWS], b, b2)
        if same:
            rows = np.arange(len(d))
            d[rows, rows + s] = np.inf
        d *= -gamma
        np.exp(d, out=d)
        total += float(d.sum())
    return total


def mmd2_gaussian(x, y, bandwidth: float | None = None, seed: int = 0) -> MMDResult:
    """Unbiased MMD^2 between ``x`` (m x D) and ``y`` (n x D), Gaussian kernel.

    ``bandwidth`` (sigma) None: the median heuristic over the pooled set (on a
    ``default_rng(seed)`` subsample of :data:`MEDIAN_MAX_POINTS` rows when larger, recorded).
    """
    a, b = check_feature_pair(x, y)
    seed = _check_seed(seed)
    if bandwidth is None:
        sigma, used = median_heuristic(np.concatenate([a, b]), MEDIAN_MAX_POINTS, seed)
        if not sigma > 0:
            raise ConfigError(
                "bandwidth: the median pairwise distance of x and y pooled is 0 (most pairs are "
                "duplicates), so the median heuristic fails; set bandwidth=<a positive number>"
            )
        rule = "median heuristic"
    else:
        if isinstance(bandwidth, (bool, np.bool_)):
            raise ConfigError(f"bandwidth must be a positive number or None, got {bandwidth!r}")
        try:
            sigma = float(bandwidth)
        except (TypeError, ValueError):
            raise ConfigError(
                f"bandwidth must be a positive number or None, got {bandwidth!r}"
            ) from None
        if not (math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"bandwidth must be a positive finite number, got {bandwidth!r}")
        rule, used = "set", None
    m, n = len(a), len(b)
    value = gaussian_mmd2(a, b, sigma, unbiased=True)
    subsampled = rule != "set" and used < m + n
    return MMDResult(value, sigma, rule, m, n, used, seed if subsampled else None)


def gaussian_mmd2(a: np.ndarray, b: np.ndarray, sigma: float, unbiased: bool = True) -> float:
    """MMD^2 of two checked float64 sets with the kernel ``exp(-|x - y|^2 / (2 sigma^2))``:
    unbiased (the U-statistic: no ``i = j`` terms within a set) or the biased
    minimum-variance V-statistic (every pair, the diagonal's ``exp(0) = 1`` included;
    Gretton et al. 2012, eq. 5)."""
    a, b = _centred(a, b)
    a2, b2 = _sq_norms(a), _sq_norms(b)
    gamma = 1.0 / (2.0 * sigma * sigma)
    m, n = len(a), len(b)
    sxx = _gauss_sum(a, a2, a, a2, gamma, same=True)
    syy = _gauss_sum(b, b2, b, b2, gamma, same=True)
    kxy = _gauss_sum(a, a2, b, b2, gamma, same=False) / (m * n)
    if unbiased:
        return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * kxy
    return (sxx + m) / (m * m) + (syy + n) / (n * n) - 2.0 * kxy


# --- Wasserstein-1 -----------------------------------------------------------------------------

#: POT imports every array framework it finds (tensorflow and torch: ~8 s); these are only
#: numpy arrays, so frameworks not already imported are switched off for POT's import
_POT_BACKENDS = {
    "torch": "POT_BACKEND_DISABLE_PYTORCH",
    "jax": "POT_BACKEND_DISABLE_JAX",
    "cupy": "POT_BACKEND_DISABLE_CUPY",
    "tensorflow": "POT_BACKEND_DISABLE_TENSORFLOW",
}


def _import_ot():
    if "ot" in sys.modules:
        return sys.modules["ot"]
    set_here = [
        key
        for mod, key in _POT_BACKENDS.items()
        if mod not in sys.modules and key not in os.environ
    ]
    for key in set_here:
        os.environ[key] = "1"
    try:
        import ot
    except ImportError:
        raise HarnessError(
            "wasserstein1 needs POT: pip install 'pot>=0.9' (it is a core dependency)"
        ) from None
    finally:
        for key in set_here:
            os.environ.pop(key, None)
    return ot


@dataclass(frozen=True)
class WassersteinResult:
    """Wasserstein-1 (exact) or sliced Wasserstein-1 between two point sets."""

    value: float
    method: str  # "exact (POT emd2)" | "sliced (POT sliced_wasserstein_distance, p=1, ...)"
    n_x: int
    n_y: int
    dim: int
    exact_max: int
    projections: int | None = None
    seed: int | None = None
    pot_version: str = field(default="")

    def provenance(self) -> dict:
        return {
            "w1_method": self.method,
            "w1_ground_cost": "euclidean",
            "w1_weights": "uniform",
            "w1_exact_max": self.exact_max,
            "w1_projections": self.projections,
            "w1_seed": self.seed,
            "pot_version": self.pot_version,
        }


def wasserstein1(
    x, y, exact_max: int = 2000, projections: int = 500, seed: int = 0
) -> WassersteinResult:
    """W_1 between the empirical distributions of ``x`` and ``y`` (uniform weights, Euclidean
    cost): exact (``ot.emd2``) when both have at most ``exact_max`` rows, else the sliced
    W_1 over ``projections`` directions (seeded): a different, smaller quantity (the method is
    recorded)."""
    a, b = check_feature_pair(x, y, min_rows=1)
    exact_max = _check_int(exact_max, "exact_max", 1)
    projections = _check_int(projections, "projections", 1)
    seed = _check_seed(seed)
    ot = _import_ot()
    version = str(getattr(ot, "__version__", "?"))
    if max(len(a), len(b)) <= exact_max:
        ca, cb = _centred(a, b)
        cost = np.sqrt(_sq_dists(ca, _sq_norms(ca), cb, _sq_norms(cb)))
        wa = np.full(len(a), 1.0 / len(a))
        wb = np.full(len(b), 1.0 / len(b))
        with warnings.catch_warnings():  # non-convergence is checked below, as an error
            warnings.simplefilter("ignore", UserWarning)
            value, log = ot.emd2(wa, wb, cost, numItermax=max(100_000, 100 * cost.size), log=True)
        if log.get("warning"):
            raise HarnessError(
                f"exact optimal transport did not converge ({log['warning']}); lower "
                f"exact_max below {max(len(a), len(b))} to use the sliced estimate"
            )
        return WassersteinResult(
            float(value), "exact (POT emd2)", len(a), len(b), a.shape[1], exact_max,
            pot_version=version,
        )  # fmt: skip
    value = ot.sliced_wasserstein_distance(a, b, n_projections=projections, p=1, seed=seed)
    method = (
        f"sliced (POT sliced_wasserstein_distance, p=1: mean over {projections} random unit "
        "directions of the 1-D W_1; not comparable with the exact W_1)"
    )
    return WassersteinResult(
        float(value), method, len(a), len(b), a.shape[1], exact_max, projections, seed, version
    )


# --- 1-NN two-sample test ----------------------------------------------------------------------


@dataclass(frozen=True)
class OneNNResult:
    """Leave-one-out 1-NN accuracy on real and fake pooled (0.5 overall: indistinguishable;
    near 1: separable; well below 0.5: fakes sit on reals, memorisation)."""

    accuracy: float
    accuracy_real: float
    accuracy_fake: float
    n_real: int
    n_fake: int

    def provenance(self) -> dict:
        return {
            "one_nn_rule": "leave-one-out 1-NN on real then fake pooled, Euclidean",
            "one_nn_ties": "lowest pooled index (real rows first)",
            "one_nn_n_real": self.n_real,
            "one_nn_n_fake": self.n_fake,
        }


def one_nn_two_sample(real, fake) -> OneNNResult:
    """Leave-one-out 1-NN two-sample test: each pooled row takes its nearest other row's label.

    >>> a = np.zeros((3, 1)); b = np.full((3, 1), 10.0)
    >>> one_nn_two_sample(a, b).accuracy                  # well separated
    1.0
    """
    r, f = check_feature_pair(real, fake, names=("real", "fake"))
    z = np.concatenate([r, f])
    labels = np.r_[np.ones(len(r), dtype=bool), np.zeros(len(f), dtype=bool)]
    idx, _ = nearest_neighbors(z, z, exclude_self=True)
    correct = labels[idx] == labels
    return OneNNResult(
        float(correct.mean()),
        float(correct[: len(r)].mean()),
        float(correct[len(r) :].mean()),
        len(r),
        len(f),
    )
