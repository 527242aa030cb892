"""Where a number came from: package versions, git commit, host, timestamps.

Versions are read from installed metadata, so asking for them never imports a framework.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "hydra-core",
    "omegaconf",
    "pillow",
    "torch",
    "torchvision",
    "tensorflow",
    "keras",
    "tensorflow-hub",
    "tf-keras",
)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def package_versions() -> dict:
    """Installed versions of the packages that can move a number (None = not installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        out[name] = package_version(name)
    try:
        out["inception-note"] = metadata.version("inception-note")
    except metadata.PackageNotFoundError:
        out["inception-note"] = None
    return out


@lru_cache(maxsize=1)
def git_state() -> dict:
    """Commit of the harness checkout and whether tracked files differ from it."""

    def _git(*args):
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def host_info() -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "argv": list(sys.argv),
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (weights files are ~100 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_tree(path) -> str:
    """sha256 over a directory's relative file names and contents (e.g. a SavedModel)."""
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()
