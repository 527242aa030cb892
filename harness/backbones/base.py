"""The contract of a backbone: everything other modules may ask of a network.

``Backbone.forward(images, features=...)`` takes uint8 N x H x W x 3 and returns float32 N x C
logits (C = the network's classes) and its features.  Every knob that can move a number is a
setting (:meth:`Backbone.settings`, one schema per knob), appears in ``provenance()`` and is part
of the cache key (``cache_identity()``):

========== ==============================================================================
knob       meaning
========== ==============================================================================
weights    the backbone's own specs (file:<path>, random:<seed>, pretrained, ported:...; none)
resize     native | tf1_bilinear | torch_bilinear (+ align_corners) | tf2_bilinear |
           antialias | pil_bicubic | none
input_norm auto | minus_one_one | centered_128 | imagenet_mean_std | zero_one | zero_255
dtype      float32 | float64 (where the framework allows)
device     cpu | cuda
input_size network input resolution
batch_size images per forward pass (results do not depend on it)
========== ==============================================================================

Two families implement it: the Inception V3 networks of the paper
(:class:`~harness.backbones.inception.InceptionBackbone`: ImageNet layouts, ``classes`` and
``bias`` knobs, official weights, porting) and any trained classifier or encoder a user brings
(:mod:`harness.backbones.torch_model`, :mod:`harness.backbones.keras_model`).  Nothing
ImageNet-specific lives in this base class.

What a subclass provides (and nothing outside ``harness/backbones`` looks inside it):

* class attributes: ``name``, ``framework``, ``default_norm``, ``native_resize``, capability
  flags (``has_logits``, ``has_features``, ``has_gradients``, ``supports_cuda`` ...);
* :meth:`_settings` (extending the base schema) and keyword-only ``__init__`` parameters for its
  own knobs;
* :meth:`resolve_weights`: a weights spec -> :class:`~harness.backbones.weights.ResolvedWeights`;
* :meth:`_load`: build the network; :meth:`_forward`: uint8 batch -> (logits, features);
* :meth:`class_names`, :meth:`top1_accuracy` (labels in the network's own label space);
* :meth:`attack_target`: its gradient path for :mod:`harness.attack` (optional);
* :meth:`framework_versions`, :meth:`extra_knobs`, :meth:`extra_provenance`.
"""

from __future__ import annotations

import numpy as np

