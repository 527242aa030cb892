"""From configs to cached logits and probabilities: what experiments share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import data, scores
from .cache import LogitsCache
from .errors import HarnessError, MissingInputError


def cache_from_config(cfg) -> LogitsCache:
    c = cfg.get("cache") or {}
    return LogitsCache(c.get("dir"), chunk_size=int(c.get("chunk_size", 1024)), enabled=bool(c.get("enabled", True)))


@dataclass
class Outputs:
    """Logits (float32), probabilities (float64) and pool features for one (backbone, images)."""

    net: object
    source: object
    logits: np.ndarray
    pool: np.ndarray | None
    from_cache: bool
    key: str
    _probs: np.ndarray | None = field(default=None, repr=False)

    @property
    def probs(self) -> np.ndarray:
        if self._probs is None:
            self._probs = scores.softmax(self.logits.astype(np.float64))
        return self._probs

    def labels(self):
        return self.source.labels


def outputs(cfg, net, source, features: bool = False) -> Outputs:
    res = cache_from_config(cfg).get(net, source, features=features, progress=bool(cfg.get("progress", True)))
    return Outputs(net, source, res.logits, res.pool, res.from_cache, res.key)


def backbone_specs(cfg, names=None) -> dict:
    """``cfg.backbones`` (name -> config) with a global ``weights`` override applied."""
    from omegaconf import OmegaConf

    specs = {}
    allb = cfg.get("backbones") or {}
    for name in names or list(allb):
        if name not in allb:
            raise HarnessError(f"unknown backbone '{name}' in this experiment; configured: {', '.join(allb)}")
        d = OmegaConf.to_container(allb[name], resolve=True)
        if cfg.get("weights"):
            d["weights"] = cfg.weights
        specs[name] = d
    return specs


def load_sources(cfg, names=None) -> dict:
    """``cfg.datasets`` (key -> dataset config) built into sources; missing ones collected."""
    from omegaconf import OmegaConf

    out, missing = {}, []
    alld = cfg.get("datasets") or {}
    for key in names or list(alld):
        try:
            out[key] = data.from_config(OmegaConf.to_container(alld[key], resolve=True))
        except MissingInputError as exc:
            missing.append(f"[{key}] {exc}")
    if missing:
        raise MissingInputError(f"{len(missing)} dataset(s) missing, nothing was computed: " + " | ".join(missing))
    return out


def preflight(cfg, backbone_names=None, dataset_names=None):
    """Load every backbone and dataset first; report *all* missing inputs in one message."""
    from .rows import load_backbones

    msgs, nets, sources = [], {}, {}
    try:
        nets = load_backbones(backbone_specs(cfg, backbone_names), device=cfg.get("device"))
    except MissingInputError as exc:
        msgs.append(str(exc))
    try:
        sources = load_sources(cfg, dataset_names)
    except MissingInputError as exc:
        msgs.append(str(exc))
    if msgs:
        raise MissingInputError(" || ".join(msgs))
    return nets, sources


def top1_accuracy(net, logits: np.ndarray, labels) -> float | None:
    """Top-1 accuracy against sorted-wnid labels 0..999, mapping each layout's indices."""
    if labels is None:
        return None
    from . import imagenet

    full = np.full((logits.shape[0], net.raw_outputs), -np.inf)
    full[:, net._columns] = logits
    if net.class_layout == "imagenet1000":
        pred = full.argmax(1)
    elif net.class_layout == "tfhub1001":
        pred = full[:, 1:1001].argmax(1)
    else:  # 2015 graph: output index = devkit id
        dev = imagenet.devkit_id_to_index()
        sub = full[:, 1:1001]
        pred = np.array([dev[i + 1] for i in sub.argmax(1)])
    return float((pred == np.asarray(labels)).mean())


def paper_dataset(src) -> str | None:
    """Which of the paper's datasets these images really are (not what the config calls them)."""
    if src.kind == "cifar10":
        return f"cifar10_{src.split}"
    if src.kind in ("imagenet_val", "noise"):
        return src.kind
    return None
