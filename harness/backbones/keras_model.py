"""``keras_model``: any trained Keras 3 classifier or encoder (a ``.keras`` or ``.h5`` file).

``weights=file:<model.keras>`` (or a legacy ``.h5`` full model) is loaded with
``keras.models.load_model(..., compile=False)``.  As for :mod:`torch_model`, the YAML declares
``input_size``, ``channels`` (1: grey by ``grey`` = ``mean`` | ``luma``), ``input_norm``,
``resize``, ``head`` (``logits`` | ``features``), ``feature_layer`` (the layer whose *input* is
the feature vector; default the last ``Dense`` layer), ``class_names`` and ``label_space``.  The
model takes N x S x S x C float input (channels last) and returns logits (no softmax) or, for
an encoder, its feature vector.  The file's sha256 is part of the cache key.  Gradients for the
attack come from TensorFlow's GradientTape (``keras_backend=tensorflow``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import resize as rs
from .. import settings as S
from ..errors import ConfigError, HarnessError
from ..provenance import package_version
from . import weights as W
from .base import Backbone
from .keras_iv3 import BACKENDS, import_keras
from .tf_attack import TFEagerAttackTarget
from .torch_model import LUMA


class KerasModel(Backbone):
    name = "keras_model"
    framework = "keras"
    summary = "Any trained Keras 3 classifier or encoder (.keras, or a legacy .h5 full model)."
    default_weights = None
    default_norm = "zero_one"
    native_resize = ("none", None)
    native_resize_doc = "the images must have the input size"
    has_gradients = True
    min_input_size = 1
    min_image_side = 1
    default_input_size = None
    weights_doc = "file:<model.keras or full-model .h5> | trained:<recipe>/keras/<seed>"
    norm_doc = "auto = [0, 1] (x / 255); the range the network was trained on"

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .with_changes("input_size", required=True, doc="the network's input (square)")
            .extend(
                S.Setting(
                    "keras_backend",
                    S.Choice(BACKENDS),
                    "tensorflow",
                    "tensorflow | torch (torch can use device=cuda)",
                ),
                S.Setting("channels", S.Choice((1, 3)), 3, "input channels: 1 (grey) | 3 (RGB)"),
                S.Setting(
                    "grey",
                    S.Choice(("mean", "luma")),
                    "mean",
                    "RGB -> grey: mean of the channels | luma (0.299 R + 0.587 G + 0.114 B)",
                    applies=S.When("channels", is_in=(1,)),
                ),
                S.Setting(
                    "head",
                    S.Choice(("logits", "features")),
                    "logits",
                    "logits: the model returns class logits | features: an encoder",
                ),
                S.Setting(
                    "feature_layer",
                    S.Str(),
                    None,
                    "layer whose input is the feature vector (null: the last Dense layer)",
                    nullable=True,
                    applies=S.When("head", is_in=("logits",)),
                ),
                S.Setting(
                    "class_names",
                    S.ListOf(S.Str()),
                    None,
                    "one name per output (null: 0, 1, ...)",
                    nullable=True,
                ),
                S.Setting(
                    "label_space",
                    S.Str(),
                    None,
                    "the labels the classes are (a dataset with the same label space gets "
                    "top-1 accuracy), e.g. digits10",
                    nullable=True,
                ),
                S.Setting(
                    "title",
                    S.Str(),
                    None,
                    "what reporting lines call this network (null: keras_model <file>)",
                    nullable=True,
                ),
            )
        )

    @classmethod
    def _check_weights_kind(cls, spec: W.WeightsSpec, value, path: str) -> None:
        if spec.kind == "trained":
            try:
                _, framework, _ = W.parse_trained(spec)
            except HarnessError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            if framework != "keras":
                raise ConfigError(f"{path}={value}: keras_model runs keras checkpoints only")
        elif spec.kind != "file":
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} takes file:<model.keras> (a trained model "
                "of yours) or trained:<recipe>/keras/<seed>"
            )

    def resolve_weights(self, spec: W.WeightsSpec) -> W.ResolvedWeights:
        if spec.kind == "trained":
            return W.trained_weights(spec, self.cache_dir, "keras")
        return super().resolve_weights(spec)

    def __init__(
        self,
        *,
        keras_backend,
        channels,
        grey,
        head,
        feature_layer,
        class_names,
        label_space,
        title,
        **kw,
    ):
        self.keras_backend = keras_backend
        self.supports_cuda = keras_backend == "torch"
        self.channels = int(channels)
        self.grey = grey
        self.head = head
        self.has_logits = head == "logits"
        self.feature_layer = feature_layer
        self._names = list(class_names) if class_names else None
        self.label_space = label_space
        self.title = title
        super().__init__(**kw)

    def _load(self, weights: W.ResolvedWeights) -> None:
        keras = import_keras(self.keras_backend)
        self.keras = keras
        path = Path(weights.path)
        if path.suffix not in (".keras", ".h5", ".hdf5"):
            raise HarnessError(
                f"keras_model: {path} must be a .keras file (model.save) or a full-model .h5"
            )
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise HarnessError(
                f"keras_model: cannot load {path} ({type(exc).__name__}: {first})"
            ) from None
        self.model = model
        if not getattr(model, "outputs", None):
            raise HarnessError(f"keras_model: {path} has no defined outputs (build it first)")
        feat = self._feature_tensor(model)
        outs = [model.outputs[0]] if feat is None else [model.outputs[0], feat]
        self._fmodel = keras.Model(model.inputs, outs)
        scale, offset = self.normalize_from_255()
        self._scale, self._offset = scale.astype(np.float32), offset.astype(np.float32)
        probe = self._net(np.zeros((1, self.input_size, self.input_size, 3), np.float32))
        self._n_outputs = int(probe[0].shape[1])
        self._n_features = None if probe[1] is None else int(probe[1].shape[1])
        if self._names is not None and self.has_logits and len(self._names) != self._n_outputs:
            raise HarnessError(
                f"keras_model: class_names has {len(self._names)} names but the model has "
                f"{self._n_outputs} outputs"
            )

    def _feature_tensor(self, model):
        if not self.has_logits:
            return None  # an encoder: its output is the feature vector
        if self.feature_layer is not None:
            try:
                return model.get_layer(self.feature_layer).input
            except ValueError:
                names = ", ".join(layer.name for layer in model.layers)[:300]
                raise HarnessError(
                    f"keras_model: no layer {self.feature_layer!r}; layers: {names}"
                ) from None
        dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
        if not dense:
            raise HarnessError(
                "keras_model: the model has no Dense layer for the default features; name one "
                "with feature_layer=<layer>"
            )
        return dense[-1].input

    # ------------------------------------------------------------------ forward
    def network_input(self, x_uint8: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 -> normalised RGB float32 N x S x S x 3."""
        s = self.input_size
        if self.resize_method == "none" and x_uint8.shape[1:3] != (s, s):
            raise HarnessError(
                f"keras_model: images are {x_uint8.shape[1]}x{x_uint8.shape[2]} but the model "
                f"takes {s}x{s} and resize=none; set backbone.resize=<method> or "
                "backbone.input_size"
            )
        x = x_uint8.astype(np.float32) * self._scale + self._offset
        if self.resize_method != "none":
            x = rs.resize_numpy(x, (s, s), self.resize_method, bool(self.align_corners))
        return x.astype(np.float32)

    def to_input(self, x3):
        """Normalised RGB (numpy or a tensor of the backend) -> the model's channels."""
        if self.channels == 3:
            return x3
        ops = self.keras.ops
        if self.grey == "mean":
            return ops.mean(x3, axis=-1, keepdims=True)
        return ops.sum(x3 * np.asarray(LUMA, np.float32), axis=-1, keepdims=True)

    def _net(self, x3):
        outs = self._fmodel(self.to_input(x3), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        out = np.asarray(self.keras.ops.convert_to_numpy(outs[0]))
        out = out.reshape(out.shape[0], -1)
        if not self.has_logits:
            return None, out
        if len(outs) < 2:
            return out, None
        f = np.asarray(self.keras.ops.convert_to_numpy(outs[1]))
        return out, f.reshape(f.shape[0], -1)

    def _forward(self, images: np.ndarray, want_features: bool):
        lg, f = self._net(self.network_input(images))
        return (None if lg is None else lg.astype(np.float64)), (
            None if f is None else f.astype(np.float64)
        )

    @property
    def class_names(self) -> list[str]:
        if not self.has_logits:
            return []
        return self._names or [str(i) for i in range(self._n_outputs)]

    # ------------------------------------------------------------------ provenance
    def extra_knobs(self) -> dict:
        return {
            "keras_backend": self.keras_backend,
            "channels": self.channels,
            "grey": self.grey if self.channels == 1 else None,
            "head": self.head,
            "feature_layer": self.feature_layer,
        }

    def feature_description(self) -> str:
        if not self.has_logits:
            return f"encoder output ({self._n_features}-d)"
        return f"input of {self.feature_layer or 'the last Dense layer'} ({self._n_features}-d)"

    def extra_provenance(self) -> dict:
        return {"class_names": self._names, "feature_dim": self._n_features}

    @property
    def weights_title(self) -> str:  # type: ignore[override]
        return self.title or f"keras_model {Path(str(self.weights_spec.path)).name}"

    def framework_versions(self) -> dict:
        v = {"keras": package_version("keras")}
        v["tensorflow" if self.keras_backend == "tensorflow" else "torch"] = package_version(
            "tensorflow" if self.keras_backend == "tensorflow" else "torch"
        )
        return v

    def attack_target(self, settings):
        self.require_logits("the attack")
        if self.keras_backend != "tensorflow":
            raise HarnessError("the keras_model attack path needs keras_backend=tensorflow")
        model, to_input = self.model, self.to_input
        return KerasModelAttackTarget(
            self,
            settings,
            lambda x: model(to_input(x), training=False),
            None,
            np.arange(self._n_outputs),
        )


class KerasModelAttackTarget(TFEagerAttackTarget):
    """GradientTape through the grey conversion and the model, in normalised RGB input."""

    def start(self, x_uint8):
        return self.net.network_input(x_uint8)
