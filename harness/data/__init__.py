"""Image sources (config group ``dataset``): each yields uint8 N x H x W x 3 batches.

>>> from harness import data
>>> src = data.load("synthetic", count=20, n=8)
>>> len(src), next(src.batches(4)).shape
(8, (4, 32, 32, 3))

Common parameters: ``n`` (first n samples after ordering), ``order`` (``as_loaded`` or
``shuffled``) and ``order_seed``.  See each class for the rest.
"""

from __future__ import annotations

from ..errors import HarnessError
from .arrays import ArraySource
from .base import ImageSource, check_uint8_images, to_uint8
from .cifar10 import Cifar10Source
from .files import FolderSource, ImageNetValSource
from .generated import NoiseSource, SyntheticSource
from .generator import GeneratorSource

SOURCES = {
    "cifar10": Cifar10Source,
    "imagenet_val": ImageNetValSource,
    "noise": NoiseSource,
    "folder": FolderSource,
    "arrays": ArraySource,
    "generator": GeneratorSource,
    "synthetic": SyntheticSource,
}

__all__ = ["SOURCES", "ImageSource", "load", "from_config", "check_uint8_images", "to_uint8"]


def load(name: str, **params) -> ImageSource:
    """Construct the image source ``name`` with its parameters (one-line errors)."""
    if name not in SOURCES:
        raise HarnessError(f"unknown dataset '{name}'; valid datasets: {', '.join(SOURCES)}")
    import inspect

    cls = SOURCES[name]
    allowed = set()
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__:
            allowed |= set(inspect.signature(klass.__init__).parameters) - {"self", "kw", "kwargs"}
    if name == "generator":
        allowed.add("kwargs")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise HarnessError(
            f"dataset {name}: unknown parameter(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(allowed))}"
        )
    return cls(**params)


def from_config(cfg) -> ImageSource:
    """Build a source from a ``dataset`` config node (``name`` plus parameters; nulls dropped)."""
    from omegaconf import DictConfig, OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    name = d.pop("name", None)
    if name is None:
        raise HarnessError("dataset config needs a name (e.g. dataset=cifar10)")
    d = {k: v for k, v in d.items() if v is not None or k in ("n",)}
    return load(name, **d)
