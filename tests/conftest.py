"""Shared test setup.

torch (and the triton it loads) must initialise before TensorFlow in one process, or the
process segfaults (../shared/environment-notes.md): import torch first when it is installed.
"""

import importlib.util
import os
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core (pytest-xdist): each worker's frameworks and
    # BLAS get one thread (and so do the subprocesses it starts), or two workers' thread pools
    # fight over two cores.  Before torch/TensorFlow/numpy read them; a caller's values win.
    for _var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    ):
        os.environ.setdefault(_var, "1")
# Everything the harness caches (random-weight exports, logits) goes to a throwaway directory,
# never the user's ~/.cache; and no test may see real pretrained weights by accident.
_TMP = tempfile.mkdtemp(prefix="inception-note-tests-")
os.environ["INCEPTION_NOTE_CACHE"] = os.path.join(_TMP, "cache")
os.environ["TORCH_HOME"] = os.path.join(_TMP, "torch_home")
os.environ["KERAS_HOME"] = os.path.join(_TMP, "keras_home")
os.environ["TFHUB_CACHE_DIR"] = os.path.join(_TMP, "tfhub")
# dinov2 / clip (timm, open_clip): the Hugging Face hub cache
os.environ["HF_HOME"] = os.path.join(_TMP, "hf_home")
os.environ["HF_HUB_CACHE"] = os.path.join(_TMP, "hf_home", "hub")
os.environ.pop("INCEPTION_NOTE_WEIGHTS", None)
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # noqa: SIM105
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:  # core-only installs
    pass


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_torch = pytest.mark.skipif(not has("torch"), reason="torch not installed")
needs_tf = pytest.mark.skipif(
    not (has("tensorflow") and has("keras")), reason="tensorflow/keras not installed"
)


@pytest.fixture(scope="session")
def rnd_images():
    """A few uint8 images at CIFAR size."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def tv_net():
    from harness import backbones

    return backbones.load_backbone("torchvision", weights="random:0", input_size=75, batch_size=4)


@pytest.fixture(scope="session")
def keras_net():
    from harness import backbones

    return backbones.load_backbone("keras", weights="random:0", input_size=75, batch_size=4)


@pytest.fixture(scope="session")
def tfhub_net():
    from harness import backbones

    return backbones.load_backbone("tfhub", weights="random:0", input_size=75, batch_size=4)


@pytest.fixture(scope="session")
def tf2015_net():
    from harness import backbones

    return backbones.load_backbone("tf2015", weights="random:0", batch_size=4)
