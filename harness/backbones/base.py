"""The contract of an Inception network: everything other modules may ask of a backbone.

``Backbone.logits(images)`` takes uint8 N x H x W x 3 and returns float32 N x C logits, where C
depends on the ``classes`` knob.  Every knob that can move a score is a constructor argument,
appears in ``provenance()`` and is part of the cache key (``cache_identity()``):

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

What a subclass provides (and nothing outside ``harness/backbones`` looks inside it):

* class attributes: ``name``, ``framework``, ``class_layout``/``raw_outputs`` (its classifier's
  ImageNet layout), ``default_bias``, ``default_norm``, ``native_resize``, capability flags,
  ``port_sources`` (whose weights it can run via ``ported:``);
* :meth:`official_artifact`: what ``weights=pretrained`` means and where it is found;
* :meth:`read_state` (classmethod): a weights file of its own format as the canonical
  torchvision-layout state dict, so other backbones can run its weights;
* :meth:`_load`: build the network from :class:`~harness.backbones.weights.ResolvedWeights`
  (a file of its format, or a canonical state for ``random:``/``ported:``);
* :meth:`_forward`: uint8 batch -> raw logits (bias per knob) and pool features;
* :meth:`attack_target`: its gradient path for :mod:`harness.attack` (optional);
* :meth:`framework_versions`, :meth:`extra_knobs`, :meth:`extra_provenance`.

The base class turns a weights spec into resolved weights once for every backbone, maps outputs
to ImageNet-1k (top-1), selects classes, checks inputs and outputs, and writes provenance.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

import numpy as np

from .. import imagenet, porting
from .. import resize as rs
from .. import settings as S
from ..errors import ConfigError, HarnessError
from ..provenance import package_versions
from . import weights as W

CLASS_CHOICES = ("all", "first1000", "last1000", "imagenet1000")
NORMS = ("auto", "minus_one_one", "centered_128", "imagenet_mean_std", "zero_one", "zero_255")
NORM_LABELS = {
    "minus_one_one": "[-1, 1]",
    "centered_128": "(x - 128) / 128",
    "zero_one": "[0, 1]",
    "zero_255": "[0, 255]",
    "imagenet_mean_std": "(x/255 - ImageNet mean) / std",
}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
MIN_IMAGE_SIDE = 16


def preload_torch() -> None:
    """Import torch and torchvision if installed, before any TensorFlow import.

    torchvision (and the triton it initialises) imported *after* TensorFlow segfaults the
    process (exit 139), so every TensorFlow import goes through :func:`import_tensorflow`,
    which calls this first.
    """
    for mod in ("torch", "torchvision"):
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True):
    """Send file descriptor 2 to /dev/null for a block (C++ libraries that log before their
    log level is read, like TensorFlow's absl lines at import).  Python errors still raise."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow():
    """Import TensorFlow with torch and torchvision loaded first: the other order segfaults.

    Unless ``verbose=true`` (``TF_CPP_MIN_LOG_LEVEL`` below 3), TensorFlow's C++ log lines
    (oneDNN, cuInit, CUDA drivers, MLIR) are silenced.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    preload_torch()
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3" and "tensorflow" not in sys.modules
    try:
        with quiet_stderr(quiet):
            import tensorflow as tf

            if quiet:
                tf.get_logger().setLevel("ERROR")
                tf.config.list_logical_devices()  # device discovery logs here, once
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
    if "torchvision" not in sys.modules and "tensorflow" in sys.modules:
        raise HarnessError(
            "torchvision must be imported before TensorFlow in one process (the other order "
            "segfaults); import harness backbones before tensorflow, or load torchvision first"
        )
    import_torch()
    try:
        import torchvision
    except ImportError:
        raise HarnessError(
            "the torchvision backbone needs torchvision: pip install -e '.[torch]'"
        ) from None
    return torchvision


def _check_sha256(value: str, path: str) -> None:
    v = value.lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise ConfigError(f"{path} must be a full sha256 (64 hex digits), got {value!r}")


def check_images(images, min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    """uint8 N x H x W x 3, N >= 1, H and W >= min_side; one-line errors otherwise."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise HarnessError(
            f"backbone input must be uint8 images in [0, 255], got dtype {x.dtype}; convert "
            "floats with harness.data.to_uint8(x, value_range) (0_1, -1_1 or 0_255)"
        )
    if x.ndim != 4:
        raise HarnessError(
            f"backbone input must be N x H x W x 3, got shape {x.shape}"
            + ("; add a channel axis (grayscale? convert to RGB)" if x.ndim == 3 else "")
        )
    if x.shape[-1] != 3:
        raise HarnessError(
            f"backbone input must have 3 (RGB) channels last, got shape {x.shape}"
            + ("; transpose N x 3 x H x W to N x H x W x 3" if x.shape[1] == 3 else "")
        )
    if x.shape[0] == 0:
        raise HarnessError("backbone input is an empty batch (0 images)")
    if min(x.shape[1], x.shape[2]) < min_side:
        raise HarnessError(
            f"images are {x.shape[1]}x{x.shape[2]}; the minimum side is {min_side} pixels"
        )
    return x


