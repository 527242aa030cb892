"""``keras``: ``keras.applications.InceptionV3`` on Keras 3 (the paper's "IV3 Keras" column).

Input x/127.5 - 1 (``preprocess_input``), 1000 classes; logits are the ``predictions`` Dense
layer's pre-activation (the model is built with ``classifier_activation=None``), pool features
the ``avg_pool`` output.  Resizing is left to the user by Keras; ``native`` here is
``tf.image.resize`` bilinear (half-pixel centres), what a Keras user would write.  The Keras
backend is ``tensorflow`` by default (``keras_backend=torch`` is allowed and can use CUDA); it
must be chosen before Keras is first imported in the process.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from .. import resize as rs
from .. import settings as S
from ..errors import HarnessError, ResourceUnavailable
from ..provenance import package_version
from . import weights as W
from .base import import_tensorflow, import_torch, preload_torch
from .inception import InceptionBackbone
from .iv3_arch import all_convs

BACKENDS = ("tensorflow", "torch")


def import_keras(backend: str):
    """Import Keras 3 with the requested backend (torch always imported before TensorFlow)."""
    if backend not in BACKENDS:
        raise HarnessError(f"keras_backend must be tensorflow or torch, got {backend!r}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise HarnessError(
                f"Keras is already loaded with backend {keras.backend.backend()} in this process; "
                f"keras_backend={backend} needs a fresh process (set KERAS_BACKEND={backend})"
            )
        return keras
    os.environ["KERAS_BACKEND"] = backend
    if backend == "torch":
        preload_torch()
    else:
        import_tensorflow()
    try:
        import keras
    except ImportError:
        raise ResourceUnavailable(
            "the keras backbone needs Keras 3: pip install -e '.[tf]'"
        ) from None
    if not keras.__version__.startswith("3"):
        raise HarnessError(f"the keras backbone needs Keras 3, found {keras.__version__}")
    return keras


KERAS_ARTIFACT = W.OfficialArtifact(
    "keras",
    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    "KERAS_HOME",
    "~/.keras",
    subdir="models",
    pin_kind="md5",
    pin="9a0d58056eeedaa3f26cb7ebd46da564",
)
KERAS_PUBLISHED = W.PublishedWeights.from_artifact(
    KERAS_ARTIFACT,
    "Keras inception_v3_weights_tf_dim_ordering_tf_kernels",
    "92 MB (keras.io applications table)",
    "keras.applications.InceptionV3(weights='imagenet')",
)


def _load_weights_file(model, path: Path) -> None:
    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise HarnessError(
            f"cannot load Keras weights {path} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); need an InceptionV3 .h5 / "
            ".weights.h5 with the 1000-class top"
        ) from None


class KerasIV3(InceptionBackbone):
    name = "keras"
    paper_label = "IV3 Keras"
    weights_title = "Keras Inception V3 imagenet"
    framework = "keras"
    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    default_norm = "minus_one_one"
    native_resize = ("tf2_bilinear", None)
    has_gradients = True
    port_sources = ("torchvision", "tf2015")
    published = (KERAS_PUBLISHED,)

    summary = (
        'keras.applications.InceptionV3 on Keras 3 (the paper\'s "IV3 Keras"): x/127.5 - 1, '
        "1000 classes."
    )
    weights_doc = (
        "pretrained | file:<.h5 or .weights.h5> | random:<seed> | ported:<backbone>[:<weights>]"
    )
    download_doc = "fetch into $KERAS_HOME/models when missing (needs network)"
    native_resize_doc = "tf.image.resize, half-pixel centres"
    bias_doc = "null = include the Dense bias"
    norm_doc = "auto = [-1, 1]"

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .extend(
                S.Setting(
                    "keras_backend",
                    S.Choice(BACKENDS),
                    "tensorflow",
                    "tensorflow | torch (torch can use device=cuda)",
                ),
                S.Setting(
                    "pool_compat",
                    S.Choice(("keras", "torchvision", "tf2015")),
                    "keras",
                    "keras | torchvision | tf2015: whose pooling semantics to run",
                ),
            )
            .with_changes("device", doc="the run's device (cpu | cuda with keras_backend=torch)")
        )

    def __init__(self, *, keras_backend, pool_compat, **kw):
        self.keras_backend = keras_backend
        self.supports_cuda = keras_backend == "torch"
        self.pool_compat = pool_compat
        super().__init__(**kw)

    @classmethod
    def official_artifact(cls, **knobs) -> W.OfficialArtifact:
        return KERAS_ARTIFACT

    @classmethod
    def read_state(cls, path) -> dict:
        keras = import_keras(
            sys.modules["keras"].backend.backend() if "keras" in sys.modules else "tensorflow"
        )
        model = keras.applications.InceptionV3(
            include_top=True, weights=None, classifier_activation=None
        )
        _load_weights_file(model, Path(path))
        return keras_to_torchvision_state(model)

    def build_model(self, keras, num_classes: int = 1000):
        s = self.input_size
        policy = keras.config.dtype_policy()
        try:
            if self.dtype == "float64":
                keras.config.set_dtype_policy("float64")
            model = keras.applications.InceptionV3(
                include_top=True,
                weights=None,
                input_shape=(s, s, 3),
                classes=num_classes,
                classifier_activation=None,
            )
        finally:
            keras.config.set_dtype_policy(policy)
        if self.pool_compat != "keras":
            model = keras_pool_compat(model, self.pool_compat)
        return model

    def _load(self, weights) -> None:
        keras = import_keras(self.keras_backend)
        self.keras = keras
        if self.device == "cuda":
            torch = import_torch()
            if not torch.cuda.is_available():
                raise HarnessError(
                    "device=cuda requested but torch sees no CUDA GPU; use device=cpu"
                )
        model = self.build_model(keras, self.raw_outputs)
        if weights.state is not None:
            torchvision_state_to_keras(model, weights.state)
        else:
            _load_weights_file(model, weights.path)
        self.model = model
        self._fmodel = keras.Model(
            model.inputs,
            [model.get_layer("avg_pool").output, model.get_layer("predictions").output],
        )
        self._bias = np.asarray(model.get_layer("predictions").get_weights()[1], dtype=np.float64)

    def attack_target(self, settings):
        if self.keras_backend != "tensorflow":
            raise HarnessError("the keras attack path needs keras_backend=tensorflow")
        from .tf_attack import TFEagerAttackTarget

        model = self.model
        return TFEagerAttackTarget(
            self,
            settings,
            lambda x: model(x, training=False),
            None if self.bias else self._bias,
            self._columns,
        )

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray:
        s = self.input_size
        npdt = np.float64 if self.dtype == "float64" else np.float32
        x = rs.resize_numpy(
            x_uint8, (s, s), self.resize_method, bool(self.align_corners), dtype=npdt
        )
        scale, offset = self.normalize_from_255()
        return (x * scale.astype(npdt) + offset.astype(npdt)).astype(npdt)

    def _forward(self, images, want_features):
        pool, logits = self._fmodel.predict_on_batch(self.preprocess(images))
        pool, logits = _to_numpy(pool), _to_numpy(logits)
        if not self.bias:
            logits = logits - self._bias.astype(logits.dtype)
        return logits, pool

    def extra_knobs(self) -> dict:
        return {"keras_backend": self.keras_backend, "pool_compat": self.pool_compat}

    def framework_versions(self) -> dict:
        v = {"keras": package_version("keras")}
        v["tensorflow" if self.keras_backend == "tensorflow" else "torch"] = package_version(
            "tensorflow" if self.keras_backend == "tensorflow" else "torch"
        )
        return v


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------------ canonical state <->
def _suffix(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


def keras_conv_bn_layers(model):
    """Conv2D and BatchNormalization layers of a Keras InceptionV3 in creation order."""
    convs = [lay for lay in model.layers if type(lay).__name__ == "Conv2D"]
    bns = [lay for lay in model.layers if type(lay).__name__ == "BatchNormalization"]
    convs.sort(key=lambda lay: _suffix(lay.name))
    bns.sort(key=lambda lay: _suffix(lay.name))
    if len(convs) != len(all_convs()) or len(bns) != len(convs):
        raise HarnessError(
            f"model has {len(convs)} convs / {len(bns)} BatchNorms; not Inception V3 (94)"
        )
    return convs, bns


def torchvision_state_to_keras(model, sd: dict) -> None:
    """Load a torchvision-layout state dict (numpy or torch tensors) into a Keras InceptionV3."""
    convs, bns = keras_conv_bn_layers(model)
    for spec, conv, bn in zip(all_convs(), convs, bns):
        w = _np(sd[f"{spec.torch}.conv.weight"]).astype(np.float64)  # O I H W
        gamma = _np(sd[f"{spec.torch}.bn.weight"]).astype(np.float64)
        kernel = np.transpose(w * gamma[:, None, None, None], (2, 3, 1, 0))  # H W I O
        if tuple(conv.kernel.shape) != kernel.shape:
            raise HarnessError(
                f"{spec.torch}: kernel {kernel.shape} does not fit Keras layer {conv.name} "
                f"{tuple(conv.kernel.shape)}"
            )
        conv.set_weights([kernel.astype(conv.kernel.dtype)])
        mean = _np(sd[f"{spec.torch}.bn.running_mean"]).astype(np.float64) * gamma
        var = _np(sd[f"{spec.torch}.bn.running_var"]).astype(np.float64)
        beta = _np(sd[f"{spec.torch}.bn.bias"]).astype(np.float64)
        dt = bn.moving_mean.dtype
        bn.set_weights([beta.astype(dt), mean.astype(dt), var.astype(dt)])
    dense = model.get_layer("predictions")
    fw, fb = _np(sd["fc.weight"]), _np(sd["fc.bias"])
    if tuple(dense.kernel.shape) != (fw.shape[1], fw.shape[0]):
        raise HarnessError(
            f"classifier {fw.shape} does not fit Keras predictions {tuple(dense.kernel.shape)}"
        )
    dense.set_weights([fw.T.astype(dense.kernel.dtype), fb.astype(dense.kernel.dtype)])


def keras_to_torchvision_state(model) -> dict:
    """torchvision-layout numpy state dict from a Keras InceptionV3 (gamma = 1)."""
    convs, bns = keras_conv_bn_layers(model)
    sd = {}
    for spec, conv, bn in zip(all_convs(), convs, bns):
        (kernel,) = conv.get_weights()
        beta, mean, var = bn.get_weights()
        sd[f"{spec.torch}.conv.weight"] = np.transpose(kernel, (3, 2, 0, 1)).copy()
        sd[f"{spec.torch}.bn.weight"] = np.ones_like(beta)
        sd[f"{spec.torch}.bn.bias"] = beta
        sd[f"{spec.torch}.bn.running_mean"] = mean
        sd[f"{spec.torch}.bn.running_var"] = var
    w, b = model.get_layer("predictions").get_weights()
    sd["fc.weight"], sd["fc.bias"] = w.T.copy(), b
    return sd


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


# ------------------------------------------------------------------------------ Keras pooling compa
def keras_pool_compat(model, mode: str):
    """A Keras InceptionV3 whose in-block average pools follow another implementation.

    ``torchvision``: count padded zeros (count_include_pad=True); ``tf2015``: as Keras, but the
    last block's pool is a max pool (the 2015 graph's mixed_10).  The result is a fresh model with
    the same layer names and weight order (weights are loaded into it afterwards).
    """
    keras = sys.modules["keras"]
    if mode not in ("keras", "torchvision", "tf2015"):
        raise HarnessError(f"pool_compat must be keras, torchvision or tf2015, got {mode!r}")
    if mode == "keras":
        return model
    pools = sorted(
        (lay for lay in model.layers if type(lay).__name__ == "AveragePooling2D"),
        key=lambda lay: _suffix(lay.name),
    )
    last = pools[-1].name

    class CountPadAvgPool(keras.layers.Layer):
        def call(self, x):
            x = keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            return keras.ops.average_pool(x, 3, 1, "valid")

    def clone(layer):
        if type(layer).__name__ != "AveragePooling2D":
            return layer.__class__.from_config(layer.get_config())
        if mode == "torchvision":
            return CountPadAvgPool(name=f"{layer.name}_count_pad", dtype=layer.dtype_policy)
        if layer.name == last:
            return keras.layers.MaxPooling2D(
                (3, 3),
                strides=(1, 1),
                padding="same",
                name=f"{layer.name}_max",
                dtype=layer.dtype_policy,
            )
        return layer

    return keras.models.clone_model(model, clone_function=clone)
