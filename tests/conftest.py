"""Shared test setup.

torch (and the triton it loads) must initialise before TensorFlow in one process, or the
process segfaults (../shared/environment-notes.md): import torch first when it is installed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # noqa: SIM105
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:  # torch-only or core-only installs
    pass

import importlib.util

import pytest


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_torch = pytest.mark.skipif(not has("torch"), reason="torch not installed")
needs_tf = pytest.mark.skipif(not (has("tensorflow") and has("keras")), reason="tensorflow/keras not installed")
