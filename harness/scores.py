"""Inception Score, the paper's improved score S(G), and entropies: pure numpy, float64.

Every function takes class probabilities p(y|x) as an N x C array (rows sum to 1) and works
in float64 with the convention 0 * log 0 = 0, so one-hot rows, rows with exact zeros and
underflowed softmax outputs give finite results.

Definitions (Barratt & Sharma 2018, ../shared/paper-notes.md section 1):

* classic IS (Salimans et al. 2016): cut the N rows into ``n_splits`` contiguous slices
  ``probs[i*N//S:(i+1)*N//S]`` (the original code's convention); per slice
  ``exp(mean_i KL(p(y|x_i) || p_hat(y)))`` with ``p_hat`` the slice's mean row; report the
  mean and std (``ddof``) over slices.
* improved score S(G): mean_i KL(p(y|x_i) || p_hat(y)) with ``p_hat`` from all N rows and no
  exp, in nats (bits = nats / ln 2).  ln IS(1 split) == S(G) == H(y) - H(y|x).

>>> import numpy as np
>>> probs = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]        # 4 classes, each predicted with certainty
>>> round(inception_score(probs, n_splits=2).mean, 12)
4.0
>>> round(improved_score(probs).bits, 12)                # log2(4)
2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import HarnessError

__all__ = [
    "ROW_SUM_TOL",
    "SplitSpec",
    "ASSIGNS",
    "SHUFFLES",
    "ISResult",
    "ImprovedScore",
    "TopClasses",
    "PreparedProbs",
    "softmax",
    "validate_probs",
    "prepare",
    "inception_score",
    "improved_score",
    "conditional_entropy",
    "marginal_entropy",
    "top_marginal_classes",
    "per_sample_kl",
    "underflow_count",
]

#: seeds numpy's RandomState and torch's generators both accept: [0, 2**32)
SEED_MAX = 2**32 - 1

#: Rows must sum to 1 within this absolute tolerance.
ROW_SUM_TOL = 1e-6

_LN2 = math.log(2.0)


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64 for logits of any magnitude.

    >>> softmax(np.array([[1000.0, 1000.0, -1000.0]])).round(6).tolist()
    [[0.5, 0.5, 0.0]]
    """
    # One memory layout whatever the caller's: column-major, which is what the CPU backbones
    # return; summation order (and so the last bit) would otherwise depend on where logits came
    # from (a cache, a GPU, a slice).
    z = np.array(logits, dtype=np.float64, order="F")
    if not np.all(np.isfinite(z)):
        raise HarnessError("softmax: logits contain NaN or inf; check the backbone output")
    z = z - np.max(z, axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= np.sum(z, axis=axis, keepdims=True)
    return z


def validate_probs(probs, name: str = "probs") -> np.ndarray:
    """Return ``probs`` as a C-contiguous float64 array, or raise a one-line :class:`HarnessError`
    (a ``ValueError``).
    """
    p = np.asarray(probs)
    if p.ndim != 2:
        raise HarnessError(
            f"{name} must be 2-D (N samples x C classes), got shape {p.shape}; "
            "reshape to (N, C) or pass softmax(logits)"
        )
    n, c = p.shape
    if n < 1:
        raise HarnessError(f"{name} has no rows (shape {p.shape}); pass at least one sample")
    if c < 2:
        raise HarnessError(f"{name} has {c} class(es); the Inception Score needs at least 2")
    if not np.issubdtype(p.dtype, np.number) or np.issubdtype(p.dtype, np.complexfloating):
        raise HarnessError(f"{name} must be a real numeric array, got dtype {p.dtype}")
    p = np.ascontiguousarray(p, dtype=np.float64)
    row_sums = p.sum(axis=1)
    if not np.isfinite(row_sums).all():  # a NaN or inf anywhere makes its row sum non-finite
        bad = int(np.count_nonzero(~np.isfinite(row_sums)))
        raise HarnessError(f"{name} contains NaN or inf in {bad} row(s); fix the upstream logits")
    if p.min() < 0:
        bad = int(np.count_nonzero((p < 0).any(axis=1)))
        raise HarnessError(
            f"{name} has negative entries in {bad} row(s) (min {p.min():.3g}); "
            "pass probabilities, not logits (use softmax(logits))"
        )
    dev = np.abs(row_sums - 1.0)
    worst = float(dev.max())
    if worst > ROW_SUM_TOL:
        bad = int(np.count_nonzero(dev > ROW_SUM_TOL))
        raise HarnessError(
            f"{name} rows must sum to 1 within {ROW_SUM_TOL:g}: {bad} row(s) are off, "
            f"worst by {worst:.3g}; pass softmax(logits) or renormalise"
        )
    return p


def _xlogx(p: np.ndarray) -> np.ndarray:
    """Elementwise p * ln p with 0 * ln 0 = 0."""
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = p[pos] * np.log(p[pos])
    return out


def _safe_log(q: np.ndarray) -> np.ndarray:
    """ln q where q > 0, and 0 where q == 0 (only multiplied by p == 0 there)."""
    out = np.zeros_like(q)
    pos = q > 0
    out[pos] = np.log(q[pos])
    return out


@dataclass(frozen=True)
class PreparedProbs:
    """Validated probabilities plus per-row sum_j p log p, reused across many score calls.

    KL(p_i || q) = sum_j p_ij ln p_ij - sum_j p_ij ln q_j, so the expensive logarithms of the
    N x C array are taken once; each split then costs one column mean and one mat-vec.
    """

    probs: np.ndarray
    neg_entropy: np.ndarray  # sum_j p_ij ln p_ij  (<= 0), shape (N,)

    @property
    def n(self) -> int:
        return self.probs.shape[0]

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]


