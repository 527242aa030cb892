"""Adversarial Inception-Score inflation (Barratt & Sharma 2018, section 4.2.2).

Each image i gets a target class t_i = i mod C (C = the backbone's classes, so the targets'
marginal is uniform) and is pushed towards it by the Fast Gradient Sign Method:

    x <- clip(x + eps * sign(grad_x log p(t | x)), valid range)

``x`` lives in the network's input space (by default at the network's input resolution, after
the backbone's own resize and normalisation).  ``eps`` is given in ``eps_units``:
``minus_one_one`` (default: the paper's 0.001 on a [-1, 1] pixel scale, i.e. 0.1275 grey
levels, whatever the backbone's own input range), ``pixel`` (grey levels 0..255) or ``network``
(raw units of the backbone's input, e.g. 0..255 floats for the 2015 graph).  It is converted to
network units per channel.  The valid range is the image of pixel values 0..255 under the
backbone's normalisation, per channel.

After every iteration the classic IS (n_splits and 1 split), S(G), the mean target probability
and the mean L-inf / L2 perturbation are recorded.  At the end the images are quantised to uint8
and re-scored through the backbone's ordinary path, since that is what a user would publish.

Each backbone provides its own gradient path (:meth:`Backbone.attack_target`): torch autograd
for the PyTorch backbones (CPU or CUDA), TensorFlow's GradientTape for Keras and TF-Hub, and
``tf.gradients`` inside the imported graph for the 2015 graph.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import scores
from .backbones.base import check_images
from .errors import HarnessError

PRECISIONS = ("highest", "tf32", "bf16")
EPS_UNITS = ("minus_one_one", "pixel", "network")


@dataclass
class AttackSettings:
    eps: float = 0.001
    eps_units: str = "minus_one_one"  # minus_one_one | pixel | network
    iterations: int = 100
    n_splits: int = 10
    batch_size: int = 64
    attack_at: str = "network_input"  # network_input | source (torch only: through the resize)
    precision: str = "highest"  # CUDA: highest (exact fp32) | tf32 | bf16

    def __post_init__(self):
        if not self.eps > 0:
            raise HarnessError(f"attack eps must be positive, got {self.eps}")
        if self.eps_units not in EPS_UNITS:
            raise HarnessError(
                f"attack eps_units must be one of {', '.join(EPS_UNITS)}, got {self.eps_units!r}"
            )
        if int(self.iterations) < 0:
            raise HarnessError(f"attack iterations must be >= 0, got {self.iterations}")
        if self.attack_at not in ("network_input", "source"):
            raise HarnessError(f"attack_at must be network_input or source, got {self.attack_at!r}")
        if self.precision not in PRECISIONS:
            raise HarnessError(f"attack precision must be one of {', '.join(PRECISIONS)}")

    def eps_network(self, scale: np.ndarray) -> np.ndarray:
        """Step size per channel in the backbone's input units (``scale``: units per grey level)."""
        if self.eps_units == "network":
            return np.full(3, self.eps)
        grey = self.eps * 127.5 if self.eps_units == "minus_one_one" else self.eps
        return grey * np.asarray(scale, dtype=np.float64)


def cycling_targets(n: int, num_classes: int, offset: int = 0) -> np.ndarray:
    """t_i = (i + offset) mod C: every class targeted equally often (uniform marginal)."""
    return (np.arange(n) + int(offset)) % int(num_classes)


# ------------------------------------------------------------------------------ core step
def fgsm_step_torch(logit_fn, x, targets, eps, lo, hi):
    """One FGSM step on a torch tensor: returns (logits before the step, stepped x).

    ``eps``, ``lo`` and ``hi`` broadcast against ``x`` (per-channel tensors allowed).
    """
    import torch

    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = logit_fn(x)
        logp = torch.log_softmax(logits.float(), dim=1)
        obj = logp.gather(1, targets.view(-1, 1)).sum()  # images are independent in eval mode
        (grad,) = torch.autograd.grad(obj, x)
    with torch.no_grad():
        stepped = torch.maximum(torch.minimum(x + eps * torch.sign(grad), hi), lo)
    return logits.detach(), stepped.detach()


