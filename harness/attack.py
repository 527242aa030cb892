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


def _summary(logits: np.ndarray, targets: np.ndarray, n_splits: int) -> dict:
    p = scores.softmax(logits.astype(np.float64))
    s = min(n_splits, len(p))
    is_s = scores.inception_score(p, s)
    return {
        "is_mean": is_s.mean,
        "is_std": is_s.std,
        "n_splits": s,
        "is_1split": scores.inception_score(p, 1).mean,
        "sg_nats": scores.improved_score(p).nats,
        "mean_target_prob": float(p[np.arange(len(p)), targets].mean()),
        "target_hit_rate": float((p.argmax(1) == targets).mean()),
        "conditional_entropy_bits": scores.conditional_entropy(p),
    }


def run_attack(
    net,
    start_uint8: np.ndarray,
    settings: AttackSettings | None = None,
    targets: np.ndarray | None = None,
    progress: bool = True,
) -> AttackResult:
    """FGSM towards cycling targets; metrics after every iteration; quantised final images."""
    s = settings or AttackSettings()
    if not net.has_gradients:
        raise HarnessError(f"backbone {net.name} has no gradient path for the attack")
    start_uint8 = check_images(start_uint8)
    n = len(start_uint8)
    tgt = cycling_targets(n, net.num_classes) if targets is None else np.asarray(targets)
    if tgt.shape != (n,) or tgt.min() < 0 or tgt.max() >= net.num_classes:
        raise HarnessError(f"attack targets must be {n} class indices in [0, {net.num_classes})")
    T = net.attack_target(s)
    x = T.start(start_uint8)
    x0 = T.clone(x)
    t0 = time.perf_counter()
    history = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(s.iterations), desc=f"FGSM {net.name}", unit="it", leave=False)
    for it in range(int(s.iterations) + 1):
        do_step = it < s.iterations
        # distances of the images scored in this pass (x after `it` steps), before it is stepped
        dist = {k: float(np.mean(v)) for k, v in T.distances(x, x0).items()}
        parts = []
        for a in range(0, n, s.batch_size):
            b = min(a + s.batch_size, n)
            lg, new = T.step(T.slice(x, a, b), tgt[a:b], do_step)
            parts.append(lg)
            if do_step:
                T.assign(x, a, b, new)
        row = {"iteration": it, **_summary(np.concatenate(parts), tgt, s.n_splits), **dist}
        history.append(row)
        if bar is not None and do_step:
            bar.update(1)
            bar.set_postfix(IS=f"{row['is_mean']:.1f}")
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    final_uint8 = T.to_uint8(x)
    exact = _summary(T.concat_logits_exact(x), tgt, s.n_splits)
    # the images a user would publish: uint8, through the backbone's ordinary path
    quant_logits = net.logits(final_uint8)
    quant = _summary(quant_logits, tgt, s.n_splits)
    final = {
        "float_in_attack_precision": {
            k: history[-1][k]
            for k in ("is_mean", "is_std", "is_1split", "sg_nats", "mean_target_prob")
        },
        "float_exact_fp32": exact,
        "quantized_uint8": quant,
        "start": {
            k: history[0][k]
            for k in ("is_mean", "is_std", "is_1split", "sg_nats", "mean_target_prob")
        },
        "max_possible_is": net.num_classes,
        "linf_bound_network": s.iterations * float(np.max(np.asarray(_as_np(T.eps)))),
    }
    return AttackResult(
        history,
        start_uint8,
        final_uint8,
        tgt,
        final,
        seconds,
        {"images_per_second_iteration": n * max(int(s.iterations), 1) / max(seconds, 1e-9)},
    )


def _as_np(v):
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


__all__ = [
    "AttackSettings",
    "AttackResult",
    "NumpyAttackTarget",
    "run_attack",
    "cycling_targets",
    "fgsm_step_torch",
]
