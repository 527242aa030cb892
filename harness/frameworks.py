"""Framework import guards (a bottom layer: imports nothing of the project but its errors).

TensorFlow is imported after torch and torchvision (the other order segfaults), its C++ log
lines silenced unless asked for; a missing framework is one line naming the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

from .errors import HarnessError, ResourceUnavailable


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
        raise ResourceUnavailable(
            "this backbone needs TensorFlow: pip install -e '.[tf]'"
        ) from None
    return tf


def import_torch():
    try:
        import torch
    except ImportError:
        raise ResourceUnavailable(
            "this backbone needs PyTorch: pip install -e '.[torch]'"
        ) from None
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
        raise ResourceUnavailable(
            "the torchvision backbone needs torchvision: pip install -e '.[torch]'"
        ) from None
    return torchvision
