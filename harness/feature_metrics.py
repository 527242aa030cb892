"""Feature-space metrics on pool features: FID, KID, precision/recall, density/coverage.

Pure numpy, float64, each function taking N x D feature arrays (the backbone's 2048-d pool
features, cached with the logits).  Definitions:

* **FID** (Heusel et al. 2017): ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2)``
  with means and covariances in float64, ``np.cov`` convention (ddof 1).  The trace of the
  square root comes from the eigenvalues of a *symmetric* product with the eigenvalues of
  ``S1 S2``: ``L^T S2 L`` with ``S1 = L L^T`` (Cholesky), or ``S1^1/2 S2 S1^1/2`` when S1 is
  singular; so the result is never complex and needs no ``sqrtm``; eigenvalues below zero
  (rounding) are clipped and counted (:attr:`FIDResult.clipped_eigenvalues`).
* **KID** (Binkowski et al. 2018): unbiased MMD^2 with the polynomial kernel
  ``(x.y / d + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size`` rows from each
  set (drawn as torch-fidelity does: one ``np.random.RandomState(seed)``, ``choice(n, size,
  replace=False)`` for set 1 then set 2 per subset); mean and std (ddof 0) over subsets.
* **Precision / recall** (Kynkäänniemi et al. 2019, k = 3) and **density / coverage** (Naeem
  et al. 2020, k = 5): k-NN balls around real (reference) features; exact Euclidean k-NN computed
  in row blocks, so no N x N matrix is held in memory.

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(500, 4))
>>> round(fid(x, x).value, 8)
0.0
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, HarnessError, MissingInputError

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
    "save_stats",
    "load_stats",
    "RankDeficientWarning",
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
    clipped_eigenvalues: int  # negative eigenvalues of S1^1/2 S2 S1^1/2 set to 0 (rounding)
    min_eigenvalue: float
    n1: int
    n2: int
    dim: int
    rank_deficient: bool  # n < dim for either set: singular covariance (legal, recorded)
    # cholesky: eigenvalues of L^T S2 L (S1 = L L^T) | eigh: of S1^1/2 S2 S1^1/2 (S1 singular)
    # | low_rank: singular values in sample space (N <= D); all equal tr sqrt(S1^1/2 S2 S1^1/2)
    method: str = "cholesky"

    def provenance(self) -> dict:
        return {f"fid_{k}": v for k, v in asdict(self).items() if k != "value"}


def _sym_sqrt(s: np.ndarray):
    """Square root of a symmetric PSD matrix via eigh; negative eigenvalues clipped (counted)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    neg = int(np.count_nonzero(w < 0))
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T, neg


def _product_eigenvalues(c1: np.ndarray, c2: np.ndarray, method: str):
    """Eigenvalues of a symmetric matrix similar to ``S1 S2`` (so with the eigenvalues of
    ``S1^1/2 S2 S1^1/2``), and the count of negative ones clipped on the way.

    ``cholesky``: ``L^T S2 L`` with ``S1 = L L^T`` (``L^T S2 L = L^-1 (S1 S2) L``): one Cholesky
    factorisation and eigenvalues only, ~4x faster than the square root; ``eigh``: the square
    root of S1 from its eigendecomposition, for a singular S1 (where Cholesky fails).
    """
    if method == "cholesky":
        low = np.linalg.cholesky((c1 + c1.T) / 2)
        m = low.T @ c2 @ low
        return np.linalg.eigvalsh((m + m.T) / 2), 0
    root1, neg1 = _sym_sqrt(c1)
    m = root1 @ c2 @ root1
    return np.linalg.eigvalsh((m + m.T) / 2), neg1


def _warn_rank_deficient(n: int, dim: int) -> None:
    warnings.warn(
        f"FID with {n} samples in {dim} dimensions: the covariance is singular (legal; FID is "
        "biased upwards at small N); recorded as rank_deficient",
        RankDeficientWarning,
        stacklevel=3,
    )


def frechet_distance(s1: FeatureStats, s2: FeatureStats) -> FIDResult:
    """FID between two Gaussians given by their statistics (float64, never complex)."""
    if s1.dim != s2.dim:
        raise HarnessError(
            f"feature dimensions differ: {s1.dim} vs {s2.dim}; both statistics "
            "must come from the same backbone layer"
        )
    mu1, mu2 = np.asarray(s1.mu, np.float64), np.asarray(s2.mu, np.float64)
    c1, c2 = np.asarray(s1.sigma, np.float64), np.asarray(s2.sigma, np.float64)
    deficient = min(s1.n, s2.n) <= s1.dim
    method = "eigh" if deficient else "cholesky"
    try:
        w, neg1 = _product_eigenvalues(c1, c2, method)
    except np.linalg.LinAlgError:  # S1 singular (e.g. a constant feature): its square root
        method = "eigh"
        w, neg1 = _product_eigenvalues(c1, c2, method)
    neg = int(np.count_nonzero(w < 0)) + neg1
    tr_sqrt = float(np.sqrt(np.clip(w, 0, None)).sum())
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    trace_term = float(np.trace(c1) + np.trace(c2) - 2 * tr_sqrt)
    if deficient:
        _warn_rank_deficient(min(s1.n, s2.n), s1.dim)
    return FIDResult(
        mean_term + trace_term,
        mean_term,
        trace_term,
        neg,
        float(w.min()),
        int(s1.n),
        int(s2.n),
        int(s1.dim),
        bool(deficient),
        method,
    )


