"""Image sources (config group ``dataset``): each yields uint8 N x H x W x 3 batches.

>>> from harness import data
>>> src = data.load_source("synthetic", count=20, n=8)
>>> len(src), next(src.batches(4)).shape
(8, (4, 32, 32, 3))

Common parameters: ``n`` (first n samples after ordering), ``order`` (``as_loaded`` or
``shuffled``) and ``order_seed``.  See each class for the rest.
"""

from __future__ import annotations

from .. import settings as S
from ..errors import HarnessError
from .arrays import ArraySource
from .base import ImageSource, check_uint8_images, to_uint8
from .cifar10 import Cifar10Source
from .digits import DigitsSource, PhotoTilesSource
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
    "digits": DigitsSource,
    "photo_tiles": PhotoTilesSource,
}

__all__ = ["SOURCES", "ImageSource", "load_source", "from_config", "check_uint8_images", "to_uint8"]


#: config-group options that are a source with some settings changed (YAML: defaults + values)
PRESETS = {
    "cifar10_test": (
        "cifar10",
        {"split": "test"},
        "CIFAR-10 test split (10,000 images): held-out images for the memorization experiment.",
    ),
}


def source_class(name: str):
    if name not in SOURCES:
        raise HarnessError(f"unknown dataset '{name}'; valid datasets: {', '.join(SOURCES)}")
    return SOURCES[name]


def load_source(name: str, **params) -> ImageSource:
    """The image source ``name`` with ``params`` (its ``settings()``; unset ones take their
    defaults, wrong ones are one-line ``ConfigError`` lines).

    ``cache_dir`` (the sources that derive files: ``arrays`` extracts a compressed ``.npz``
    member to ``<cache_dir>/npz/``): default ``$INCEPTION_NOTE_CACHE``, else
    ``~/.cache/inception-note``; ``":memory:"``: a temporary file, nothing cached.  The others
    write nothing (``cifar10`` downloads only with ``download=true``, into ``root``)."""
    return S.build(SOURCE_REGISTRY, name, params)


def from_config(cfg, **overrides) -> ImageSource:
    """An image source from a ``dataset`` config node (``name`` plus parameters), ``overrides``
    on top."""
    return S.build(SOURCE_REGISTRY, None, {**S.node_values(cfg), **overrides})


#: the image sources as a :class:`~harness.settings.Registry` (:func:`harness.settings.build`)
SOURCE_REGISTRY = S.Registry("dataset", source_class, "dataset=cifar10")


S.register_group("dataset", lambda name: source_class(name).settings(), lambda: list(SOURCES))


#: library names renamed in issue 28: the old name is an error naming the new one
RENAMED = {"load": "harness.data.load_source"}


def __getattr__(name: str):
    if name in RENAMED:
        raise AttributeError(f"{__name__}.{name} was renamed: use {RENAMED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