# ------------------------------------------------------------------------------ gradient paths
# Each backbone owns its gradient path (``net.attack_target(settings)``); this is the protocol
# and the numpy bookkeeping the TensorFlow paths share.
class NumpyAttackTarget:
    """Shared numpy bookkeeping for gradient paths that work on numpy arrays (TensorFlow).

    A backbone's :meth:`~harness.backbones.base.Backbone.attack_target` returns an object with
    ``start(uint8) -> x``, ``step(x, targets, do_step) -> (logits, x)``, ``slice``, ``assign``,
    ``clone``, ``distances``, ``to_uint8`` and ``concat_logits_exact``; this base class provides
    all but ``start`` and ``step`` for numpy inputs in the network's input space.
    """

    def __init__(self, net, settings: AttackSettings):
        if settings.attack_at != "network_input":
            raise HarnessError(
                f"attack_at=source is only available for torchvision, not {net.name}"
            )
        if settings.precision != "highest":
            raise HarnessError(
                f"attack precision={settings.precision} is a CUDA mode (torchvision only)"
            )
        self.net, self.s = net, settings
        scale, offset = net.normalize_from_255()
        self.scale = scale.astype(np.float32)
        self.offset = offset.astype(np.float32)
        self.lo, self.hi = self.offset, (255 * scale + offset).astype(np.float32)
        self.eps = settings.eps_network(scale).astype(np.float32)

    def slice(self, x, a, b):
        return x[a:b]

    def assign(self, x, a, b, v):
        x[a:b] = v

    def clone(self, x):
        return x.copy()

    def update(self, x, grad):
        return np.clip(x + self.eps * np.sign(grad), self.lo, self.hi).astype(np.float32)

    def distances(self, x, x0):
        n = len(x)
        dn = (x - x0).reshape(n, -1).astype(np.float64)
        dp = ((x - x0) / self.scale).reshape(n, -1)
        return {
            "linf_network": np.abs(dn).max(1),
            "l2_network": np.linalg.norm(dn, axis=1),
            "linf_pixels": np.abs(dp).max(1),
        }

    def to_uint8(self, x) -> np.ndarray:
        return np.clip(np.rint((x - self.offset) / self.scale), 0, 255).astype(np.uint8)

    def concat_logits_exact(self, x):
        return np.concatenate(
            [
                self.step(x[a : a + self.s.batch_size], None, False)[0]
                for a in range(0, len(x), self.s.batch_size)
            ]
        )


# ------------------------------------------------------------------------------ the attack
@dataclass
class AttackResult:
    history: list
    start_uint8: np.ndarray
    final_uint8: np.ndarray
    targets: np.ndarray
    final: dict
    seconds: float
    extra: dict = field(default_factory=dict)


DIST_KEYS = ("linf_network", "l2_network", "linf_pixels")


class SegmentStats:
    """Sufficient statistics of one pass, per *segment* (the rows of one attack batch that fall
    in one split of the global N): class-probability column sums, sum p log p, sum of target
    probabilities, target hits, and sums of the per-image distances.  Segments are fixed by the
    global N, the split count and the batch size, so a shard (whole batches) yields exactly the
    segments an unsharded run yields for its rows, and merging shards in row order gives the
    same arrays, hence the same numbers to the last bit (:func:`summarize`)."""

    def __init__(self):
        self.split, self.start, self.count = [], [], []
        self.colsum, self.plogp, self.tprob, self.hits = [], [], [], []
        self.dist = {k: [] for k in DIST_KEYS}

    def add(self, logits, targets, row_start: int, bounds, dist: dict | None = None) -> None:
        p = scores.softmax(np.asarray(logits, dtype=np.float64))
        n = len(p)
        for k, (lo, hi) in enumerate(bounds):
            a, b = max(lo, row_start), min(hi, row_start + n)
            if a >= b:
                continue
            q = p[a - row_start : b - row_start]
            t = targets[a - row_start : b - row_start]
            self.split.append(k)
            self.start.append(a)
            self.count.append(b - a)
            self.colsum.append(q.sum(axis=0))
            self.plogp.append(float(scores._xlogx(q).sum()))
            self.tprob.append(float(q[np.arange(len(q)), t].sum()))
            self.hits.append(int((q.argmax(1) == t).sum()))
            for key in DIST_KEYS:
                v = (dist or {}).get(key)
                self.dist[key].append(
                    float(np.sum(v[a - row_start : b - row_start])) if v is not None else 0.0
                )

    def arrays(self, prefix: str) -> dict:
        out = {
            f"{prefix}split": np.array(self.split, np.int64),
            f"{prefix}start": np.array(self.start, np.int64),
            f"{prefix}count": np.array(self.count, np.int64),
            f"{prefix}colsum": np.array(self.colsum, np.float64),
            f"{prefix}plogp": np.array(self.plogp),
            f"{prefix}tprob": np.array(self.tprob),
            f"{prefix}hits": np.array(self.hits, np.int64),
        }
        for k in DIST_KEYS:
            out[f"{prefix}{k}"] = np.array(self.dist[k])
        return out