def fid(features1, features2) -> FIDResult:
    """FID between two feature sets (N1 x D and N2 x D).

    With no more samples than dimensions (both sets) the covariances have rank < N, and the
    trace term is computed exactly in sample space: with centred rows A, B,
    ``tr sqrt(S1^1/2 S2 S1^1/2) = ||A B^T||_* / sqrt((N1-1)(N2-1))`` (the nuclear norm: the
    eigenvalues of S1 S2 are the squared singular values of A B^T / sqrt(...)), an N1 x N2 SVD
    instead of two D x D eigendecompositions.
    """
    a, b = _pair(features1, features2)
    n1, n2, d = len(a), len(b), a.shape[1]
    if max(n1, n2) > d:
        return frechet_distance(feature_stats(a), feature_stats(b))
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
        float((sv**2).min()) if len(sv) else 0.0,
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

    def provenance(self) -> dict:
        return {"prdc_k_precision_recall": self.k_pr, "prdc_k_density_coverage": self.k_dc}


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


def prdc(real, fake, k_pr: int = 3, k_dc: int = 5, block: int = BLOCK_ROWS) -> PRDCResult:
    """Precision, recall (k_pr) and density, coverage (k_dc) of ``fake`` against ``real``.

    One pass over the fake x real distances in blocks of ``block`` fake rows serves all four.
    """
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
        in_real_ball[s : s + block] = (d <= r_pr[None, :]).any(axis=1)
        density_hits += int(np.count_nonzero(d <= r_dc[None, :]))
        real_covered_by_fake_ball |= (d <= f_pr[s : s + block, None]).any(axis=0)
        np.minimum(nearest_fake, d.min(axis=0), out=nearest_fake)
    return PRDCResult(
        float(in_real_ball.mean()),
        float(real_covered_by_fake_ball.mean()),
        float(density_hits / (k_dc * len(f))),
        float(np.mean(nearest_fake <= r_dc)),
        int(k_pr),
        int(k_dc),
        len(r),
        len(f),
    )


# --- reference statistics files ------------------------------------------------------------------

#: sidecar keys that must agree between a stats file and the run that uses it
MATCH_KEYS = ("backbone", "weights_sha256", "resize", "feature_layer")


def stats_meta(net, source=None) -> dict:
    """What a statistics file must share with the run that uses it (plus what describes it)."""
    from .resize import canonical

    p = net.provenance()
    meta = {
        "backbone": p["backbone"],
        "weights": p["weights"],
        "weights_sha256": p.get("weights_sha256"),
        "resize": canonical(p["resize"], p.get("align_corners")),
        "input_size": p["input_size"],
        "feature_layer": "pool (2048-d, before the classifier)",
        "framework_versions": p.get("framework_versions"),
    }
    if source is not None:
        sp = source.provenance()
        meta.update({"dataset": sp["dataset"], "dataset_fingerprint": sp["fingerprint"]})
    return meta


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


def save_stats(path, stats: FeatureStats) -> Path:
    """``.npz`` with ``mu`` and ``sigma`` (the layout of TTUR, pytorch-fid and clean-fid files)
    plus a JSON sidecar (backbone, weights sha256, resize, N, ...), both written atomically.
    """
    from .results import atomic_path, atomic_write_text

    path = Path(path)
    if path.suffix != ".npz":
        raise ConfigError(f"reference statistics are saved as .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=stats.mu, sigma=stats.sigma)
    atomic_write_text(
        sidecar_path(path),
        json.dumps(
            {**stats.meta, "n_samples": stats.n, "dim": stats.dim, "covariance_ddof": 1},
            indent=2,
            sort_keys=True,
            default=str,
        ),
    )
    return path


def load_stats(path, expect: dict | None = None, allow_mismatched: bool = False):
    """Statistics from ``path``; ``expect`` (the run's backbone, weights sha256, resize, layer)
    is compared with the sidecar.  Returns ``(stats, notes)``: notes list what was not checked
    or was allowed to differ, for provenance.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(
            f"reference statistics file {path} does not exist; compute it "
            "with `python -m harness +experiment=reference_stats ...` or "
            "point reference_stats= at an existing .npz"
        )
    with np.load(path) as z:
        if "mu" not in z.files or "sigma" not in z.files:
            raise ConfigError(
                f"{path} has keys {z.files}; a statistics file needs 'mu' and 'sigma'"
            )
        mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ConfigError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ConfigError(f"{path}: mu or sigma contains NaN or inf")
    notes = []
    side = sidecar_path(path)
    if side.exists():
        meta = json.loads(side.read_text())
    else:
        meta = {}
        msg = (
            f"{path.name} has no sidecar {side.name}: its backbone, weights, resize and N "
            "cannot be checked against this run"
        )
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    for key in MATCH_KEYS if (expect and meta) else ():
        want, got = expect.get(key), meta.get(key)
        if want is None or got is None or want == got:
            continue
        msg = f"{path.name} was made with {key}={got!r}, this run has {want!r}"
        if not allow_mismatched:
            raise ConfigError(
                msg + "; recompute the statistics with this run's settings or set "
                "allow_mismatched_stats=true"
            )
        notes.append(msg + " (allowed: allow_mismatched_stats=true)")
    n = int(meta.get("n_samples", 0)) or -1
    return FeatureStats(mu, sigma, n, meta), notes


def fid_against_stats(features, ref: FeatureStats) -> FIDResult:
    s = feature_stats(features)
    if ref.n < 0:  # no sidecar: N unknown; rank deficiency judged on this side only
        ref = FeatureStats(ref.mu, ref.sigma, max(s.n, ref.dim + 1), ref.meta)
    return frechet_distance(s, ref)
