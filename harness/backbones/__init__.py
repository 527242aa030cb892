"""Inception networks behind one interface (config group ``backbone``).

>>> from harness import backbones                                   # doctest: +SKIP
>>> net = backbones.load("torchvision", weights="random:0", input_size=75)  # doctest: +SKIP
>>> net.logits(images_uint8).shape                                  # doctest: +SKIP
(N, 1000)

Frameworks are imported only when a backbone is loaded (torch before TensorFlow).
"""

from __future__ import annotations

import importlib

from ..errors import HarnessError

# name -> (module, class): imported lazily so the core never needs a framework
REGISTRY = {
    "torchvision": ("harness.backbones.torchvision_iv3", "TorchvisionIV3"),
    "keras": ("harness.backbones.keras_iv3", "KerasIV3"),
    "tfhub": ("harness.backbones.tfhub_iv3", "TFHubIV3"),
    "tf2015": ("harness.backbones.tf2015_graph", "TF2015Graph"),
}


def backbone_class(name: str):
    if name not in REGISTRY:
        raise HarnessError(f"unknown backbone '{name}'; valid backbones: {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[name]
    return getattr(importlib.import_module(mod), cls)


def load(name: str, weights="pretrained", **knobs):
    """Load backbone ``name`` with ``weights`` and knobs (see :mod:`harness.backbones.base`)."""
    cls = backbone_class(name)
    try:
        return cls(weights=weights, **knobs)
    except TypeError as exc:  # an unknown knob
        raise HarnessError(f"backbone {name}: {exc}") from None


def from_config(cfg, **overrides):
    """Build a backbone from a ``backbone`` config node (``name`` plus knobs; nulls mean default)."""
    from omegaconf import DictConfig, OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    d.update(overrides)
    name = d.pop("name", None)
    if name is None:
        raise HarnessError("backbone config needs a name (e.g. backbone=torchvision)")
    keep_none = {"bias", "align_corners", "weights_sha256"}
    d = {k: v for k, v in d.items() if v is not None or k in keep_none}
    return load(name, **d)