class Backbone:
    """Base class of every backbone; see the module docstring for the contract."""

    name = "base"
    #: what a reader calls this network's pretrained weights (reporting lines); default: name
    weights_title: str | None = None
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
    #: images per forward pass when ``batch_size`` is not given (results do not depend on it)
    default_batch_size = 32
    #: the network's column in Barratt & Sharma's Table 1 (None: not in the paper)
    paper_label: str | None = None
    #: backbones whose weights this one can run (``weights=ported:<name>``)
    port_sources: tuple = ()
    #: True: ported weights keep their classifier layout (1000 or 1008 outputs); False: they are
    #: mapped to this backbone's own ``class_layout``
    ported_keeps_layout = True

    # ------------------------------------------------------------------ settings
    @classmethod
    def settings(cls) -> S.Schema:
        """Every knob of this backbone: type, range, default, documentation, when it applies.

        The YAML ``conf/backbone/<name>.yaml`` is generated from it; subclasses extend it
        (:meth:`Schema.extend`) or change one entry (:meth:`Schema.with_changes`).
        """
        cached = cls.__dict__.get("_settings_cache")
        if cached is None:
            cached = cls._settings()
            cls._settings_cache = cached
        return cached

    @classmethod
    def _settings(cls) -> S.Schema:
        native, native_ac = cls.native_resize
        fixed = cls.fixed_input_size
        return S.Schema(
            [
                S.Setting("name", S.Str(), cls.name, cls.summary),
                S.Setting(
                    "weights",
                    S.Str(what="a weights spec", form=cls._check_weights_spec),
                    "pretrained",
                    cls.weights_doc,
                ),
                S.Setting(
                    "weights_sha256",
                    S.Str(what="a sha256 (64 hex digits)", form=_check_sha256),
                    None,
                    "require this sha256 of the weights file",
                    nullable=True,
                    applies=S.When(
                        "weights",
                        fn=lambda v: (
                            W.WeightsSpec.parse(v["weights"]).kind in ("pretrained", "file")
                        ),
                        text="weights=pretrained or file:<path> (random and ported weights are "
                        "identified by the sha256 of their arrays, recorded in every row)",
                    ),
                ),
                S.Setting(
                    "allow_download",
                    S.Bool(),
                    False,
                    cls.download_doc,
                    applies=S.When(
                        "weights",
                        fn=lambda v: (
                            W.WeightsSpec.parse(v["weights"]).kind in ("pretrained", "ported")
                        ),
                        text="weights=pretrained or ported:...",
                    ),
                ),
                S.Setting(
                    "resize",
                    S.Choice(("native", *rs.METHODS)),
                    "native",
                    f"native = {rs.describe(native, native_ac)}"
                    + (f" ({cls.native_resize_doc})" if cls.native_resize_doc else "")
                    + " | "
                    + " | ".join(rs.METHODS),
                ),
                S.Setting(
                    "align_corners",
                    S.Bool(),
                    None,
                    "with resize=torch_bilinear: true | false"
                    + (f" (native: {native_ac})" if native == "torch_bilinear" else ""),
                    nullable=True,
                    applies=S.When(
                        "resize",
                        fn=lambda v: (
                            v["resize"] == "torch_bilinear"
                            or (v["resize"] == "native" and native == "torch_bilinear")
                        ),
                        text="resize=torch_bilinear"
                        + (" (or native)" if native == "torch_bilinear" else ""),
                    ),
                    required_when=S.When("resize", is_in=("torch_bilinear",)),
                ),
                S.Setting("bias", S.Bool(), None, cls.bias_doc, nullable=True),
                S.Setting("classes", S.Choice(CLASS_CHOICES), "all", cls.classes_doc),
                S.Setting("input_norm", S.Choice(NORMS), "auto", cls.norm_doc),
                S.Setting(
                    "dtype",
                    S.Choice(("float32", "float64")),
                    "float32",
                    "float32 | float64" if cls.supports_float64 else "float32 only",
                ),
                S.Setting(
                    "device",
                    S.Choice(("cpu", "cuda")),
                    "cpu",
                    "the run's device (cpu | cuda)"
                    + ("" if cls.supports_cuda else "; no CUDA path: set cpu here"),
                    yaml="${device}",
                ),
                S.Setting(
                    "input_size",
                    S.Fixed(fixed, f"{cls.name} takes {fixed}x{fixed} input only")
                    if fixed
                    else S.Int(lo=cls.min_input_size),
                    fixed or 299,
                    "fixed by the network" if fixed else f"network input (>= {cls.min_input_size})",
                ),
                S.Setting(
                    "batch_size",
                    S.Int(lo=1),
                    cls.default_batch_size,
                    "images per forward pass (results do not depend on it)",
                ),
                S.Setting(
                    "cache_dir",
                    S.Path(),
                    None,
                    "where random and ported weights are kept (the run passes cache.dir)",
                    nullable=True,
                    in_yaml=False,
                ),
            ],
            checks=[cls._check_capabilities],
        )

    #: the first comment line of the generated YAML, and documentation of some knobs
    summary = ""
    weights_doc = "pretrained | file:<path> | random:<seed> | ported:<backbone>[:<weights>]"
    download_doc = "fetch the official file when missing (needs network)"
    native_resize_doc = ""
    bias_doc = "null = the reference behaviour"
    classes_doc = "all | first1000 | last1000 | imagenet1000"
    norm_doc = "auto = the network's own input range"

    @classmethod
    def _check_weights_spec(cls, value, path: str) -> None:
        try:
            spec = W.WeightsSpec.parse(value)
        except HarnessError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if spec.kind == "random" and not 0 <= spec.seed <= S.SEED_MAX:
            raise ConfigError(
                f"{path}={value}: the seed must be from 0 to {S.SEED_MAX}, e.g. random:0"
            )
        if spec.kind == "ported" and spec.source_backbone not in cls.port_sources:
            valid = ", ".join(cls.port_sources) or "none"
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} runs ported weights of {valid} only"
            )
        if spec.kind == "ported":
            from . import backbone_class

            backbone_class(spec.source_backbone)._check_weights_spec(spec.source_spec, path)

    @classmethod
    def _check_capabilities(cls, values: dict, prefix: str) -> None:
        # device=cuda without a CUDA path is refused when the backbone is built, not here: a
        # run-wide device=cuda reaches every node (e.g. sanity's other_backbones), also those an
        # experiment does not build in this configuration
        if values.get("dtype") == "float64" and not cls.supports_float64:
            raise ConfigError(
                f"{prefix}dtype=float64: backbone {cls.name} runs in float32 only (its "
                "weights/graph are float32)"
            )

    def __init__(
        self,
        *,
        weights,
        resize,
        align_corners,
        bias,
        classes,
        input_norm,
        dtype,
        device,
        input_size,
        batch_size,
        allow_download,
        weights_sha256,
        cache_dir,
    ):
        """Takes every setting of :meth:`settings` (use :func:`harness.backbones.load`, which
        checks them and fills the defaults)."""
        if device == "cuda" and not self.supports_cuda:
            raise ConfigError(
                f"device=cuda: backbone {self.name} has no CUDA path in this harness; set its "
                "device to cpu (e.g. backbone.device=cpu)"
            )
        self.weights_spec = W.WeightsSpec.parse(weights)
        if resize == "native":
            self.resize_method, ac = self.native_resize
            self.align_corners = ac if align_corners is None else align_corners
        else:
            self.resize_method, self.align_corners = resize, align_corners
        self.resize_requested = resize
        self.bias = self.default_bias if bias is None else bias
        self.classes = classes
        self.input_norm = self.default_norm if input_norm == "auto" else input_norm
        self.dtype = dtype
        self.device = device
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.allow_download = allow_download
        self.weights_sha256 = weights_sha256
        self.cache_dir = cache_dir
        resolved = self.resolve_weights(self.weights_spec)
        self.weights_info: dict = dict(resolved.record)
        self._load(resolved)
        self._columns = self._class_columns()

    # ------------------------------------------------------------------ subclass contract
    @classmethod
    def official_artifact(cls, **knobs) -> W.OfficialArtifact | None:
        """What ``weights=pretrained`` loads (None: no official weights)."""
        return None

    @classmethod
    def read_state(cls, path) -> dict:
        """A weights file of this backbone's format as a canonical (torchvision-layout) state."""
        raise HarnessError(f"weights of backbone {cls.name} cannot be ported to other backbones")

    def _load(self, weights: W.ResolvedWeights) -> None:
        """Build the network: from ``weights.path`` (own format) or ``weights.state``."""
        raise NotImplementedError

    def _forward(self, images: np.ndarray, want_features: bool):
        """uint8 batch -> (raw logits N x raw_outputs, bias per knob; pool features or None)."""
        raise NotImplementedError

    def framework_versions(self) -> dict:
        return {}

    def extra_knobs(self) -> dict:
        return {}

    def extra_provenance(self) -> dict:
        return {}

    def attack_target(self, settings):
        """This backbone's gradient path for :func:`harness.attack.run_attack`."""
        raise HarnessError(f"backbone {self.name} has no gradient path for the attack")

    # ------------------------------------------------------------------ weights
    def resolve_weights(self, spec: W.WeightsSpec) -> W.ResolvedWeights:
        """The one place a weights spec becomes a file or a canonical state."""
        if spec.kind in ("pretrained", "file"):
            art = (
                self.official_artifact(**self._artifact_knobs())
                if spec.kind == "pretrained"
                else None
            )
            return W.locate_file(self.name, spec, art, self.allow_download, self.weights_sha256)
        if spec.kind == "random":
            return W.random_weights(spec, self.raw_outputs, self.cache_dir)
        sd, record = porting.ported_state(spec, self, self.allow_download, self.cache_dir)
        return W.ResolvedWeights(spec, state=sd, record=record)

    def _artifact_knobs(self) -> dict:
        return {}

    def adopt_layout(self, n_outputs: int) -> None:
        """Ported weights with another classifier layout (1000 <-> 1008) keep it."""
        self.raw_outputs = int(n_outputs)
        self.class_layout = imagenet.layout_of_outputs(n_outputs)

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
    def paper_column(self) -> str | None:
        """The paper's label for this network, unless it runs another network's weights."""
        return None if self.weights_spec.kind == "ported" else self.paper_label

    @property
    def random_weights(self) -> bool:
        return self.weights_spec.is_random

    def imagenet_predictions(self, logits: np.ndarray) -> np.ndarray:
        """Predicted ImageNet-1k class (sorted-wnid index 0..999) of each row of ``logits``."""
        full = np.full((logits.shape[0], self.raw_outputs), -np.inf)
        full[:, self._columns] = logits
        real = imagenet.meaningful_indices(self.class_layout)
        raw = np.asarray(real)[full[:, real].argmax(1)]
        return imagenet.sorted_index_of_outputs(self.class_layout, raw)

    def top1_accuracy(self, logits: np.ndarray, labels) -> float | None:
        """Top-1 accuracy against sorted-wnid labels 0..999 (None without labels)."""
        if labels is None:
            return None
        return float((self.imagenet_predictions(logits) == np.asarray(labels)).mean())

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

    def _check_outputs(self, logits: np.ndarray, pool) -> None:
        if not np.isfinite(logits).all():
            raise HarnessError(
                f"backbone {self.name} produced NaN/inf logits; check the weights file"
            )
        if pool is not None and not np.isfinite(pool).all():
            raise HarnessError(
                f"backbone {self.name} produced NaN/inf pool features; check the weights file"
            )

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
        pool = np.concatenate(feats) if features else None
        self._check_outputs(logits, pool)
        return logits, pool

    def logits(self, images) -> np.ndarray:
        return self.forward(images, features=False)[0]

    def features(self, images) -> np.ndarray:
        return self.forward(images, features=True)[1]

    def knobs(self) -> dict:
        """Every setting that changes the output (the effective resize, not its request)."""
        return {
            "backbone": self.name,
            "weights": str(self.weights_spec),
            "resize": rs.describe(self.resize_method, self.align_corners),
            "bias": self.bias,
            "classes": self.classes,
            "num_classes": self.num_classes,
            "input_norm": self.input_norm,
            "dtype": self.dtype,
            "device": self.device,
            "input_size": self.input_size,
            **self.extra_knobs(),
        }

    def provenance(self) -> dict:
        return {
            **self.knobs(),
            "resize_requested": self.resize_requested,
            "framework": self.framework,
            "framework_versions": self.framework_versions(),
            "class_layout": self.class_layout,
            "raw_outputs": self.raw_outputs,
            "weights_title": self.weights_title or self.name,
            "value_range": NORM_LABELS[self.input_norm],
            "batch_size": self.batch_size,
            **self.weights_info,
            **self.extra_provenance(),
        }

    def cache_identity(self) -> dict:
        """What the logits depend on: knobs, weights hash, framework versions (not batch size,
        not how the resize was asked for: ``native`` and its explicit name share a key)."""
        knobs = {**self.knobs(), "resize": rs.canonical(self.resize_method, self.align_corners)}
        return {
            "knobs": knobs,
            "weights_sha256": self.weights_info.get("weights_sha256"),
            "framework_versions": self.framework_versions(),
            "numpy": package_versions().get("numpy"),
        }

    def describe(self) -> str:
        """One line for progress bars and messages."""
        resize = rs.describe(self.resize_method, self.align_corners)
        return f"{self.name} ({self.weights_spec}, {resize})"

    def __repr__(self) -> str:
        return f"<Backbone {self.name} weights={self.weights_spec} classes={self.num_classes}>"
