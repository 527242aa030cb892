"""``pixels``: pixel space, the feature space without a network.

An image's features are its raw pixels as floats in [0, 1] (``x / 255``), flattened in
height x width x channel order, at the image's own size: no network, no weights, no resize, no
classifier head.  This is the "pixel space" Xu et al. (2018, "An empirical study on evaluation
metrics of generative adversarial networks") score beside learned feature spaces, as the
baseline that shows what a metric sees without any network: FID, KID, precision/recall,
density/coverage, MMD, Wasserstein and the 1-NN two-sample test all run on it
(``+experiment=metric_properties backbone=pixels``); the Inception Score and everything else
that needs class probabilities does not (``has_logits`` is False, as for a user's encoder).

Knobs (every one recorded and part of the cache key):

* ``weights``: ``none`` only (there are none); any other spec is a one-line error.  Provenance
  says so: ``weights_kind`` ``none``, ``weights_sha256`` ``"none"`` (a descriptor: there is no
  file or array to hash), ``weights_status`` ``no weights``;
* ``channels``: 3 (R, G, B: H*W*3 features) or 1 (grey, the mean of R, G and B, as the digits
  backbones convert: H*W features);
* ``input_size``: null (the images' own size) or N (the images must be N x N); either way one
  run has one image size (features of different sizes cannot be compared);
* ``resize``: ``native`` = ``none`` only; ``input_norm``: ``auto`` = ``zero_one`` only (the
  features are ``x / 255``); ``dtype``: the arithmetic (the features are returned as float32 like
  every backbone's); ``device``: cpu (numpy; no CUDA path).

The dimension is H*W*channels: 192 for sklearn's 8 x 8 digits in RGB (64 with ``channels=1``),
3,072 for 32 x 32 RGB.  FID's covariances need more samples than dimensions to be full rank.
"""

from __future__ import annotations

import numpy as np

from .. import settings as S
from ..errors import ConfigError, HarnessError
from . import weights as W
from .base import Backbone


class Pixels(Backbone):
    name = "pixels"
    framework = "numpy"
    summary = (
        "Pixel space: the features are the raw pixels / 255, flattened, at the images' own size "
        "(no network, no weights, no classes; Xu et al. 2018's baseline)."
    )
    weights_title = "pixel space (raw pixels, no network)"
    default_weights = "none"
    weights_doc = "none (pixel space has no weights)"
    default_norm = "zero_one"
    norm_doc = "auto = zero_one: the features are x / 255 in [0, 1]"
    native_resize = ("none", None)
    native_resize_doc = "pixel space is the images' own pixels, never resized"
    supports_cuda = False
    has_logits = False
    has_features = True
    has_weights = False
    min_input_size = 1
    min_image_side = 1
    default_input_size = None
    default_batch_size = 256

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .without("weights_sha256", "align_corners")
            .with_changes(
                "resize",
                kind=S.Choice(("native", "none")),
                doc="native = none: the images' own size (pixel space is never resized)",
            )
            .with_changes("input_norm", kind=S.Choice(("auto", "zero_one")))
            .with_changes(
                "input_size",
                kind=S.Int(lo=1),
                default=None,
                nullable=True,
                doc="null = the images' own size (one size per run) | N: the images must be NxN",
            )
            .extend(
                S.Setting(
                    "channels",
                    S.Choice((1, 3)),
                    3,
                    "3: R, G, B (H*W*3 features) | 1: grey, the mean of R, G, B (H*W features)",
                )
            )
        )

    @classmethod
    def _check_weights_kind(cls, spec: W.WeightsSpec, value, path: str) -> None:
        if spec.kind != "none":
            raise ConfigError(f"{path}={value}: backbone {cls.name} has no weights: weights=none")

    def __init__(self, *, channels, input_size, **kw):
        self.channels = int(channels)
        self._image_size: tuple[int, int] | None = None
        # the base class reads input_size as an integer; here null means the images' own size
        size = 0 if input_size is None else input_size
        super().__init__(input_size=size, weights_sha256=None, align_corners=None, **kw)
        self.input_size = None if input_size is None else int(input_size)

    # ------------------------------------------------------------------ loading
    def resolve_weights(self, spec: W.WeightsSpec) -> W.ResolvedWeights:
        if spec.kind != "none":
            raise HarnessError(f"backbone {self.name} has no weights: weights=none")
        return W.no_weights(spec, self.name)

    def _load(self, weights: W.ResolvedWeights) -> None:
        self._np_dtype = np.float64 if self.dtype == "float64" else np.float32

    # ------------------------------------------------------------------ forward
    def _check_size(self, images: np.ndarray) -> None:
        h, w = int(images.shape[1]), int(images.shape[2])
        s = self.input_size
        if s is not None and (h, w) != (s, s):
            raise HarnessError(
                f"pixels: images are {h}x{w} but backbone.input_size={s} (pixel space does not "
                f"resize); give {s}x{s} images or set backbone.input_size=null (their own size)"
            )
        if self._image_size is None:
            self._image_size = (h, w)
        elif (h, w) != self._image_size:
            a, b = self._image_size
            raise HarnessError(
                f"pixels: images of {h}x{w} after images of {a}x{b}; pixel space takes one image "
                "size per run (features of different lengths cannot be compared): resize the "
                "images to one size first"
            )

    def _forward(self, images: np.ndarray, want_features: bool):
        self._check_size(images)
        if not want_features:
            return None, None
        x = images.astype(self._np_dtype)
        if self.channels == 1:
            x = x.mean(axis=3, keepdims=True)
        return None, (x / 255.0).reshape(len(x), -1)

    # ------------------------------------------------------------------ classes
    @property
    def class_names(self) -> list[str]:
        return []

    # ------------------------------------------------------------------ provenance
    def extra_knobs(self) -> dict:
        return {"channels": self.channels}

    def feature_description(self) -> str:
        per = "R, G, B" if self.channels == 3 else "grey (mean of R, G, B)"
        return f"raw pixels / 255, flattened (H x W x {self.channels}: {per})"

    def extra_provenance(self) -> dict:
        return {
            "features": self.feature_description(),
            "grey_conversion": "mean of R, G, B" if self.channels == 1 else None,
        }

    def framework_versions(self) -> dict:
        return {"numpy": np.__version__}
