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
import sys

import numpy as np

from .. import resize as rs
from ..errors import HarnessError
from ..provenance import package_version
from . import weights as W
from .base import Backbone, import_tensorflow, import_torch, preload_torch

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
                f"keras_backend={backend} needs a fresh process (set KERAS_BACKEND={backend})")
        return keras
    os.environ["KERAS_BACKEND"] = backend
    if backend == "torch":
        preload_torch()
    else:
        import_tensorflow()
    try:
        import keras
    except ImportError:
        raise HarnessError("the keras backbone needs Keras 3: pip install -e '.[tf]'") from None
    if not keras.__version__.startswith("3"):
        raise HarnessError(f"the keras backbone needs Keras 3, found {keras.__version__}")
    return keras


class KerasIV3(Backbone):
    name = "keras"
    framework = "keras"
    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    default_norm = "minus_one_one"
    native_resize = ("tf2_bilinear", None)
    has_gradients = True

    def __init__(self, keras_backend: str = "tensorflow", pool_compat: str = "keras", **kw):
        if keras_backend not in BACKENDS:
            raise HarnessError(f"keras_backend must be tensorflow or torch, got {keras_backend!r}")
        self.keras_backend = keras_backend
        self.supports_cuda = keras_backend == "torch"
        self.pool_compat = pool_compat
        super().__init__(**kw)

    def build_model(self, keras, num_classes: int = 1000):
        s = self.input_size
        policy = keras.config.dtype_policy()
        try:
            if self.dtype == "float64":
                keras.config.set_dtype_policy("float64")
            model = keras.applications.InceptionV3(
                include_top=True, weights=None, input_shape=(s, s, 3), classes=num_classes,
                classifier_activation=None)
        finally:
            keras.config.set_dtype_policy(policy)
        if self.pool_compat != "keras":
            from ..porting import keras_pool_compat

            model = keras_pool_compat(model, self.pool_compat)
        return model

    def _load(self) -> None:
        keras = import_keras(self.keras_backend)
        self.keras = keras
        if self.device == "cuda":
            torch = import_torch()
            if not torch.cuda.is_available():
                raise HarnessError("device=cuda requested but torch sees no CUDA GPU; use device=cpu")
        spec = self.weights_spec
        path = hashes = None
        ported = None
        if spec.kind == "ported":
            from ..porting import ported_state_dict

            ported, hashes, path = ported_state_dict(spec, target="keras", allow_download=self.allow_download)
            if ported["fc.weight"].shape[0] == 1008:
                self.raw_outputs, self.class_layout = 1008, "tf2015_1008"
        model = self.build_model(keras, self.raw_outputs)
        if spec.kind in ("pretrained", "file"):
            path, hashes = W.locate("keras", spec, self.allow_download, user_sha256=self.weights_sha256)
            try:
                model.load_weights(str(path))
            except Exception as exc:
                raise HarnessError(
                    f"cannot load Keras weights {path} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                    "need an InceptionV3 .h5 / .weights.h5 with the 1000-class top") from None
        elif spec.kind == "random":
            from ..porting import torchvision_state_to_keras
            from .random_init import random_iv3_state

            torchvision_state_to_keras(model, random_iv3_state(spec.seed, 1000))
        elif spec.kind == "ported":
            from ..porting import torchvision_state_to_keras

            torchvision_state_to_keras(model, ported)
        else:
            raise HarnessError(f"keras backbone: unsupported weights {spec}")
        self.model = model
        self._fmodel = keras.Model(model.inputs, [model.get_layer("avg_pool").output,
                                                  model.get_layer("predictions").output])
        self._bias = np.asarray(model.get_layer("predictions").get_weights()[1], dtype=np.float64)
        self.weights_info = W.weights_record(spec, path, hashes, W.OFFICIAL["keras"])
        if spec.kind == "ported":
            self.weights_info.update({k: hashes[k] for k in ("source_sha256", "port_version", "ported_cache")})

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray:
        s = self.input_size
        npdt = np.float64 if self.dtype == "float64" else np.float32
        x = rs.resize_numpy(x_uint8, (s, s), self.resize_method, bool(self.align_corners), dtype=npdt)
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
            "tensorflow" if self.keras_backend == "tensorflow" else "torch")
        return v


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
