"""The one interface every Inception network is run through.

``Backbone.logits(images)`` takes uint8 N x H x W x 3 and returns float32 N x C logits, where C
depends on the ``classes`` knob.  Every knob that can move an Inception Score is a constructor
argument with a documented default and appears in ``provenance()`` and in the cache key:

========== ==============================================================================
knob       meaning
========== ==============================================================================
weights    pretrained | file:<path> | random:<seed> | ported:<backbone>[:<weights>]
resize     native | tf1_bilinear | torch_bilinear (+ align_corners) | tf2_bilinear |
           antialias | pil_bicubic | none
bias       include the final layer's bias (None = the backbone's reference behaviour)
classes    all | first1000 | last1000 | imagenet1000 (the real ImageNet classes of the layout)
input_norm auto | minus_one_one | centered_128 | imagenet_mean_std | zero_one | zero_255
dtype      float32 | float64 (where the framework allows)
device     cpu | cuda
input_size network input resolution (299; smaller where the architecture allows, for tests)
batch_size images per forward pass (results do not depend on it)
========== ==============================================================================
"""

from __future__ import annotations

import numpy as np

from .. import imagenet
from .. import resize as rs
from ..errors import HarnessError
from ..provenance import package_versions
from .weights import WeightsSpec

CLASS_CHOICES = ("all", "first1000", "last1000", "imagenet1000")
NORMS = ("auto", "minus_one_one", "centered_128", "imagenet_mean_std", "zero_one", "zero_255")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
MIN_IMAGE_SIDE = 16


def preload_torch() -> None:
    """Import torch and torchvision if installed, before any TensorFlow import.

    torchvision (and the triton it initialises) imported *after* TensorFlow segfaults the
    process (exit 139; ../shared/environment-notes.md), so every TensorFlow import goes
    through :func:`import_tensorflow`, which calls this first.
    """
    import importlib.util

    for mod in ("torch", "torchvision"):
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)


def import_tensorflow():
    """Import TensorFlow with torch and torchvision loaded first: the other order segfaults."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    preload_torch()
    try:
        import tensorflow as tf
    except ImportError:
        raise HarnessError("this backbone needs TensorFlow: pip install -e '.[tf]'") from None
    return tf


def import_torch():
    try:
        import torch
    except ImportError:
        raise HarnessError("this backbone needs PyTorch: pip install -e '.[torch]'") from None
    return torch


def import_torchvision():
    import sys

    if "torchvision" not in sys.modules and "tensorflow" in sys.modules:
        raise HarnessError(
            "torchvision must be imported before TensorFlow in one process (the other order "
            "segfaults); import harness backbones before tensorflow, or load torchvision first")
    import_torch()
    try:
        import torchvision
    except ImportError:
        raise HarnessError("the torchvision backbone needs torchvision: pip install -e '.[torch]'") from None
    return torchvision


def check_images(images, min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    """uint8 N x H x W x 3, N >= 1, H and W >= min_side; one-line errors otherwise."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise HarnessError(
            f"backbone input must be uint8 images in [0, 255], got dtype {x.dtype}; convert floats "
            "with harness.data.to_uint8(x, value_range) (0_1, -1_1 or 0_255)")
    if x.ndim != 4:
        raise HarnessError(f"backbone input must be N x H x W x 3, got shape {x.shape}"
                           + ("; add a channel axis (grayscale? convert to RGB)" if x.ndim == 3 else ""))
    if x.shape[-1] != 3:
        raise HarnessError(f"backbone input must have 3 (RGB) channels last, got shape {x.shape}"
                           + ("; transpose N x 3 x H x W to N x H x W x 3" if x.shape[1] == 3 else ""))
    if x.shape[0] == 0:
        raise HarnessError("backbone input is an empty batch (0 images)")
    if min(x.shape[1], x.shape[2]) < min_side:
        raise HarnessError(f"images are {x.shape[1]}x{x.shape[2]}; the minimum side is {min_side} pixels")
    return x


