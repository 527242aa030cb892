"""Inception networks behind one interface (config group ``backbone``).

>>> from harness import backbones                                   # doctest: +SKIP
>>> net = backbones.load_backbone("torchvision", weights="random:0", input_size=75) # doctest: +SKIP
>>> net.logits(images_uint8).shape                                  # doctest: +SKIP
(N, 1000)

Frameworks are imported only when a backbone is loaded (torch before TensorFlow).

Adding a backbone (nothing outside this package needs to change):

1. a module here with a subclass of :class:`harness.backbones.base.Backbone` that implements the
   contract in that module's docstring (``_load``, ``_forward``, ``official_artifact``, and
   optionally ``read_state``, ``attack_target`` and extra knobs in ``_settings``);
2. one line in :data:`REGISTRY` below (or :func:`register` at run time, as the tests do);
3. ``python -m harness.conf_gen`` writes ``conf/backbone/<name>.yaml`` from its settings.

Every experiment then accepts it (``backbone=<name>``, ``+backbone@backbones.<key>=<name>``).
"""

from __future__ import annotations

import importlib

from .. import settings as S
from ..errors import HarnessError

# name -> (module, class): imported lazily so the core never needs a framework
REGISTRY = {
    "torchvision": ("harness.backbones.torchvision_iv3", "TorchvisionIV3"),
    "tf2015_torch": ("harness.backbones.tf2015_torch", "TF2015Torch"),
    "keras": ("harness.backbones.keras_iv3", "KerasIV3"),
    "tfhub": ("harness.backbones.tfhub_iv3", "TFHubIV3"),
    "tf2015": ("harness.backbones.tf2015_graph", "TF2015Graph"),
    "torch_model": ("harness.backbones.torch_model", "TorchModel"),
    "keras_model": ("harness.backbones.keras_model", "KerasModel"),
    "pixels": ("harness.backbones.pixels", "Pixels"),
    "dinov2": ("harness.backbones.dinov2", "DINOv2"),
    "clip": ("harness.backbones.clip", "CLIP"),
}


_DIGITS = {
    "input_size": 8,
    "channels": 1,
    "input_norm": "zero_one",
    "resize": "none",
    "class_names": [str(i) for i in range(10)],
    "label_space": "digits10",
}
#: config-group options that are a backbone with settings filled in (YAML: defaults + values):
#: the digits classifiers trained here (``+experiment=train_classifier``; trained on first use)
PRESETS = {
    "digits_torch": (
        "torch_model",
        {
            "weights": "trained:digits_cnn/torch/0",
            "builder": "harness.digits_cnn:build_torch",
            **_DIGITS,
            "title": "digits classifier (trained here, PyTorch, seed 0), not Inception V3",
        },
        "The digits CNN trained here in PyTorch (seed 0): a real classifier of sklearn's digits.",
    ),
    "digits_torch_s1": (
        "torch_model",
        {
            "weights": "trained:digits_cnn/torch/1",
            "builder": "harness.digits_cnn:build_torch",
            **_DIGITS,
            "title": "digits classifier (trained here, PyTorch, seed 1), not Inception V3",
        },
        "The digits CNN trained here in PyTorch with another seed (other init, batch order).",
    ),
    "digits_keras": (
        "keras_model",
        {
            "weights": "trained:digits_cnn/keras/0",
            **_DIGITS,
            "title": "digits classifier (trained here, Keras, seed 0), not Inception V3",
        },
        "The digits CNN trained here in Keras from the PyTorch run's initial weights and batches.",
    ),
}


def register(name: str, module: str, cls: str) -> None:
    """Add a backbone to the registry (the one line of the recipe above, at run time)."""
    REGISTRY[name] = (module, cls)


def backbone_class(name: str):
    if name not in REGISTRY:
        raise HarnessError(f"unknown backbone '{name}'; valid backbones: {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[name]
    return getattr(importlib.import_module(mod), cls)


def load_backbone(name: str, **settings):
    r"""Backbone ``name`` with ``settings`` (its :meth:`~base.Backbone.settings`: weights, resize,
    ...); unset ones take their defaults, wrong ones are one-line ``ConfigError`` lines.

    ``cache_dir``: where derived weights are kept (random ``weights="random:<seed>"``, ~100 MB
    per network, and ported ones, under ``<cache_dir>/weights/``); default
    ``$INCEPTION_NOTE_CACHE``, else ``~/.cache/inception-note``; ``":memory:"``: nothing on disk.
    Pretrained weights are read where their ecosystem keeps them, never copied.
    ``net.forward(images, features=True)`` gives logits and pool features in one pass."""
    return S.build(BACKBONES, name, settings)


def from_config(cfg, **overrides):
    """A backbone from a ``backbone`` config node (``name`` plus settings), ``overrides`` on
    top."""
    return S.build(BACKBONES, None, {**S.node_values(cfg), **overrides})


#: the backbones as a :class:`~harness.settings.Registry` (:func:`harness.settings.build`)
BACKBONES = S.Registry("backbone", backbone_class, "backbone=torchvision")


S.register_group("backbone", lambda name: backbone_class(name).settings(), lambda: list(REGISTRY))


#: library names renamed in issue 28: the old name is an error naming the new one
RENAMED = {"load": "harness.backbones.load_backbone"}


def __getattr__(name: str):
    if name in RENAMED:
        raise AttributeError(f"{__name__}.{name} was renamed: use {RENAMED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
