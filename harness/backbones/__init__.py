"""Inception networks behind one interface (config group ``backbone``).

>>> from harness import backbones                                   # doctest: +SKIP
>>> net = backbones.load("torchvision", weights="random:0", input_size=75)  # doctest: +SKIP
>>> net.logits(images_uint8).shape                                  # doctest: +SKIP
(N, 1000)

Frameworks are imported only when a backbone is loaded (torch before TensorFlow).

Adding a backbone (nothing outside this package needs to change):

1. a module here with a subclass of :class:`harness.backbones.base.Backbone` that implements the
   contract in that module's docstring (``_load``, ``_forward``, ``official_artifact``, and
   optionally ``read_state`` and ``attack_target``);
2. ``conf/backbone/<name>.yaml`` with ``name: <name>`` and its knobs (defaults live there);
3. one line in :data:`REGISTRY` below (or :func:`register` at run time, as the tests do).

Every experiment then accepts it (``backbone=<name>``, ``+backbone@backbones.<key>=<name>``).
"""

from __future__ import annotations

import importlib
import inspect

from ..errors import HarnessError

# name -> (module, class): imported lazily so the core never needs a framework
REGISTRY = {
    "torchvision": ("harness.backbones.torchvision_iv3", "TorchvisionIV3"),
    "tf2015_torch": ("harness.backbones.tf2015_torch", "TF2015Torch"),
    "keras": ("harness.backbones.keras_iv3", "KerasIV3"),
    "tfhub": ("harness.backbones.tfhub_iv3", "TFHubIV3"),
    "tf2015": ("harness.backbones.tf2015_graph", "TF2015Graph"),
}


def register(name: str, module: str, cls: str) -> None:
    """Add a backbone to the registry (the one line of the recipe above, at run time)."""
    REGISTRY[name] = (module, cls)


def backbone_class(name: str):
    if name not in REGISTRY:
        raise HarnessError(f"unknown backbone '{name}'; valid backbones: {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[name]
    return getattr(importlib.import_module(mod), cls)


def _accepted(cls) -> set:
    names = set()
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__:
            names |= set(inspect.signature(klass.__init__).parameters) - {"self", "kw", "kwargs"}
    return names


def load(name: str, weights="pretrained", **knobs):
    """Load backbone ``name`` with ``weights`` and knobs (see :mod:`harness.backbones.base`)."""
    cls = backbone_class(name)
    unknown = sorted(set(knobs) - _accepted(cls))
    if unknown:
        raise HarnessError(
            f"backbone {name}: unknown knob(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(_accepted(cls)))}"
        )
    return cls(weights=weights, **knobs)


def from_config(cfg, **overrides):
    """A backbone from a ``backbone`` config node (``name`` plus knobs; nulls mean default)."""
    from omegaconf import DictConfig, OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    d.update(overrides)
    name = d.pop("name", None)
    if name is None:
        raise HarnessError("backbone config needs a name (e.g. backbone=torchvision)")
    return load(name, **{k: v for k, v in d.items() if v is not None or k in KEEP_NULL})


#: knobs whose null is meaningful (the backbone's reference behaviour), passed on as None
KEEP_NULL = frozenset({"bias", "align_corners", "weights_sha256", "cache_dir"})
