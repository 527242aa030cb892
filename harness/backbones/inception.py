"""The Inception V3 family of the paper: ImageNet classifier layouts, official weights, porting.

:class:`InceptionBackbone` adds to the generic :class:`~harness.backbones.base.Backbone`
everything that is specific to ImageNet classifiers:

* ``class_layout`` / ``raw_outputs`` (1000, 1001 with background, or the 2015 graph's 1008) and
  the ``classes`` knob (``all`` | ``first1000`` | ``last1000`` | ``imagenet1000``), with class
  names and top-1 accuracy on ImageNet's sorted-wnid labels;
* ``bias`` (whether the classifier's bias is added; None = the network's reference behaviour);
* ``weights=pretrained`` (:meth:`official_artifact`, found in its ecosystem's cache, downloaded
  only with ``allow_download=true``) and the published files it loads (:attr:`published`: every
  weights file is compared with them; one that matches none is UNVERIFIED), ``random:<seed>``
  (the canonical random Inception state of :mod:`random_init`) and
  ``ported:<backbone>[:<weights>]`` (:meth:`read_state` of another Inception backbone,
  :mod:`harness.backbones.porting`).
"""

from __future__ import annotations

import numpy as np

from .. import imagenet
from .. import settings as S
from ..errors import ConfigError, HarnessError
from . import porting
from . import weights as W
from .base import Backbone

CLASS_CHOICES = ("all", "first1000", "last1000", "imagenet1000")


class InceptionBackbone(Backbone):
    """An ImageNet Inception V3 (see the module docstring)."""

    class_layout = "imagenet1000"
    raw_outputs = 1000
    default_bias = True
    label_space = "imagenet1000"
    #: backbones whose weights this one can run (``weights=ported:<name>``)
    port_sources: tuple = ()
    #: True: ported weights keep their classifier layout (1000 or 1008 outputs); False: they are
    #: mapped to this backbone's own ``class_layout``
    ported_keeps_layout = True
    weights_doc = "pretrained | file:<path> | random:<seed> | ported:<backbone>[:<weights>]"
    download_doc = "fetch the official file when missing (needs network)"
    bias_doc = "null = the reference behaviour"
    classes_doc = "all | first1000 | last1000 | imagenet1000"
    claims_published_weights = True
    #: the published files this backbone loads (:func:`published_files`): its official artifact
    #: and the peers' files it takes with ``weights=file:``
    published: tuple = ()

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .insert_after(
                "weights_sha256",
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
            )
            .insert_after(
                "align_corners",
                S.Setting("bias", S.Bool(), None, cls.bias_doc, nullable=True),
                S.Setting("classes", S.Choice(CLASS_CHOICES), "all", cls.classes_doc),
            )
        )

    @classmethod
    def _check_weights_kind(cls, spec: W.WeightsSpec, value, path: str) -> None:
        if spec.kind == "ported" and spec.source_backbone not in cls.port_sources:
            valid = ", ".join(cls.port_sources) or "none"
            raise ConfigError(
                f"{path}={value}: backbone {cls.name} runs ported weights of {valid} only"
            )
        if spec.kind == "ported":
            from . import backbone_class

            backbone_class(spec.source_backbone)._check_weights_spec(spec.source_spec, path)

    def __init__(self, *, bias, classes, allow_download, **kw):
        self.bias = self.default_bias if bias is None else bias
        self.classes = classes
        self.allow_download = allow_download
        super().__init__(**kw)

    # ------------------------------------------------------------------ weights
    @classmethod
    def official_artifact(cls, **knobs) -> W.OfficialArtifact | None:
        """What ``weights=pretrained`` loads (None: no official weights)."""
        return None

    @classmethod
    def published_files(cls) -> tuple:
        """The published weights files (:class:`~harness.backbones.weights.PublishedWeights`)
        this backbone loads; a weights file that is none of them is UNVERIFIED."""
        return tuple(cls.published)

    @classmethod
    def read_state(cls, path) -> dict:
        """A weights file of this backbone's format as a canonical (torchvision-layout) state."""
        raise HarnessError(f"weights of backbone {cls.name} cannot be ported to other backbones")

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

    # ------------------------------------------------------------------ classes
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

    def imagenet_predictions(self, logits: np.ndarray) -> np.ndarray:
        """Predicted ImageNet-1k class (sorted-wnid index 0..999) of each row of ``logits``."""
        full = np.full((logits.shape[0], self.raw_outputs), -np.inf)
        full[:, self._columns] = logits
        real = imagenet.meaningful_indices(self.class_layout)
        raw = np.asarray(real)[full[:, real].argmax(1)]
        return imagenet.sorted_index_of_outputs(self.class_layout, raw)

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        return self.imagenet_predictions(logits)

    # ------------------------------------------------------------------ provenance
    def feature_description(self) -> str:
        return "pool (2048-d, before the classifier)"

    def knobs(self) -> dict:
        return {**super().knobs(), "bias": self.bias, "classes": self.classes}

    def provenance(self) -> dict:
        return {
            **super().provenance(),
            "class_layout": self.class_layout,
            "raw_outputs": self.raw_outputs,
        }