def prepare(probs) -> PreparedProbs:
    """Validate ``probs`` once and precompute per-row entropies (see :class:`PreparedProbs`)."""
    if isinstance(probs, PreparedProbs):
        return probs
    p = validate_probs(probs)
    # Row by row in blocks: bounded temporary memory for 50,000 x 1,008 inputs.
    neg_h = np.empty(p.shape[0], dtype=np.float64)
    step = 4096
    for s in range(0, p.shape[0], step):
        block = p[s : s + step]
        logs = np.log(block, out=np.zeros_like(block), where=block > 0)  # 0 * log 0 = 0
        neg_h[s : s + step] = np.einsum("ij,ij->i", block, logs)
    return PreparedProbs(probs=p, neg_entropy=neg_h)


def _kl_to(prep: PreparedProbs, rows: slice | np.ndarray, marginal: np.ndarray) -> np.ndarray:
    """Per-row KL(p_i || marginal) for the selected rows, in nats, clipped at 0 from rounding."""
    kl = prep.neg_entropy[rows] - prep.probs[rows] @ _safe_log(marginal)
    return np.maximum(kl, 0.0)


def per_sample_kl(probs) -> np.ndarray:
    """KL(p(y|x_i) || p_hat(y)) in nats for every row, p_hat the mean of all rows."""
    prep = prepare(probs)
    return _kl_to(prep, slice(None), prep.probs.mean(axis=0))


ASSIGNS = ("floor", "chunk", "drop_remainder")
SHUFFLES = ("none", "numpy_rng", "numpy_randomstate", "torch_randperm")