def summarize(st: dict, prefix: str, n_splits: int) -> dict:
    """The per-pass summary (IS over splits and 1 split, S(G), target statistics, mean
    distances) from segment arrays (as saved by :meth:`SegmentStats.arrays`, possibly merged)."""
    split, count, colsum = st[f"{prefix}split"], st[f"{prefix}count"], st[f"{prefix}colsum"]
    plogp = st[f"{prefix}plogp"]
    n = int(count.sum())

    def log_is(cs, pl, m):  # ln IS of a set of rows from its column sums and sum p log p
        q = cs / m
        return (pl - float(cs[q > 0] @ np.log(q[q > 0]))) / m

    per = []
    for k in range(n_splits):
        sel = split == k
        m = int(count[sel].sum())
        if m:
            per.append(np.exp(log_is(colsum[sel].sum(axis=0), float(plogp[sel].sum()), m)))
    per = np.array(per)
    sg = log_is(colsum.sum(axis=0), float(plogp.sum()), n)
    out = {
        "is_mean": float(per.mean()),
        "is_std": float(per.std()),
        "n_splits": len(per),
        "is_1split": float(np.exp(sg)),
        "sg_nats": float(sg),
        "mean_target_prob": float(st[f"{prefix}tprob"].sum() / n),
        "target_hit_rate": float(st[f"{prefix}hits"].sum() / n),
        "conditional_entropy_bits": float(-plogp.sum() / n / np.log(2)),
    }
    for k in DIST_KEYS:
        out[k] = float(st[f"{prefix}{k}"].sum() / n)
    return out