from .. import resize as rs
from .. import settings as S
from ..errors import ConfigError, HarnessError
from ..frameworks import (  # noqa: F401  (re-exported: the backbones' guards)
    import_tensorflow,
    import_torch,
    import_torchvision,
    preload_torch,
    quiet_stderr,
)
from ..provenance import package_versions
from . import weights as W

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
    #: what a reader calls this network's weights (reporting lines); default: name
    weights_title: str | None = None
    framework = "none"
    default_norm = "minus_one_one"
    native_resize = ("tf2_bilinear", None)
    supports_float64 = True
    supports_cuda = False
    has_logits = True
    has_features = True
    #: the distances its features are reported with (sanity check 12): ``fd`` (the Fréchet
    #: distance, FID's formula) and/or ``cmmd`` (for embeddings CMMD's bandwidth was set for)
    distance_metrics: tuple[str, ...] = ("fd",)
    has_gradients = False
    #: False: a backbone without weights (``pixels``), which takes ``weights=none`` only; every
    #: other backbone refuses ``none``
    has_weights = True
    min_input_size = 75
    fixed_input_size: int | None = None
    #: the smallest image side the network's input path takes
    min_image_side = MIN_IMAGE_SIDE
    #: images per forward pass when ``batch_size`` is not given (results do not depend on it)
    default_batch_size = 32
    #: the label space its classes are in (compared with a dataset's for top-1 accuracy)
    label_space: str | None = None
    #: the network's column in Barratt & Sharma's Table 1 (None: not in the paper)
    paper_label: str | None = None
    #: True: the weights claim to be a published network's (the Inception backbones): every
    #: weights file is compared with :func:`~harness.backbones.weights.published_table`, and one
    #: that matches no published file is UNVERIFIED; False: a user's own network (its file claims
    #: nothing; labelled by its title and sha256)
    claims_published_weights = False

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
        return S.Schema(
            [*cls._weights_settings(), *cls._input_settings(), *cls._run_settings()],
            checks=[cls._check_capabilities],
        )

    @classmethod
    def _weights_settings(cls) -> list:
        """``name``, ``weights`` and the pin ``weights_sha256``."""
        return [
            S.Setting("name", S.Str(), cls.name, cls.summary),
            S.Setting(
                "weights",
                S.Str(what="a weights spec", form=cls._check_weights_spec),
                cls.default_weights,
                cls.weights_doc,
                required=cls.default_weights is None,
            ),
            S.Setting(
                "weights_sha256",
                S.Str(what="a sha256 (64 hex digits)", form=_check_sha256),
                None,
                "require this sha256 of the weights file",
                nullable=True,
                applies=S.When(
                    "weights",
                    fn=lambda v: W.WeightsSpec.parse(v["weights"]).kind in ("pretrained", "file"),
                    text="weights=pretrained or file:<path> (random and ported weights are "
                    "identified by the sha256 of their arrays, recorded in every row)",
                ),
            ),
        ]

    @classmethod
    def _input_settings(cls) -> list:
        """How images become the network's input: ``resize``, ``align_corners``, ``input_norm``."""
        native, native_ac = cls.native_resize
        return [
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
            S.Setting("input_norm", S.Choice(NORMS), "auto", cls.norm_doc),
        ]

    @classmethod
    def _run_settings(cls) -> list:
        """Where and how it runs: ``dtype``, ``device``, ``input_size``, ``batch_size``,
        ``cache_dir``."""
        fixed = cls.fixed_input_size
        return [
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
                fixed or cls.default_input_size,
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
        ]

    #: the first comment line of the generated YAML, and documentation of some knobs
    summary = ""
    default_weights: str | None = "pretrained"
    default_input_size = 299
    weights_doc = "file:<path> | random:<seed>"
    native_resize_doc = ""
    norm_doc = "auto = the network's own input range"

    @classmethod
    def _check_weights_spec(cls, value, path: str) -> None:
        try:
            spec = W.WeightsSpec.parse(value)
        except HarnessError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if spec.kind == "none" and cls.has_weights:
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} needs weights ({cls.weights_doc}); none is "
                "for backbones without weights (pixels)"
            )
        if spec.kind == "random" and not 0 <= spec.seed <= S.SEED_MAX:
            raise ConfigError(
                f"{path}={value}: the seed must be from 0 to {S.SEED_MAX}, e.g. random:0"
            )
        cls._check_weights_kind(spec, value, path)

    @classmethod
    def _check_weights_kind(cls, spec: W.WeightsSpec, value, path: str) -> None:
        """Which kinds of weights spec this backbone takes (subclasses widen it)."""
        if spec.kind not in ("file", "random"):
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} takes file:<path> or random:<seed>"
            )

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
        input_norm,
        dtype,
        device,
        input_size,
        batch_size,
        weights_sha256,
        cache_dir,
    ):
        """Takes every setting of :meth:`settings` (use
        :func:`harness.backbones.load_backbone`, which checks them and fills the defaults)."""
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
        self.input_norm = self.default_norm if input_norm == "auto" else input_norm
        self.dtype = dtype
        self.device = device
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.weights_sha256 = weights_sha256
        self.cache_dir = cache_dir
        resolved = self.resolve_weights(self.weights_spec)
        self.weights_info: dict = dict(resolved.record)
        self.weights_info.update(
            W.verification(
                self.weights_spec, resolved.record, self.claims_published_weights, self.name
            )
        )
        self._load(resolved)
        self._columns = self._class_columns()

    # ------------------------------------------------------------------ subclass contract
    def resolve_weights(self, spec: W.WeightsSpec) -> W.ResolvedWeights:
        """The one place a weights spec becomes a file or a state (base: files only)."""
        if spec.kind == "file":
            return W.locate_file(self.name, spec, None, False, self.weights_sha256)
        raise HarnessError(f"backbone {self.name} cannot use weights={spec}")

    def _load(self, weights: W.ResolvedWeights) -> None:
        """Build the network: from ``weights.path`` (own format) or ``weights.state``."""
        raise NotImplementedError

    def _forward(self, images: np.ndarray, want_features: bool):
        """uint8 batch -> (raw logits N x raw outputs or None; features or None)."""
        raise NotImplementedError

    def _class_columns(self):
        """Which raw outputs are the classes (None: all of them)."""
        return None

    def framework_versions(self) -> dict:
        return {}

    def extra_knobs(self) -> dict:
        return {}

    def extra_provenance(self) -> dict:
        return {}

    def feature_description(self) -> str:
        """Which layer the features are (statistics files record and compare it)."""
        return "features"

    def attack_target(self, settings):
        """This backbone's gradient path for :func:`harness.attack.run_attack`."""
        raise HarnessError(f"backbone {self.name} has no gradient path for the attack")

    # ------------------------------------------------------------------ classes
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        """Predicted class of each row, in :attr:`label_space` indices."""
        return np.asarray(logits).argmax(1)

    def top1_accuracy(self, logits: np.ndarray, labels, label_space=None) -> float | None:
        """Top-1 accuracy against ``labels`` in ``label_space`` (None when there are no labels
        or they are in another label space than the network's classes)."""
        if labels is None or self.label_space is None:
            return None
        if label_space is not None and label_space != self.label_space:
            return None
        return float((self.predictions(logits) == np.asarray(labels)).mean())

    @property
    def paper_column(self) -> str | None:
        """The paper's label for this network, unless it runs another network's weights."""
        return None if self.weights_spec.kind == "ported" else self.paper_label

    @property
    def random_weights(self) -> bool:
        return self.weights_spec.is_random

    @property
    def weights_status(self) -> str:
        """random | unverified | verified | trained here | user network (see
        :func:`~harness.backbones.weights.verification`)."""
        info = getattr(self, "weights_info", None) or {}
        if info.get("weights_status"):
            return info["weights_status"]
        return W.verification(self.weights_spec, info, self.claims_published_weights, self.name)[
            "weights_status"
        ]

    @property
    def weights_name(self) -> str | None:
        """The published file these weights are (verified only), e.g. ``torchvision
        inception_v3_google-0cc3c7bd``."""
        return (getattr(self, "weights_info", None) or {}).get("weights_name")

    # ------------------------------------------------------------------ shared
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

    def _check_outputs(self, logits, pool) -> None:
        if logits is not None and not np.isfinite(logits).all():
            raise HarnessError(
                f"backbone {self.name} produced NaN/inf logits; check the weights file"
            )
        if pool is not None and not np.isfinite(pool).all():
            raise HarnessError(
                f"backbone {self.name} produced NaN/inf features; check the weights file"
            )

    def forward(self, images, features: bool = False):
        """(logits float32 N x C, features float32 N x D or None), batched: one pass for both.

        A network without a classifier head (``has_logits=False``) returns N x 0 logits.
        """
        x = check_images(images, self.min_image_side)
        if features and not self.has_features:
            raise HarnessError(f"backbone {self.name} exposes no pool features (only logits)")
        outs, feats = [], []
        for s in range(0, x.shape[0], self.batch_size):
            lg, pool = self._forward(x[s : s + self.batch_size], features)
            n = min(self.batch_size, x.shape[0] - s)
            if lg is None:
                outs.append(np.zeros((n, 0), np.float32))
            else:
                lg = np.asarray(lg)
                outs.append(
                    (lg if self._columns is None else lg[:, self._columns]).astype(np.float32)
                )
            if features:
                feats.append(np.asarray(pool, dtype=np.float32))
        logits = np.concatenate(outs)
        pool = np.concatenate(feats) if features else None
        self._check_outputs(logits, pool)
        return logits, pool

    def logits(self, images) -> np.ndarray:
        self.require_logits()
        return self.forward(images, features=False)[0]

    def features(self, images) -> np.ndarray:
        return self.forward(images, features=True)[1]

    def require_logits(self, why: str = "the Inception Score and class probabilities") -> None:
        """A one-line error for a features-only network asked for what needs a classifier."""
        if not self.has_logits:
            raise HarnessError(
                f"backbone {self.name} has no classifier head (features only): {why} need "
                "one; FID, KID, precision/recall and density/coverage work on its features "
                "(+experiment=fid_sensitivity, metric_properties or sanity checks=[7,10])"
            )

    def knobs(self) -> dict:
        """Every setting that changes the output (the effective resize, not its request)."""
        return {
            "backbone": self.name,
            "weights": str(self.weights_spec),
            "resize": rs.describe(self.resize_method, self.align_corners),
            "num_classes": self.num_classes if self.has_logits else 0,
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
            "weights_title": self.weights_title or self.name,
            "value_range": NORM_LABELS[self.input_norm],
            "batch_size": self.batch_size,
            "label_space": self.label_space,
            "weights_kind": self.weights_spec.kind,
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