@dataclass(frozen=True)
class SplitSpec:
    """How N rows become splits: the conventions the reference implementations differ in.

    ``assign``: ``floor`` (rows ``i*N//S .. (i+1)*N//S``: the original code, torch-fidelity),
    ``chunk`` (``torch.chunk``: ceil(N/S) rows per split, possibly fewer splits; torchmetrics),
    ``drop_remainder`` (S splits of N//S rows, the last N mod S rows unused; sbarratt, piq).
    ``shuffle`` (applied first): ``none``, ``numpy_rng`` (``np.random.default_rng(seed)``),
    ``numpy_randomstate`` (``np.random.RandomState(seed)``, torch-fidelity with seed 2020),
    ``torch_randperm`` (``torch.randperm`` with a generator seeded by ``seed``; torchmetrics).
    ``ddof``: the std's delta degrees of freedom over split scores (0 = ``np.std``).
    """

    n_splits: int = 10
    assign: str = "floor"
    shuffle: str = "none"
    seed: int | None = None
    ddof: int = 0

    def __post_init__(self):
        for name, v in (("n_splits", self.n_splits), ("ddof", self.ddof)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise HarnessError(f"{name} must be an integer, got {v!r}")
        if self.n_splits < 1:
            raise HarnessError(f"n_splits must be at least 1, got {self.n_splits}")
        if self.ddof < 0:
            raise HarnessError(f"ddof must be a non-negative integer, got {self.ddof!r}")
        if self.ddof >= self.n_splits:
            raise HarnessError(
                f"ddof={self.ddof} needs more than {self.ddof} splits, but n_splits="
                f"{self.n_splits}; lower ddof or use more splits (the std would be undefined)"
            )
        if self.assign not in ASSIGNS:
            raise HarnessError(
                f"splits.assign must be one of {', '.join(ASSIGNS)}, got {self.assign!r}"
            )
        if self.shuffle not in SHUFFLES:
            raise HarnessError(
                f"splits.shuffle must be one of {', '.join(SHUFFLES)}, got {self.shuffle!r}"
            )
        if self.shuffle != "none" and (
            self.seed is None
            or isinstance(self.seed, (bool, np.bool_))
            or not isinstance(self.seed, (int, np.integer))
        ):
            raise HarnessError(
                f"splits.shuffle={self.shuffle} needs an integer seed (splits.seed=<int>), "
                f"got {self.seed!r}"
            )
        if self.shuffle == "none" and self.seed is not None:
            raise HarnessError(
                f"splits.seed={self.seed} has no effect with splits.shuffle=none; remove it or "
                "choose a shuffle"
            )
        if self.seed is not None and not 0 <= int(self.seed) <= SEED_MAX:
            raise HarnessError(
                f"splits.seed={self.seed} must be from 0 to {SEED_MAX} (what numpy and torch "
                "accept)"
            )

    @classmethod
    def from_order(cls, n_splits: int, order=None, ddof: int = 0) -> SplitSpec:
        """The harness's original ``order`` argument: None = as given, int = numpy_rng(seed)."""
        seed = _check_order(order)
        return cls(n_splits, "floor", "none" if seed is None else "numpy_rng", seed, ddof)

    def permutation(self, n: int) -> np.ndarray | None:
        if self.shuffle == "none":
            return None
        if self.shuffle == "numpy_rng":
            return np.random.default_rng(self.seed).permutation(n)
        if self.shuffle == "numpy_randomstate":
            return np.random.RandomState(self.seed).permutation(n)
        try:
            import torch
        except ImportError:
            raise HarnessError("splits.shuffle=torch_randperm needs torch installed") from None
        gen = torch.Generator().manual_seed(int(self.seed))
        return torch.randperm(n, generator=gen).numpy()

    def bounds(self, n: int) -> list[tuple[int, int]]:
        """(start, stop) of every split of n rows (after the shuffle)."""
        s = self.n_splits
        if s > n:
            raise HarnessError(
                f"n_splits={s} is more than the N={n} samples; use at most {n} splits (or more "
                "samples)"
            )
        if self.assign == "floor":
            out = [(i * n // s, (i + 1) * n // s) for i in range(s)]
        elif self.assign == "chunk":
            size = -(-n // s)
            out = [(a, min(a + size, n)) for a in range(0, n, size)]
        else:
            size = n // s
            out = [(i * size, (i + 1) * size) for i in range(s)]
        if self.ddof >= len(out):
            raise HarnessError(
                f"ddof={self.ddof} needs more than {self.ddof} splits, but there are {len(out)}; "
                "lower ddof or use more splits (the std would be undefined)"
            )
        return out

    def used(self, n: int) -> dict:
        """The splits this convention really makes of n rows (``chunk`` may make fewer than
        asked: N=24, 7 splits -> 6 of 4): what every row records."""
        sizes = [b - a for a, b in self.bounds(n)]
        out = {"n_splits": len(sizes), "split_size": _sizes_label(sizes)}
        if len(sizes) != self.n_splits:
            out["n_splits_requested"] = self.n_splits
        return out

    def label(self) -> str:
        """Human/machine-readable label, e.g. ``floor after numpy_randomstate(2020)``."""
        if self.assign == "floor" and self.shuffle == "none":
            return "contiguous"
        if self.assign == "floor" and self.shuffle == "numpy_rng":
            return f"contiguous after shuffle(seed={self.seed})"
        base = {
            "floor": "contiguous",
            "chunk": "torch.chunk",
            "drop_remainder": "contiguous, remainder dropped",
        }[self.assign]
        return base if self.shuffle == "none" else f"{base} after {self.shuffle}({self.seed})"

    def provenance(self) -> dict:
        return {
            "split_assignment": self.label(),
            "split_assign": self.assign,
            "split_shuffle": self.shuffle,
            "split_seed": self.seed,
            "std_ddof": self.ddof,
        }


def _sizes_label(sizes) -> str:
    """``5000`` when all splits have one size, else ``4999-5000``."""
    lo, hi = min(sizes), max(sizes)
    return str(lo) if lo == hi else f"{lo}-{hi}"


@dataclass(frozen=True)
class ISResult:
    """Classic Inception Score: mean and std over split scores."""

    mean: float
    std: float
    split_scores: np.ndarray
    n_splits: int
    n: int
    ddof: int
    order: int | None = None  # None: as given; int: seed of the permutation applied first
    split_sizes: tuple = field(default=())
    spec: SplitSpec | None = None

    def as_dict(self) -> dict:
        return {
            "is_mean": self.mean,
            "is_std": self.std,
            "n_splits": self.n_splits,
            "n_samples": self.n,
            **(self.spec.provenance() if self.spec else {"std_ddof": self.ddof}),
        }


def split_assignment_label(order: int | None) -> str:
    """Human/machine-readable label for how rows were assigned to splits (``order`` form)."""
    return SplitSpec.from_order(1, order).label()


def _check_order(order) -> int | None:
    if order is None:
        return None
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise HarnessError(
            f"order must be None (keep the given order) or an int seed, got {order!r}"
        )
    return int(order)


def inception_score(
    probs,
    n_splits: int = 10,
    order: int | None = None,
    ddof: int = 0,
    splits: SplitSpec | None = None,
) -> ISResult:
    """Classic Inception Score over splits of the rows.

    By default the original code's convention: ``n_splits`` contiguous splits
    ``probs[i*N//S:(i+1)*N//S]``; ``order=None`` keeps the rows as given, an int applies
    ``np.random.default_rng(order)``'s permutation first; ``ddof`` is the std's delta degrees of
    freedom (0 = the original code's ``np.std``).  ``splits`` (a :class:`SplitSpec`) chooses any
    peer's convention instead.  More splits than rows, or ``ddof`` >= the number of splits, is
    an error (never NaN).

    >>> probs = np.full((6, 3), 1 / 3)                    # a classifier that knows nothing
    >>> round(inception_score(probs, n_splits=3).mean, 12)
    1.0
    """
    prep = prepare(probs)
    n = prep.n
    spec = splits if splits is not None else SplitSpec.from_order(n_splits, order, ddof)
    bounds = spec.bounds(n)
    perm = spec.permutation(n)
    if perm is not None:
        prep = PreparedProbs(probs=prep.probs[perm], neg_entropy=prep.neg_entropy[perm])
    scores = np.empty(len(bounds), dtype=np.float64)
    for i, (a, b) in enumerate(bounds):
        sl = slice(a, b)
        marginal = prep.probs[sl].mean(axis=0)
        scores[i] = math.exp(float(_kl_to(prep, sl, marginal).mean()))
    return ISResult(
        mean=float(scores.mean()),
        std=float(np.std(scores, ddof=spec.ddof)),
        split_scores=scores,
        n_splits=len(bounds),
        n=n,
        ddof=int(spec.ddof),
        order=spec.seed if spec.shuffle == "numpy_rng" else None,
        split_sizes=tuple(b - a for a, b in bounds),
        spec=spec,
    )


@dataclass(frozen=True)
class ImprovedScore:
    """The paper's S(G): mean per-sample KL to the marginal of all N samples, no exp.

    ``per_sample_std`` is the sample std (ddof=1) of the N per-sample KL terms, in nats;
    ``sem`` = per_sample_std / sqrt(N) is the standard error of ``nats``.
    """

    nats: float
    per_sample_std: float
    sem: float
    n: int

    @property
    def bits(self) -> float:
        return self.nats / _LN2

    @property
    def sem_bits(self) -> float:
        return self.sem / _LN2

    def as_dict(self) -> dict:
        return {
            "sg_nats": self.nats,
            "sg_bits": self.bits,
            "sg_per_sample_std_nats": self.per_sample_std,
            "sg_sem_nats": self.sem,
        }


def improved_score(probs) -> ImprovedScore:
    """The paper's improved score S(G) = mean_i KL(p(y|x_i) || p_hat(y)), p_hat from all N.

    >>> s = improved_score(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> round(s.nats, 12) == round(math.log(2), 12), round(s.bits, 12)
    (True, 1.0)
    """
    kl = per_sample_kl(probs)
    n = kl.shape[0]
    sd = float(np.std(kl, ddof=1)) if n > 1 else float("nan")
    return ImprovedScore(nats=float(kl.mean()), per_sample_std=sd, sem=sd / math.sqrt(n), n=n)


def _check_base(base) -> float:
    if base == "e":
        return 1.0
    b = float(base)
    if not b > 0 or b == 1:
        raise HarnessError(f"base must be a positive number other than 1 (or 'e'), got {base!r}")
    return math.log(b)


def conditional_entropy(probs, base: float = 2) -> float:
    """Mean entropy of the rows, H(y|x) = -mean_i sum_j p_ij log p_ij (bits by default)."""
    prep = prepare(probs)
    return float(-prep.neg_entropy.mean() / _check_base(base))


def marginal_entropy(probs, base: float = 2) -> float:
    """Entropy of the mean row, H(y) = -sum_j p_hat_j log p_hat_j (bits by default)."""
    p = prepare(probs).probs
    q = p.mean(axis=0)
    return float(-_xlogx(q).sum() / _check_base(base))


@dataclass(frozen=True)
class TopClasses:
    """The k classes with the largest marginal probability p_hat(y), largest first."""

    indices: np.ndarray
    probs: np.ndarray

    def __iter__(self):
        return iter(zip(self.indices.tolist(), self.probs.tolist()))


def top_marginal_classes(probs, k: int = 10) -> TopClasses:
    """Top-k classes of the marginal p_hat(y) = mean_i p(y|x_i); ties broken by class index.

    >>> top_marginal_classes(np.array([[0.1, 0.7, 0.2], [0.1, 0.5, 0.4]]), k=2).indices.tolist()
    [1, 2]
    """
    p = prepare(probs).probs
    q = p.mean(axis=0)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise HarnessError(f"k must be a positive integer, got {k!r}")
    k = min(int(k), q.shape[0])
    idx = np.lexsort((np.arange(q.shape[0]), -q))[:k]  # stable: ties keep the lower index first
    return TopClasses(indices=idx, probs=q[idx])


def underflow_count(probs) -> int:
    """Number of rows holding at least one exact zero (an underflowed softmax output)."""
    p = np.asarray(probs)
    return int(np.count_nonzero((p == 0).any(axis=1)))


def mean_run_length(labels) -> float:
    """Mean length of runs of equal labels in the given order (1 for a well-mixed sequence).

    >>> mean_run_length([0, 0, 1, 1, 2, 2])
    2.0
    """
    pred = np.asarray(labels)
    changes = int(np.count_nonzero(pred[1:] != pred[:-1]))
    return float(len(pred) / (changes + 1))
