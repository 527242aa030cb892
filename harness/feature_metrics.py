"""Feature-space metrics on pool features: FID, KID, precision/recall, density/coverage, CMMD
(statistics files and their sidecars: :mod:`harness.stats_files`).

Pure numpy, float64, each function taking N x D feature arrays (the backbone's 2048-d pool
features, cached with the logits).  Definitions:

* **FID** (Heusel et al. 2017): ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2)``
  with means and covariances in float64, ``np.cov`` convention (ddof 1); never complex, no
  ``sqrtm``.  Well-conditioned covariances: the trace of the square root from the eigenvalues
  of ``L^T S2 L`` (``S1 = L L^T``, Cholesky; the eigenvalues of ``S1 S2``).  A singular one
  (N <= D, a constant feature, collinear features): the exact route, where a rounding-level
  eigenvalue is never square-rooted: constant features left out (they add nothing), each
  covariance factored ``S = F F^T`` with its null space dropped (or, with features and N <= D,
  ``F`` = the centred samples), and ``tr sqrt(S1^1/2 S2 S1^1/2) = ||F1^T F2||_*`` from singular
  values.  :attr:`FIDResult.method` records the route.
* **KID** (Binkowski et al. 2018): unbiased MMD^2 with the polynomial kernel
  ``(x.y / d + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size`` rows from each
  set (drawn as torch-fidelity does: one ``np.random.RandomState(seed)``, ``choice(n, size,
  replace=False)`` for set 1 then set 2 per subset); mean and std (ddof 0) over subsets.
* **Precision / recall** (Kynkäänniemi et al. 2019, k = 3) and **density / coverage** (Naeem
  et al. 2020, k = 5): k-NN balls around real (reference) features; exact Euclidean k-NN computed
  in row blocks, so no N x N matrix is held in memory.  Balls are open (``distance < radius``)
  as in the authors' ``prdc`` package; ``ball="closed"`` (``<=``) is the recorded alternative
  (the two differ only on exact duplicates).

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(500, 4))
>>> round(fid(x, x).value, 8)
0.0
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ConfigError, HarnessError
from .sample_metrics import gaussian_mmd2

__all__ = [
    "FeatureStats",
    "FIDResult",
    "KIDResult",
    "PRDCResult",
    "feature_stats",
    "frechet_distance",
    "fid",
    "kid",
    "check_kid_subset",
    "check_kid_matmul_dtype",
    "prdc",
    "PRDC_BALLS",
    "check_prdc_ball",
    "RankDeficientWarning",
    "CMMDResult",
    "cmmd",
    "CMMD_ESTIMATORS",
    "frechet_distance_to_factored",
]

#: rows per block in the k-NN computations (block x N float64 distances at a time)
BLOCK_ROWS = 1024


class RankDeficientWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular (legal, recorded)."""


def _features(x, name: str, as_float64: bool = True) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise HarnessError(f"{name} must be 2-D (N samples x D features), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise HarnessError(f"{name} must be numeric, got dtype {a.dtype}")
    if as_float64 or not np.issubdtype(a.dtype, np.floating):
        a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a).all(axis=1)))
        raise HarnessError(f"{name} has NaN or inf in {bad} row(s); fix the upstream features")
    return a


def _pair(x1, x2, min_rows: int = 2, as_float64: bool = True):
    a = _features(x1, "features 1", as_float64)
    b = _features(x2, "features 2", as_float64)
    if a.shape[1] != b.shape[1]:
        raise HarnessError(
            f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}; both sets must come from "
            "the same backbone layer"
        )
    for name, arr in (("features 1", a), ("features 2", b)):
        if len(arr) < min_rows:
            raise HarnessError(
                f"{name} has {len(arr)} sample(s); this metric needs at least {min_rows}"
            )
    return a, b


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance (ddof 1) of one feature set, with its sample count."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return len(self.mu)


#: rows converted to float64 at a time when accumulating a covariance
COV_BLOCK_ROWS = 8192