def split_bounds(n_total: int, n_splits: int) -> list:
    s = min(n_splits, n_total)
    return [(k * n_total // s, (k + 1) * n_total // s) for k in range(s)]


def run_attack(
    net,
    start_uint8: np.ndarray,
    settings: AttackSettings | None = None,
    targets: np.ndarray | None = None,
    progress: bool = True,
    row_offset: int = 0,
    n_total: int | None = None,
) -> AttackResult:
    """FGSM towards cycling targets; metrics after every iteration; quantised final images.

    ``row_offset`` / ``n_total``: these images are rows ``row_offset ..`` of a larger set of
    ``n_total`` (a shard); splits are cut over the whole set and every statistic is kept per
    segment (``extra["segments"]``), so shards merge into the unsharded result exactly.
    """
    s = settings or AttackSettings()
    if not net.has_gradients:
        raise HarnessError(f"backbone {net.name} has no gradient path for the attack")
    start_uint8 = check_images(start_uint8, net.min_image_side)
    n = len(start_uint8)
    tgt = _checked_targets(targets, n, net.num_classes)
    n_total = n if n_total is None else int(n_total)
    if row_offset % s.batch_size:
        raise HarnessError("a shard must start on a batch boundary (attack.batch_size)")
    bounds = split_bounds(n_total, int(s.n_splits))
    T = net.attack_target(s)
    run = _AttackRun(net, s, T, tgt, row_offset, bounds)
    x = T.start(start_uint8)
    x0 = T.clone(x)
    t0 = time.perf_counter()
    history, segments = _fgsm_iterations(run, x, x0, progress)
    seconds = time.perf_counter() - t0
    final_uint8 = T.to_uint8(x)
    segments.update(_final_passes(run, x, final_uint8))
    flat = {k: v for d in segments.values() for k, v in d.items()}
    linf_bound = s.iterations * float(np.max(np.asarray(_as_np(T.eps))))
    final = final_from_segments(flat, history, run.n_splits, net.num_classes, linf_bound)
    return AttackResult(
        history,
        start_uint8,
        final_uint8,
        tgt,
        final,
        seconds,
        {
            "images_per_second_iteration": n * max(int(s.iterations), 1) / max(seconds, 1e-9),
            "segments": flat,
            "linf_bound_network": linf_bound,
            "n_splits": run.n_splits,
            "row_offset": int(row_offset),
            "n_total": n_total,
            "iterations": int(s.iterations),
        },
    )


def _checked_targets(targets, n: int, num_classes: int) -> np.ndarray:
    """The cycling targets (``targets=None``) or the given ones, checked: n class indices."""
    tgt = cycling_targets(n, num_classes) if targets is None else np.asarray(targets)
    if tgt.shape != (n,) or tgt.min() < 0 or tgt.max() >= num_classes:
        raise HarnessError(f"attack targets must be {n} class indices in [0, {num_classes})")
    return tgt


@dataclass
class _AttackRun:
    """One :func:`run_attack`: the network, its gradient path, the targets and where these rows
    sit in the global splits (``row_offset``, ``bounds``)."""

    net: object
    s: AttackSettings
    T: object  # the backbone's attack target (gradient path)
    targets: np.ndarray
    row_offset: int
    bounds: list

    @property
    def n_splits(self) -> int:
        return len(self.bounds)

    def batches(self):
        """(a, b) of every attack batch, in order."""
        n = len(self.targets)
        for a in range(0, n, self.s.batch_size):
            yield a, min(a + self.s.batch_size, n)

    def add(self, st: SegmentStats, a: int, b: int, logits, dist: dict | None = None) -> None:
        """Rows a..b's logits (and distances) into ``st``, at their global row numbers."""
        st.add(logits, self.targets[a:b], self.row_offset + a, self.bounds, dist)


def _fgsm_iterations(run: _AttackRun, x, x0, progress: bool) -> tuple[list, dict]:
    """Score x, then step it, ``iterations`` times (and score the last x): the per-iteration
    history rows and segment arrays (``it<k>_``).  ``x`` is stepped in place."""
    s, T = run.s, run.T
    history, segments = [], {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(s.iterations), desc=f"FGSM {run.net.name}", unit="it", leave=False)
    for it in range(int(s.iterations) + 1):
        do_step = it < s.iterations
        # distances of the images scored in this pass (x after `it` steps), before it is stepped
        dist = T.distances(x, x0)
        st = SegmentStats()
        for a, b in run.batches():
            lg, new = T.step(T.slice(x, a, b), run.targets[a:b], do_step)
            run.add(st, a, b, lg, {k: v[a:b] for k, v in dist.items()})
            if do_step:
                T.assign(x, a, b, new)
        segments[f"it{it}_"] = st.arrays(f"it{it}_")
        row = {"iteration": it, **summarize(segments[f"it{it}_"], f"it{it}_", run.n_splits)}
        history.append(row)
        if bar is not None and do_step:
            bar.update(1)
            bar.set_postfix(IS=f"{row['is_mean']:.1f}")
    if bar is not None:
        bar.close()
    return history, segments


def _final_passes(run: _AttackRun, x, final_uint8: np.ndarray) -> dict:
    """Segment arrays of the final images: float in exact fp32 (``exact_``) and quantised to
    uint8 through the backbone's ordinary path (``quant_``)."""
    ex, qu = SegmentStats(), SegmentStats()
    exact_logits = run.T.concat_logits_exact(x)
    for a, b in run.batches():
        run.add(ex, a, b, exact_logits[a:b])
        # the images a user would publish: uint8, through the backbone's ordinary path (in the
        # attack's batches, so a shard computes exactly what the unsharded run computes)
        run.add(qu, a, b, run.net.logits(final_uint8[a:b]))
    return {"exact_": ex.arrays("exact_"), "quant_": qu.arrays("quant_")}


def _as_np(v):
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def final_from_segments(
    seg: dict, history: list, n_splits: int, num_classes: int, linf_bound: float
) -> dict:
    """The ``final`` record of :class:`AttackResult` from (merged) segment arrays."""
    keys = ("is_mean", "is_std", "is_1split", "sg_nats", "mean_target_prob")
    return {
        "float_in_attack_precision": {k: history[-1][k] for k in keys},
        "float_exact_fp32": summarize(seg, "exact_", n_splits),
        "quantized_uint8": summarize(seg, "quant_", n_splits),
        "start": {k: history[0][k] for k in keys},
        "max_possible_is": num_classes,
        "linf_bound_network": linf_bound,
    }


__all__ = [
    "AttackSettings",
    "AttackResult",
    "NumpyAttackTarget",
    "run_attack",
    "cycling_targets",
    "fgsm_step_torch",
]
