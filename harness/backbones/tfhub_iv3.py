"""``tfhub``: the TF-Hub ``imagenet/inception_v3/classification`` SavedModel via ``tensorflow_hub``.

1001 outputs (index 0 = background), input float [0, 1] at 299 x 299.  ``handle`` is the
TF-Hub URL (resolved in ``TFHUB_CACHE_DIR`` as ``sha1(handle)``) or a local SavedModel
directory.  The classification model exposes logits only (no pool features).  ``bias=false``
subtracts the last layer's bias, found among the SavedModel's variables (a 1001-vector).

``weights=random:<seed>`` exports the canonical random network (:mod:`random_init`, 1001 classes)
as a SavedModel through Keras and loads it with ``hub.load``, so the real loading path runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .. import resize as rs
from .. import settings as S
from ..atomic_io import atomic_write_text
from ..errors import HarnessError, ResourceUnavailable
from ..provenance import package_version
from . import weights as W
from .base import import_tensorflow
from .inception import InceptionBackbone
from .keras_iv3 import import_keras, torchvision_state_to_keras

TFHUB_DEFAULT_HANDLE = "https://tfhub.dev/google/imagenet/inception_v3/classification/5"


def savedmodel_for_state(sd: dict, input_size: int, cache_dir=None) -> Path:
    """Export (once, cached) canonical state ``sd`` (1001 outputs) as a Keras SavedModel.

    Named by the sha256 of the state and the input size; a sidecar holds the SavedModel's tree
    sha256, and an export that no longer matches it is rebuilt.
    """
    from filelock import FileLock

    key = W.state_sha256(sd)
    target = W.cache_root(cache_dir) / "weights" / "savedmodels" / f"tfhub_{key[:24]}_s{input_size}"
    sidecar = target.with_name(target.name + ".sha256")

    def valid() -> bool:
        return (
            (target / "saved_model.pb").exists()
            and sidecar.exists()
            and W.sha256_of(target) == sidecar.read_text().strip()
        )

    if valid():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # one builder at a time: another job may be exporting (or reading) the same SavedModel
    with FileLock(str(target) + ".lock"):
        if valid():  # built by another process while this one waited
            return target
        _build_savedmodel(sd, input_size, target, sidecar)
    return target


def _build_savedmodel(sd: dict, input_size: int, target: Path, sidecar: Path) -> None:
    keras = import_keras("tensorflow")
    model = keras.applications.InceptionV3(
        include_top=True,
        weights=None,
        classes=1001,
        input_shape=(input_size, input_size, 3),
        classifier_activation=None,
    )
    torchvision_state_to_keras(model, sd)
    sidecar.unlink(missing_ok=True)  # invalid until the new export is complete
    export_keras_savedmodel(model, target)
    atomic_write_text(sidecar, W.sha256_of(target) + "\n")


def export_keras_savedmodel(model, target: Path) -> None:
    """``model.export`` into a temporary directory, then rename (no half-written SavedModel)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export_", dir=target.parent))
    try:
        model.export(str(tmp / "m"), verbose=False)
        if target.exists():  # a stale or mismatching export: replaced
            shutil.rmtree(target, ignore_errors=True)
        try:
            (tmp / "m").rename(target)
        except OSError:  # another process published it first: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class TFHubIV3(InceptionBackbone):
    name = "tfhub"
    weights_title = "TF-Hub Inception V3"
    framework = "tensorflow"
    class_layout = "tfhub1001"
    raw_outputs = 1001
    default_bias = True
    default_norm = "zero_one"
    native_resize = ("tf2_bilinear", None)
    supports_float64 = False
    has_features = False
    has_gradients = True
    port_sources = ()  # the classification SavedModel is a TF-Hub artifact of its own
    #: TF-Hub publishes no hash of the SavedModel: never verified unless one is added here
    published = (
        W.PublishedWeights(
            "TF-Hub imagenet/inception_v3/classification/5",
            "SavedModel directory <TFHUB_CACHE_DIR>/<sha1 of the handle>",
            TFHUB_DEFAULT_HANDLE,
            None,
            None,
            "not published",
            note="no hash published, so never verified",
        ),
    )

    summary = (
        "TF-Hub imagenet/inception_v3/classification SavedModel: input [0, 1] at 299, 1001 "
        "outputs (0 = background)."
    )
    weights_doc = "pretrained (via handle) | file:<SavedModel dir> | random:<seed>"
    download_doc = "resolve the handle into $TFHUB_CACHE_DIR when missing (needs network)"
    bias_doc = "null = include the logits bias; false subtracts it"
    classes_doc = "all (1001) | last1000 | imagenet1000 (drop background, renormalise)"
    norm_doc = "auto = [0, 1]"

    @classmethod
    def _settings(cls) -> S.Schema:
        return (
            super()
            ._settings()
            .extend(
                S.Setting(
                    "handle",
                    S.Str(),
                    TFHUB_DEFAULT_HANDLE,
                    "or a local SavedModel directory",
                    applies=S.When(
                        "weights",
                        fn=lambda v: v["weights"] == "pretrained",
                        text="weights=pretrained",
                    ),
                )
            )
            .with_changes(
                "weights_sha256", doc="sha256 over the SavedModel directory (none is published)"
            )
        )

    def __init__(self, *, handle, **kw):
        self.handle = handle
        super().__init__(**kw)

    @classmethod
    def official_artifact(cls, handle: str = TFHUB_DEFAULT_HANDLE, **knobs) -> W.OfficialArtifact:
        local = Path(handle).expanduser()
        if local.is_dir():  # a local SavedModel directory given as the handle
            return W.OfficialArtifact(
                "tfhub", local.name, handle, "", str(local.parent), is_dir=True
            )
        return W.tfhub_artifact(handle)

    def _artifact_knobs(self) -> dict:
        return {"handle": self.handle}

    def _load(self, weights) -> None:
        tf = import_tensorflow()
        self.tf = tf
        try:
            import warnings

            with warnings.catch_warnings():  # tensorflow_hub 0.16 imports pkg_resources
                warnings.simplefilter("ignore", UserWarning)
                import tensorflow_hub as hub
        except ImportError:
            raise ResourceUnavailable(
                "the tfhub backbone needs tensorflow_hub: pip install -e '.[tf]'"
            ) from None
        if weights.state is not None:
            # cache.enabled=false: the SavedModel is exported to a temporary dir, loaded (its
            # variables are read into memory), and the dir removed
            with W.scratch_cache(self.cache_dir) as root:
                path = savedmodel_for_state(weights.state, self.input_size, root)
                obj = self._hub_load(hub, path)
            if W.disk_cache_off(self.cache_dir):
                path = Path("(built in memory: cache.enabled=false)")
        else:
            path = weights.path
            if not (Path(path) / "saved_model.pb").exists():
                raise HarnessError(
                    f"tfhub: {path} is not a SavedModel directory (no saved_model.pb)"
                )
            obj = self._hub_load(hub, path)
        self._obj = obj
        self.network_file = Path(path)
        self._fn = self._find_callable(obj, path)
        probe = self._call(np.zeros((1, self.input_size, self.input_size, 3), np.float32))
        if probe.shape[-1] != self.raw_outputs:
            raise HarnessError(
                f"tfhub: {path} outputs {probe.shape[-1]} values; expected 1001 ImageNet logits"
            )
        self._bias = self._find_bias(obj)
        if weights.spec.kind == "pretrained":
            self.weights_info["handle"] = self.handle

    @staticmethod
    def _hub_load(hub, path):
        try:
            return hub.load(str(path))
        except Exception as exc:
            raise HarnessError(
                f"tfhub: cannot load SavedModel {path} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else ''})"
            ) from None

    def attack_target(self, settings):
        from .tf_attack import TFEagerAttackTarget

        return TFEagerAttackTarget(
            self, settings, self._fn, None if self.bias else self._bias, self._columns
        )

    def _find_callable(self, obj, path):
        tf = self.tf
        if callable(obj):
            return tf.function(lambda x: obj(x))
        sigs = getattr(obj, "signatures", {})
        if "serving_default" in sigs:
            sig = sigs["serving_default"]

            def call(x):
                out = sig(x)
                return next(iter(out.values())) if isinstance(out, dict) else out

            return call
        raise HarnessError(f"tfhub: {path} is neither callable nor has a serving_default signature")

    def _find_bias(self, obj):
        cands = [
            v
            for v in getattr(obj, "variables", [])
            if tuple(v.shape) == (self.raw_outputs,) and "bias" in v.name.lower()
        ]
        return np.asarray(cands[-1].numpy(), dtype=np.float64) if cands else None

    def _call(self, x: np.ndarray) -> np.ndarray:
        out = self._fn(self.tf.constant(x))
        return np.asarray(out.numpy() if hasattr(out, "numpy") else out)

    def _forward(self, images, want_features):
        s = self.input_size
        x = rs.resize_numpy(images, (s, s), self.resize_method, bool(self.align_corners))
        scale, offset = self.normalize_from_255()
        logits = self._call(
            (x * scale.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
        )
        if not self.bias:
            if self._bias is None:
                raise HarnessError(
                    "tfhub: bias=false needs the final layer's bias, which this SavedModel does "
                    "not expose"
                )
            logits = logits - self._bias.astype(logits.dtype)
        return logits, None

    def extra_knobs(self) -> dict:
        return {"handle": self.handle}

    def extra_provenance(self) -> dict:
        return {"network_file": str(self.network_file)}

    def framework_versions(self) -> dict:
        return {
            "tensorflow": package_version("tensorflow"),
            "tensorflow-hub": package_version("tensorflow-hub"),
        }