def feature_stats(features, meta: dict | None = None) -> FeatureStats:
    """``mu`` and ``sigma`` (``np.cov(rowvar=False)``, ddof 1) in float64.

    Two passes (mean first, then centred products), the rows converted to float64 in blocks so
    float32 features never need a full float64 copy.  ``block.T @ block`` is numpy's symmetric
    rank-k update (half the flops of a general product); converting and centring go into one
    reused buffer (benchmarks/README.md).
    """
    a = np.asarray(features)
    if a.ndim != 2:
        raise HarnessError(f"features must be 2-D (N samples x D features), got shape {a.shape}")
    if len(a) < 2:
        raise HarnessError(f"features has {len(a)} sample(s); a covariance needs at least 2")
    if not np.issubdtype(a.dtype, np.number):
        raise HarnessError(f"features must be numeric, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a).all(axis=1)))
        raise HarnessError(f"features has NaN or inf in {bad} row(s); fix the upstream features")
    mu = a.mean(axis=0, dtype=np.float64)
    acc = np.zeros((a.shape[1], a.shape[1]))
    buf = np.empty((min(COV_BLOCK_ROWS, len(a)), a.shape[1]))
    for s in range(0, len(a), COV_BLOCK_ROWS):
        rows = a[s : s + COV_BLOCK_ROWS]
        block = np.subtract(rows, mu, out=buf[: len(rows)], dtype=np.float64)
        acc += block.T @ block
    sigma = acc / (len(a) - 1)
    return FeatureStats(mu, sigma, len(a), dict(meta or {}))


@dataclass(frozen=True)
class FIDResult:
    value: float
    mean_term: float
    trace_term: float
    # negative eigenvalues set to 0: of L^T S2 L (cholesky; always 0 there, a negative one sends
    # the pair to the exact route) or of the covariances (eigh: rounding-level, counted again in
    # truncated_eigenvalues)
    clipped_eigenvalues: int
    min_eigenvalue: float  # smallest eigenvalue of S1^1/2 S2 S1^1/2 used (squared singular value)
    n1: int
    n2: int
    dim: int
    rank_deficient: bool  # n <= dim for either set: singular covariance (legal, recorded)
    # cholesky: eigenvalues of L^T S2 L (S1 = L L^T; both covariances well conditioned)
    # | eigh: singular values of F1^T F2 with S_i = F_i F_i^T from each covariance's eigen-
    #   decomposition, its null space dropped (a singular or near-singular covariance)
    # | low_rank: singular values in sample space (both N <= D)
    # | low_rank_mixed: the set with features and N <= D in its sample space, the other from
    #   its covariance (Cholesky, or eigen-factors when singular)
    # all equal tr sqrt(S1^1/2 S2 S1^1/2)
    method: str = "cholesky"
    # coordinates with zero variance (a constant feature) in either set: they add nothing to
    # tr sqrt(S1^1/2 S2 S1^1/2), so they are left out of it (exactly)
    dead_features: int = 0
    # covariance eigenvalues at rounding level (<= dim * eps * the largest, or beyond rank N - 1)
    # treated as exactly 0 (eigh / low_rank_mixed)
    truncated_eigenvalues: int = 0

    def provenance(self) -> dict:
        return {f"fid_{k}": v for k, v in asdict(self).items() if k != "value"}


#: a coordinate is dead (a constant feature) when its variance is at most
#: (DEAD_FEATURE_RTOL * max(|its mean|, the largest standard deviation))^2: centring a constant
#: leaves rounding residue of ~1e-16 * |mean|, which the Cholesky route would otherwise turn into
#: a spurious eigenvalue (8 digits lost); a float32 feature cannot vary by less than ~1e-10 of
#: its mean, and one varying by 1e-12 of the largest std moves FID by ~1e-12 of it
DEAD_FEATURE_RTOL = 1e-12


def _rank_tol(n: int) -> float:
    """Relative size below which an eigenvalue or pivot is rounding (numpy's matrix_rank)."""
    return max(n, 1) * np.finfo(np.float64).eps


def _dead_mask(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Coordinates whose variance ``var`` is rounding residue of a constant (see above)."""
    scale = np.maximum(mu * mu, var.max(initial=0.0))
    return var <= DEAD_FEATURE_RTOL**2 * scale


def _cholesky_factor(c: np.ndarray):
    """``L`` with ``c = L L^T`` when every pivot is well above rounding, else None."""
    if len(c) == 0:
        return np.zeros((0, 0))
    try:
        low = np.linalg.cholesky((c + c.T) / 2)
    except np.linalg.LinAlgError:
        return None
    diag = np.diagonal(c)
    if not (diag > 0).all() or ((np.diagonal(low) ** 2) / diag).min() <= _rank_tol(len(c)):
        return None  # a near-singular pivot: its rounding would reach the trace term
    return low


def _eigen_factor(c: np.ndarray, n: int):
    """``F`` (dim x r) with ``c = F F^T`` up to its numerical null space, which is dropped:
    eigenvalues <= dim * eps * the largest, and all but the largest ``n - 1`` when ``n`` (the
    sample count: rank <= n - 1) is known and <= dim (then only those are computed, LAPACK's
    MRRR: ~10x faster than the full decomposition at N = 30, D = 2,048).
    Returns (F, dropped, negative among those computed)."""
    dim = len(c)
    if dim == 0:
        return np.zeros((0, 0)), 0, 0
    sym = (c + c.T) / 2
    if 0 < n <= dim:
        from scipy.linalg import eigh

        top = max(n - 1, 1)
        w, v = eigh(sym, subset_by_index=[dim - top, dim - 1], driver="evr", check_finite=False)
    else:
        w, v = np.linalg.eigh(sym)
    keep = w > _rank_tol(dim) * max(float(w[-1]), 0.0)
    f = v[:, keep] * np.sqrt(w[keep])
    return f, int(dim - keep.sum()), int(np.count_nonzero(w < 0))


def _cov_factor(c: np.ndarray, n: int):
    """A factor of ``c``: Cholesky when ``n > dim`` (or unknown) and well conditioned, else
    eigen-factors with the null space dropped.  Returns (F, dropped, negative)."""
    if not 0 < n <= len(c):
        low = _cholesky_factor(c)
        if low is not None:
            return low, 0, 0
    return _eigen_factor(c, n)


def _fast_trace_sqrt(c1: np.ndarray, c2: np.ndarray):
    """``tr sqrt`` from the eigenvalues of ``L^T S2 L`` (``S1 = L L^T``): one Cholesky
    factorisation and eigenvalues only, ~3x faster than the exact route; None when S1 has a
    near-singular pivot or ``L^T S2 L`` an eigenvalue at rounding level (its square root would
    carry ~1e-8 relative error: the exact route takes over)."""
    low = _cholesky_factor(c1)
    if low is None:
        return None
    m = low.T @ c2 @ low
    w = np.linalg.eigvalsh((m + m.T) / 2)
    if len(w) and w[0] <= _rank_tol(len(w)) * w[-1]:
        return None
    return float(np.sqrt(w).sum()), float(w.min()) if len(w) else 0.0


def _nuclear(f1: np.ndarray, f2: np.ndarray):
    """sum of singular values of ``f1^T f2`` = tr sqrt(S1^1/2 S2 S1^1/2) for ``S_i = f_i f_i^T``
    (the eigenvalues of S1 S2 are the squared singular values: no square root of a rounding-level
    eigenvalue), and the smallest squared singular value."""
    if f1.size == 0 or f2.size == 0:
        return 0.0, 0.0
    sv = np.linalg.svd(f1.T @ f2, compute_uv=False)
    return float(sv.sum()), float((sv**2).min())


def _warn_rank_deficient(n: int, dim: int) -> None:
    warnings.warn(
        f"FID with {n} samples in {dim} dimensions: the covariance is singular (legal; FID is "
        "biased upwards at small N); recorded as rank_deficient",
        RankDeficientWarning,
        stacklevel=3,
    )


def _result(mu1, mu2, tr1, tr2, tr_sqrt, *, n1, n2, dim, deficient, **fields) -> FIDResult:
    """The FID from its parts: ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(...)``."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    mean_term = float(diff @ diff)
    trace_term = float(tr1 + tr2 - 2 * tr_sqrt)
    if deficient:
        _warn_rank_deficient(min(n for n in (n1, n2) if n > 0), dim)
    return FIDResult(
        mean_term + trace_term,
        mean_term,
        trace_term,
        n1=int(n1),
        n2=int(n2),
        dim=int(dim),
        rank_deficient=bool(deficient),
        **fields,
    )


def frechet_distance(s1: FeatureStats, s2: FeatureStats) -> FIDResult:
    """FID between two Gaussians given by their statistics (float64, never complex).

    Well-conditioned covariances (both N > D, no constant feature) take the fast route (the
    eigenvalues of ``L^T S2 L``); a singular or near-singular one (N <= D, a dead feature,
    collinear features, or a rounding-level eigenvalue of ``L^T S2 L``) takes the exact route:
    constant features left out, each covariance factored ``S = F F^T`` with its numerical null
    space dropped, and the trace of the square root as the nuclear norm of ``F1^T F2``.
    """
    if s1.dim != s2.dim:
        raise HarnessError(
            f"feature dimensions differ: {s1.dim} vs {s2.dim}; both statistics "
            "must come from the same backbone layer"
        )
    mu1, mu2 = np.asarray(s1.mu, np.float64), np.asarray(s2.mu, np.float64)
    c1, c2 = np.asarray(s1.sigma, np.float64), np.asarray(s2.sigma, np.float64)
    deficient = any(0 < n <= s1.dim for n in (s1.n, s2.n))  # n < 0: unknown (no sidecar)
    dead = _dead_mask(mu1, np.diagonal(c1)) | _dead_mask(mu2, np.diagonal(c2))
    common = dict(n1=s1.n, n2=s2.n, dim=s1.dim, deficient=deficient)
    traces = (mu1, mu2, float(np.trace(c1)), float(np.trace(c2)))
    if not deficient and not dead.any():
        fast = _fast_trace_sqrt(c1, c2)
        if fast is not None:
            return _result(
                *traces, fast[0], **common, clipped_eigenvalues=0,
                min_eigenvalue=fast[1], method="cholesky",
            )  # fmt: skip
    live = ~dead
    f1, drop1, neg1 = _eigen_factor(c1[np.ix_(live, live)], s1.n)
    f2, drop2, neg2 = _eigen_factor(c2[np.ix_(live, live)], s2.n)
    tr_sqrt, min_eig = _nuclear(f1, f2)
    return _result(
        *traces, tr_sqrt, **common, clipped_eigenvalues=neg1 + neg2,
        min_eigenvalue=min_eig, method="eigh", dead_features=int(dead.sum()),
        truncated_eigenvalues=drop1 + drop2,
    )  # fmt: skip


def reference_cholesky(ref: FeatureStats, factors: dict):
    """The Cholesky factor ``L`` of fixed reference statistics (``ref.sigma = L L^T``),
    computed once into ``factors``; None where the fast route does not apply (N <= D, a dead
    feature or a near-singular pivot)."""
    if "ref_cholesky" not in factors:
        mu2, c2 = np.asarray(ref.mu, np.float64), np.asarray(ref.sigma, np.float64)
        usable = not (0 < ref.n <= ref.dim) and not _dead_mask(mu2, np.diagonal(c2)).any()
        factors["ref_cholesky"] = _cholesky_factor(c2) if usable else None
    return factors["ref_cholesky"]


def fid_from_projection(mu1, var1, n1: int, projected, ref: FeatureStats) -> FIDResult | None:
    """FID of a set with mean ``mu1``, per-feature variances ``var1`` (ddof 1) and ``n1 > D``
    samples against ``ref``, given ``projected = L^T S1 L`` (``L``: :func:`reference_cholesky`):
    its eigenvalues are those of ``S1 S_ref``.  None where the fast route would not be taken
    (a dead feature of the set, or an eigenvalue at rounding level)."""
    mu1, var1 = np.asarray(mu1, np.float64), np.asarray(var1, np.float64)
    if 0 < n1 <= len(mu1) or _dead_mask(mu1, var1).any():
        return None
    w = np.linalg.eigvalsh(projected)  # symmetric up to rounding: its lower triangle is read
    if len(w) and w[0] <= _rank_tol(len(w)) * w[-1]:
        return None
    mu2, c2 = np.asarray(ref.mu, np.float64), np.asarray(ref.sigma, np.float64)
    return _result(
        mu1, mu2, float(var1.sum()), float(np.trace(c2)), float(np.sqrt(w).sum()),
        n1=n1, n2=ref.n, dim=len(mu1), deficient=False, clipped_eigenvalues=0,
        min_eigenvalue=float(w.min()) if len(w) else 0.0, method="cholesky_reference",
    )  # fmt: skip


def frechet_distance_to_factored(s1: FeatureStats, ref: FeatureStats, factors: dict) -> FIDResult:
    """:func:`frechet_distance` of ``s1`` against fixed reference statistics whose Cholesky
    factor ``L`` (``ref.sigma = L L^T``) is computed once into ``factors`` for many ``s1``
    (FID_inf's subsets): the eigenvalues of ``L^T S1 L`` are those of ``S1 S_ref``, as in the
    fast route, without factoring each ``S1``.  Falls back to :func:`frechet_distance` wherever
    that would not take the fast route (N <= D, dead features, a near-singular reference or a
    rounding-level eigenvalue)."""
    if s1.dim != ref.dim:
        return frechet_distance(s1, ref)  # its one-line error
    low = reference_cholesky(ref, factors)
    if low is None:
        return frechet_distance(s1, ref)
    c1 = np.asarray(s1.sigma, np.float64)
    if "ref_cholesky_f" not in factors:
        factors["ref_cholesky_f"] = np.asfortranarray(low)
    projected = _congruence(factors["ref_cholesky_f"], c1)
    got = fid_from_projection(s1.mu, np.diagonal(c1), s1.n, projected, ref)
    return frechet_distance(s1, ref) if got is None else got


def _congruence(low_f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``L^T C L`` for lower-triangular ``L`` (Fortran order) and symmetric ``C``: two
    triangular products (BLAS trmm, half the flops of two general products)."""
    from scipy.linalg.blas import dtrmm

    # C is symmetric: its transpose is itself, and Fortran-ordered without a copy
    cl = dtrmm(1.0, low_f, c.T if c.flags.c_contiguous else c, side=1, lower=1)
    return dtrmm(1.0, low_f, cl, side=0, lower=1, trans_a=1, overwrite_b=1)


#: CMMD's kernel bandwidth and scale (Jayasumana et al. CVPR 2024; their code's _SIGMA, _SCALE)
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0
#: ``reference``: the authors' code (google-research ``cmmd/distance.py``): the biased
#: minimum-variance estimator over every pair, i = j included; ``unbiased``: the U-statistic
CMMD_ESTIMATORS = ("reference", "unbiased")


@dataclass(frozen=True)
class CMMDResult:
    """CMMD: ``scale x MMD^2`` with ``exp(-|x - y|^2 / (2 sigma^2))`` on image embeddings."""

    value: float
    estimator: str
    sigma: float
    scale: float
    n1: int
    n2: int

    def provenance(self) -> dict:
        return {
            "cmmd_estimator": self.estimator,
            "cmmd_sigma": self.sigma,
            "cmmd_scale": self.scale,
            "cmmd_kernel": "gaussian exp(-|a-b|^2 / (2 sigma^2))",
        }


def cmmd(
    features1,
    features2,
    estimator: str = "reference",
    sigma: float = CMMD_SIGMA,
    scale: float = CMMD_SCALE,
) -> CMMDResult:
    """CMMD (Jayasumana et al. 2024) between two embedding sets (CLIP ViT-L/14 image
    embeddings, L2-normalised, in the paper), float64.

    The paper calls its estimator unbiased; the authors' code computes the biased
    minimum-variance one (every pair, ``i = j`` included), which ``estimator="reference"``
    (the default) reproduces; ``"unbiased"`` is the U-statistic.  The two differ by
    ``scale x (1/m + 1/n - mean_i!=j k / m - ...)``: ~``scale x (1/m + 1/n)`` for spread
    embeddings.

    >>> x = np.zeros((3, 2)); y = np.zeros((4, 2))
    >>> cmmd(x, y).value, cmmd(x, y, "unbiased").value   # identical sets: 0
    (0.0, 0.0)
    """
    if estimator not in CMMD_ESTIMATORS:
        raise ConfigError(
            f"cmmd estimator={estimator!r}; choose one of {', '.join(CMMD_ESTIMATORS)}"
        )
    a, b = _pair(features1, features2)
    value = float(scale) * gaussian_mmd2(a, b, float(sigma), unbiased=estimator == "unbiased")
    return CMMDResult(value, estimator, float(sigma), float(scale), len(a), len(b))


def _fid_mixed(
    small: np.ndarray, other: FeatureStats, small_first: bool, factors: dict | None = None
) -> FIDResult:
    """FID of a set with N <= D (features: exact in its sample space) against the statistics of
    the other set (its covariance factored: Cholesky, or eigen-factors when singular).

    ``factors`` (a dict kept across calls against one ``other``): ``other``'s covariance is
    factored once on its own live coordinates, ``F F^T = C``; a set that is constant on more
    coordinates uses the rows of ``F`` on its live ones (``F[L] F[L]^T = C[L, L]``: a factor
    of the principal submatrix, and the nuclear norm does not depend on which factor).
    """
    mu_s = small.mean(axis=0)
    cs = small - mu_s
    var_s = np.einsum("ij,ij->j", cs, cs) / (len(small) - 1)
    mu_o, c_o = np.asarray(other.mu, np.float64), np.asarray(other.sigma, np.float64)
    live = ~(_dead_mask(mu_s, var_s) | _dead_mask(mu_o, np.diagonal(c_o)))
    fs = cs[:, live].T / math.sqrt(len(small) - 1)  # F F^T = the small set's covariance
    if factors is None:
        fo, drop, neg = _cov_factor(c_o[np.ix_(live, live)], other.n)
    else:
        if "live" not in factors:
            live_o = ~_dead_mask(mu_o, np.diagonal(c_o))
            factors["live"] = live_o
            factors["factor"] = _cov_factor(c_o[np.ix_(live_o, live_o)], other.n)
        full, drop, neg = factors["factor"]
        fo = full[live[factors["live"]]]  # live is a subset of the reference's live coordinates
    tr_sqrt, min_eig = _nuclear(fs, fo)
    n_s, n_o, dim = len(small), other.n, small.shape[1]
    part_s, part_o = (mu_s, float(var_s.sum()), n_s), (mu_o, float(np.trace(c_o)), n_o)
    (m1, t1, n1), (m2, t2, n2) = (part_s, part_o) if small_first else (part_o, part_s)
    return _result(
        m1, m2, t1, t2, tr_sqrt, n1=n1, n2=n2, dim=dim, deficient=True,
        clipped_eigenvalues=neg, min_eigenvalue=min_eig, method="low_rank_mixed",
        dead_features=int(np.count_nonzero(~live)), truncated_eigenvalues=drop,
    )  # fmt: skip


def fid(features1, features2) -> FIDResult:
    """FID between two feature sets (N1 x D and N2 x D).

    A set with no more samples than dimensions has a covariance of rank < N, and the trace term
    is computed exactly in its sample space: with centred rows A (scaled by 1/sqrt(N-1)) and
    any factor ``S2 = F F^T``, ``tr sqrt(S1^1/2 S2 S1^1/2) = ||A F||_*`` (the nuclear norm: the
    eigenvalues of S1 S2 are the squared singular values of A F).  Both sets N <= D
    (``low_rank``): ``F`` is the other set's scaled centred rows, an N1 x N2 SVD instead of two
    D x D eigendecompositions; one set N <= D (``low_rank_mixed``): ``F`` factors the other
    set's covariance.  Both N > D: :func:`frechet_distance` of their statistics.
    """
    a, b = _pair(features1, features2)
    n1, n2, d = len(a), len(b), a.shape[1]
    if min(n1, n2) > d:
        return frechet_distance(feature_stats(a), feature_stats(b))
    if max(n1, n2) > d:
        if n1 <= d:
            return _fid_mixed(a, feature_stats(b), small_first=True)
        return _fid_mixed(b, feature_stats(a), small_first=False)
    ca, cb = a - a.mean(axis=0), b - b.mean(axis=0)
    sv = np.linalg.svd(ca @ cb.T, compute_uv=False)
    tr_sqrt = float(sv.sum()) / math.sqrt((n1 - 1) * (n2 - 1))
    diff = a.mean(axis=0) - b.mean(axis=0)
    mean_term = float(diff @ diff)
    trace_term = float((ca * ca).sum() / (n1 - 1) + (cb * cb).sum() / (n2 - 1) - 2 * tr_sqrt)
    _warn_rank_deficient(min(n1, n2), d)
    return FIDResult(
        mean_term + trace_term,
        mean_term,
        trace_term,
        0,
        float((sv**2).min()) / ((n1 - 1) * (n2 - 1)) if len(sv) else 0.0,
        n1,
        n2,
        d,
        True,
        "low_rank",
    )


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subsets: int
    subset_size: int
    seed: int
    degree: int
    coef0: float
    gamma: float
    matmul_dtype: str = "float64"
    values: np.ndarray = field(repr=False, default=None)

    def provenance(self) -> dict:
        return {
            "kid_subsets": self.subsets,
            "kid_subset_size": self.subset_size,
            "kid_seed": self.seed,
            "kid_kernel": f"poly(d={self.degree}, gamma={self.gamma:.3g}, coef0={self.coef0:g})",
            "kid_matmul_dtype": self.matmul_dtype,
            "kid_std_ddof": 0,
        }


#: dtypes the kernel's inner products may be computed in (everything after them is float64)
KID_MATMUL_DTYPES = ("float64", "float32")


class _KernelSums:
    """Sum and trace of ``(gamma * G + coef0) ** degree`` for Gram matrices ``G``, in float64
    and in place (one reused buffer: no new m x m arrays per subset)."""

    def __init__(self, m: int, gamma: float, coef0: float, degree: int):
        self.gamma, self.coef0, self.degree = gamma, coef0, degree
        self.buf = np.empty((m, m))

    def __call__(self, gram: np.ndarray) -> tuple[float, float]:
        k = gram.astype(np.float64, copy=False)  # a float32 Gram matrix: one float64 copy
        k *= self.gamma
        k += self.coef0
        if self.degree == 3:  # the default kernel: sum(k^3) = <k*k, k>, no third array
            total = float(np.vdot(np.multiply(k, k, out=self.buf), k))
            d = k.diagonal()
            return total, float((d * d * d).sum())
        np.power(k, self.degree, out=k)
        return float(k.sum()), float(np.trace(k))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, sums: _KernelSums) -> float:
    m = len(x)
    sxx, txx = sums(x @ x.T)  # x @ x.T: numpy's symmetric product (half the flops)
    syy, tyy = sums(y @ y.T)
    sxy, _ = sums(x @ y.T)
    return (sxx - txx + syy - tyy) / (m * (m - 1)) - 2 * sxy / (m * m)


def check_kid_matmul_dtype(matmul_dtype) -> None:
    if str(matmul_dtype) not in KID_MATMUL_DTYPES:
        raise ConfigError(
            f"kid.matmul_dtype={matmul_dtype!r} is not one of {', '.join(KID_MATMUL_DTYPES)}"
        )


def check_kid_subset(subset_size: int, n: int) -> None:
    """A KID subset larger than the smaller set is a one-line error (check before computing)."""
    if int(subset_size) > n:
        raise ConfigError(
            f"kid.subset_size={subset_size} is larger than the smaller set "
            f"({n} samples); set kid.subset_size<={n} or use more samples"
        )


def kid(
    features1,
    features2,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    matmul_dtype: str = "float64",
) -> KIDResult:
    """KID: unbiased MMD^2 (polynomial kernel) over random subsets; mean and std (ddof 0).

    ``matmul_dtype="float32"`` computes only the subsets' inner products in float32 (as
    torch-fidelity does; about 2x faster), the kernel and sums stay float64: on 50,000 x 2,048
    benchmark features KID moved by 5e-10 relative (the sums over 10^6 kernel values average the
    rounding out), but it is a setting that changes the number, so it is recorded.  Rows are
    gathered and converted per subset, so float32 features never need a full float64 copy.
    """
    check_kid_matmul_dtype(matmul_dtype)
    a, b = _pair(features1, features2, as_float64=False)
    subsets, subset_size = int(subsets), int(subset_size)
    if subsets < 1:
        raise ConfigError(f"kid.subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise ConfigError(f"kid.subset_size must be >= 2, got {subset_size}")
    check_kid_subset(subset_size, min(len(a), len(b)))
    g = 1.0 / a.shape[1] if gamma is None else float(gamma)
    dtype = np.dtype(str(matmul_dtype))
    sums = _KernelSums(subset_size, g, float(coef0), int(degree))
    rng = np.random.RandomState(int(seed))
    vals = np.empty(subsets)
    for i in range(subsets):
        x = a[rng.choice(len(a), subset_size, replace=False)].astype(dtype, copy=False)
        y = b[rng.choice(len(b), subset_size, replace=False)].astype(dtype, copy=False)
        vals[i] = _mmd2_unbiased(x, y, sums)
    return KIDResult(
        float(vals.mean()),
        float(vals.std()),
        subsets,
        subset_size,
        int(seed),
        int(degree),
        float(coef0),
        g,
        str(matmul_dtype),
        vals,
    )


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int
    k_dc: int
    n_real: int
    n_fake: int
    ball: str = "open"  # open: distance < radius (the authors' prdc package); closed: <=

    def provenance(self) -> dict:
        return {
            "prdc_k_precision_recall": self.k_pr,
            "prdc_k_density_coverage": self.k_dc,
            "prdc_ball": self.ball,
        }


#: how a point on a k-NN ball's boundary counts: ``open`` (``distance < radius``, as the
#: authors' ``prdc`` package, clovaai/generative-evaluation-prdc, computes all four metrics) or
#: ``closed`` (``<=``).  Identical with continuous features; with exact duplicates ``closed``
#: counts the k-th neighbour's copy too (identical sets: density (k+1)/k instead of 1)
PRDC_BALLS = ("open", "closed")


def check_prdc_ball(ball) -> None:
    if str(ball) not in PRDC_BALLS:
        raise ConfigError(f"prdc.ball={ball!r} is not one of {', '.join(PRDC_BALLS)}")


def _sq_norms(x):
    return np.einsum("ij,ij->i", x, x)


def _sq_dists(a, a2, b, b2):
    d = a2[:, None] + b2[None, :] - 2 * (a @ b.T)
    np.maximum(d, 0, out=d)
    return d


def kth_nn_sq_radii(x: np.ndarray, ks, block: int = BLOCK_ROWS) -> dict:
    """Squared distance of each row to its k-th nearest other row, for each k in ``ks`` (exact,
    in row blocks of ``block`` x N distances)."""
    ks = sorted(set(int(k) for k in ks))
    if len(x) <= ks[-1]:
        raise HarnessError(f"k-NN with k={ks[-1]} needs more than {ks[-1]} samples, got {len(x)}")
    x2 = _sq_norms(x)
    out = {k: np.empty(len(x)) for k in ks}
    for s in range(0, len(x), block):
        d = _sq_dists(x[s : s + block], x2[s : s + block], x, x2)
        d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf  # not its own neighbour
        part = np.partition(d, [k - 1 for k in ks], axis=1)
        for k in ks:
            out[k][s : s + block] = part[:, k - 1]
    return out


def prdc(
    real, fake, k_pr: int = 3, k_dc: int = 5, block: int = BLOCK_ROWS, ball: str = "open"
) -> PRDCResult:
    """Precision, recall (k_pr) and density, coverage (k_dc) of ``fake`` against ``real``.

    One pass over the fake x real distances in blocks of ``block`` fake rows serves all four.
    ``ball``: ``open`` (default: inside means ``distance < radius``, as the authors' ``prdc``
    package) or ``closed`` (``<=``); they differ only for points exactly on a boundary, i.e.
    exact duplicates (:data:`PRDC_BALLS`); recorded as ``prdc_ball``.
    """
    check_prdc_ball(ball)
    inside = np.less if ball == "open" else np.less_equal
    for name, k in (("prdc.k_precision_recall", k_pr), ("prdc.k_density_coverage", k_dc)):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"{name} must be a positive integer (nearest neighbours), got {k!r}")
    r, f = _pair(real, fake)
    rr = kth_nn_sq_radii(r, (k_pr, k_dc), block)
    r_pr, r_dc = rr[int(k_pr)], rr[int(k_dc)]
    f_pr = kth_nn_sq_radii(f, (k_pr,), block)[int(k_pr)]
    r2, f2 = _sq_norms(r), _sq_norms(f)
    in_real_ball = np.zeros(len(f), dtype=bool)
    real_covered_by_fake_ball = np.zeros(len(r), dtype=bool)
    nearest_fake = np.full(len(r), np.inf)
    density_hits = 0
    for s in range(0, len(f), block):
        d = _sq_dists(f[s : s + block], f2[s : s + block], r, r2)  # block x R
        in_real_ball[s : s + block] = inside(d, r_pr[None, :]).any(axis=1)
        density_hits += int(np.count_nonzero(inside(d, r_dc[None, :])))
        real_covered_by_fake_ball |= inside(d, f_pr[s : s + block, None]).any(axis=0)
        np.minimum(nearest_fake, d.min(axis=0), out=nearest_fake)
    return PRDCResult(
        float(in_real_ball.mean()),
        float(real_covered_by_fake_ball.mean()),
        float(density_hits / (k_dc * len(f))),
        float(np.mean(inside(nearest_fake, r_dc))),
        int(k_pr),
        int(k_dc),
        len(r),
        len(f),
        str(ball),
    )


def fid_against_stats(features, ref: FeatureStats, factors: dict | None = None) -> FIDResult:
    """FID of features against reference statistics; with N <= D samples the trace term is
    computed in the samples' space (``low_rank_mixed``, exact).  A reference N of -1 (no
    sidecar) is unknown: the covariance's rank is then found numerically.  ``factors``: an
    empty dict kept across calls against the same ``ref`` factors its covariance once (the
    same numbers; FID_inf's subsets)."""
    a = _features(features, "features")
    if len(a) < 2:
        raise HarnessError(f"features has {len(a)} sample(s); FID needs at least 2")
    if a.shape[1] != ref.dim:
        raise HarnessError(
            f"feature dimensions differ: {a.shape[1]} vs {ref.dim} in the statistics; both must "
            "come from the same backbone layer"
        )
    if len(a) <= a.shape[1]:
        return _fid_mixed(a, ref, small_first=True, factors=factors)
    return frechet_distance(feature_stats(a), ref)


#: library names renamed in issue 28: the old name is an error naming the new one
RENAMED = {
    "save_stats": "harness.stats_files.save_stats",
    "load_stats": "harness.stats_files.load_stats",
    "stats_meta": "harness.stats_files.stats_meta",
    "stats_verified": "harness.stats_files.stats_verified",
    "stats_digest": "harness.stats_files.stats_digest",
    "sidecar_path": "harness.stats_files.sidecar_path",
    "check_covariance": "harness.stats_files.check_covariance",
    "UNVERIFIED": "harness.stats_files.UNVERIFIED",
    "MATCH_KEYS": "harness.stats_files.MATCH_KEYS",
}


def __getattr__(name: str):
    if name in RENAMED:
        raise AttributeError(f"{__name__}.{name} was renamed: use {RENAMED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