class Backbone:
    """Base class; subclasses set the class attributes and implement ``_load``/``_forward``."""

    name = "base"
    framework = "none"
    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    default_norm = "minus_one_one"
    native_resize = ("tf2_bilinear", None)
    supports_float64 = True
    supports_cuda = False
    has_features = True
    has_gradients = False
    min_input_size = 75
    fixed_input_size: int | None = None

    def __init__(self, weights="pretrained", resize="native", align_corners=None, bias=None,
                 classes="all", input_norm="auto", dtype="float32", device="cpu", input_size=299,
                 batch_size=32, allow_download=False, weights_sha256=None):
        self.weights_spec = WeightsSpec.parse(weights)
        if resize == "native":
            self.resize_method, ac = self.native_resize
            self.align_corners = ac if align_corners is None else align_corners
            self.resize_requested = "native"
        else:
            rs.check_method(resize, align_corners)
            self.resize_method, self.align_corners = resize, align_corners
            if resize == "torch_bilinear" and align_corners is None:
                raise HarnessError("resize=torch_bilinear needs align_corners=true or false (it changes IS)")
            self.resize_requested = resize
        if classes not in CLASS_CHOICES:
            raise HarnessError(f"unknown classes {classes!r}; choose from {', '.join(CLASS_CHOICES)}")
        if input_norm not in NORMS:
            raise HarnessError(f"unknown input_norm {input_norm!r}; choose from {', '.join(NORMS)}")
        if dtype not in ("float32", "float64"):
            raise HarnessError(f"dtype must be float32 or float64, got {dtype!r}")
        if dtype == "float64" and not self.supports_float64:
            raise HarnessError(f"backbone {self.name} runs in float32 only (its weights/graph are float32)")
        if device not in ("cpu", "cuda"):
            raise HarnessError(f"device must be cpu or cuda, got {device!r}")
        if device == "cuda" and not self.supports_cuda:
            raise HarnessError(f"backbone {self.name} has no CUDA path in this harness; use device=cpu")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise HarnessError(f"batch_size must be a positive integer, got {batch_size!r}")
        input_size = int(input_size)
        if self.fixed_input_size is not None and input_size != self.fixed_input_size:
            raise HarnessError(f"backbone {self.name} takes {self.fixed_input_size}x{self.fixed_input_size} "
                               f"input only, got input_size={input_size}")
        if input_size < self.min_input_size:
            raise HarnessError(f"backbone {self.name} needs input_size >= {self.min_input_size}, got {input_size}")
        self.bias = self.default_bias if bias is None else bool(bias)
        self.classes = classes
        self.input_norm = self.default_norm if input_norm == "auto" else input_norm
        self.dtype = dtype
        self.device = device
        self.input_size = input_size
        self.batch_size = int(batch_size)
        self.allow_download = bool(allow_download)
        self.weights_sha256 = weights_sha256
        self.weights_info: dict = {}
        self._load()
        self._columns = self._class_columns()

    # ------------------------------------------------------------------ subclass interface
    def _load(self) -> None:
        raise NotImplementedError

    def _forward(self, images: np.ndarray, want_features: bool):
        """uint8 batch -> (raw logits N x raw_outputs, with or without bias per knob; pool or None)."""
        raise NotImplementedError

    def framework_versions(self) -> dict:
        return {}

    def extra_provenance(self) -> dict:
        return {}

    # ------------------------------------------------------------------ shared
    def _class_columns(self) -> np.ndarray:
        r = self.raw_outputs
        if self.classes == "all":
            return np.arange(r)
        if r < 1000:
            raise HarnessError(f"classes={self.classes} needs >= 1000 outputs; {self.name} has {r}")
        if self.classes == "first1000":
            return np.arange(1000)
        if self.classes == "last1000":
            return np.arange(r - 1000, r)
        return np.asarray(imagenet.meaningful_indices(self.class_layout))

    @property
    def num_classes(self) -> int:
        return int(len(self._columns))

    @property
    def class_names(self) -> list[str]:
        names = self._layout_names()
        return [names[i] for i in self._columns]

    def _layout_names(self) -> list[str]:
        return imagenet.class_names(self.class_layout)

    @property
    def random_weights(self) -> bool:
        return self.weights_spec.is_random

    def normalize_from_255(self):
        """(scale, offset) per channel such that net_input = x_0_255 * scale + offset."""
        n = self.input_norm
        if n == "minus_one_one":
            return np.full(3, 1 / 127.5), np.full(3, -1.0)
        if n == "centered_128":  # (x - 128) / 128, what the 2015 graph does inside
            return np.full(3, 1 / 128.0), np.full(3, -1.0)
        if n == "zero_one":
            return np.full(3, 1 / 255.0), np.zeros(3)
        if n == "zero_255":
            return np.ones(3), np.zeros(3)
        if n == "imagenet_mean_std":
            return 1 / (255.0 * IMAGENET_STD), -IMAGENET_MEAN / IMAGENET_STD
        raise HarnessError(f"input_norm {n} not supported by {self.name}")

    def forward(self, images, features: bool = False):
        """(logits float32 N x C, pool features float32 N x 2048 or None), batched."""
        x = check_images(images)
        if features and not self.has_features:
            raise HarnessError(f"backbone {self.name} exposes no pool features (only logits)")
        outs, feats = [], []
        for s in range(0, x.shape[0], self.batch_size):
            lg, pool = self._forward(x[s : s + self.batch_size], features)
            outs.append(np.asarray(lg)[:, self._columns].astype(np.float32))
            if features:
                feats.append(np.asarray(pool, dtype=np.float32))
        logits = np.concatenate(outs)
        if not np.isfinite(logits).all():
            raise HarnessError(f"backbone {self.name} produced NaN/inf logits; check the weights file")
        return logits, (np.concatenate(feats) if features else None)

    def logits(self, images) -> np.ndarray:
        return self.forward(images, features=False)[0]

    def features(self, images) -> np.ndarray:
        return self.forward(images, features=True)[1]

    def knobs(self) -> dict:
        """Every setting that changes the output (and so the cache key)."""
        return {
            "backbone": self.name,
            "weights": str(self.weights_spec),
            "resize": rs.describe(self.resize_method, self.align_corners),
            "resize_requested": self.resize_requested,
            "bias": self.bias,
            "classes": self.classes,
            "num_classes": self.num_classes,
            "input_norm": self.input_norm,
            "dtype": self.dtype,
            "device": self.device,
            "input_size": self.input_size,
            **self.extra_knobs(),
        }

    def extra_knobs(self) -> dict:
        return {}

    def provenance(self) -> dict:
        return {
            **self.knobs(),
            "framework": self.framework,
            "framework_versions": self.framework_versions(),
            "class_layout": self.class_layout,
            "raw_outputs": self.raw_outputs,
            "value_range": {"minus_one_one": "[-1, 1]", "centered_128": "(x - 128) / 128",
                            "zero_one": "[0, 1]", "zero_255": "[0, 255]",
                            "imagenet_mean_std": "(x/255 - ImageNet mean) / std"}[self.input_norm],
            "batch_size": self.batch_size,
            **self.weights_info,
            **self.extra_provenance(),
        }

    def cache_identity(self) -> dict:
        """What the logits depend on: knobs, weights hash, framework versions (not batch size)."""
        return {"knobs": self.knobs(), "weights_sha256": self.weights_info.get("weights_sha256"),
                "framework_versions": self.framework_versions(),
                "numpy": package_versions().get("numpy")}

    def __repr__(self) -> str:
        return f"<Backbone {self.name} weights={self.weights_spec} classes={self.num_classes}>"
