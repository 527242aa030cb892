"""From a network and an image source to cached logits, probabilities and pool features."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import scores
from .cache import LogitsCache
from .config import as_bool


def cache_from_config(cfg) -> LogitsCache:
    c = cfg.get("cache") or {}
    root = c.get("dir")
    return LogitsCache(
        None if root is None else f"{root}/logits",
        chunk_size=int(c.get("chunk_size", 1024)),
        enabled=as_bool(c.get("enabled", True), "cache.enabled"),
    )


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
            self.net.require_logits()
            self._probs = scores.softmax(self.logits.astype(np.float64))
        return self._probs


def outputs(cfg, net, source, features: bool = False, label: str = "") -> Outputs:
    """Logits (and pool features) of ``source`` under ``net``, through the run's logits cache.

    ``label`` names the step in the progress bar (e.g. the sanity check it belongs to).
    """
    res = cache_from_config(cfg).get(
        net,
        source,
        features=features,
        progress=as_bool(cfg.get("progress", True), "progress"),
        label=label,
    )
    return Outputs(net, source, res.logits, res.pool, res.from_cache, res.key)


def paper_dataset(src) -> str | None:
    """Which of the paper's datasets these images really are (not what the config calls them)."""
    return src.paper_dataset()
