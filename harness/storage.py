"""Where the harness keeps files and how it names their contents (a bottom layer: imports
nothing of the project).

The cache root (``cache.dir``, ``$INCEPTION_NOTE_CACHE``; :data:`NO_DISK_CACHE` for none), a
scratch directory when the cache is off, the weights directory, and the hashes every record
carries: md5/sha256 of files and directories, sha256 of a state dict's arrays.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .provenance import sha256_file, sha256_tree

#: ``cache_dir=NO_DISK_CACHE``: no on-disk cache (``cache.enabled=false``); a string, so that it
#: passes through config dicts and the backbones' ``cache_dir`` setting unchanged
NO_DISK_CACHE = ":memory:"

#: the fix named when a cache directory cannot be written
CACHE_FIX = "set cache.dir=<a writable directory> or cache.enabled=false"


def disk_cache_off(cache_dir) -> bool:
    """True when ``cache_dir`` asks for no on-disk cache (:data:`NO_DISK_CACHE`, or ``False``)."""
    return cache_dir is False or (isinstance(cache_dir, str) and cache_dir == NO_DISK_CACHE)


def cache_root(cache_dir=None) -> Path:
    """The harness's cache directory (``cache.dir``; default ``$INCEPTION_NOTE_CACHE``).

    With :data:`NO_DISK_CACHE` there is none: callers check :func:`disk_cache_off` first (or use
    :func:`scratch_cache`); asking anyway is a bug, so it raises rather than write somewhere.
    """
    if disk_cache_off(cache_dir):
        raise RuntimeError(
            "cache_root(NO_DISK_CACHE): the on-disk cache is disabled (cache.enabled=false); "
            "build in memory or in scratch_cache() instead"
        )
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("INCEPTION_NOTE_CACHE", "~/.cache/inception-note")).expanduser()


@contextlib.contextmanager
def scratch_cache(cache_dir=None):
    """A cache root for files that must exist on disk while they are used (a graph, a
    SavedModel): ``cache_dir`` itself, or with :data:`NO_DISK_CACHE` a fresh temporary directory
    that is removed when the block ends (pass it on as the ``cache_dir`` of the builder)."""
    if not disk_cache_off(cache_dir):
        yield cache_dir
        return
    with tempfile.TemporaryDirectory(prefix="inception-note-scratch-") as tmp:
        yield tmp


def harness_weights_dir() -> Path:
    """Where the harness looks for files with no ecosystem cache of their own (the 2015 tgz)."""
    base = os.environ.get("INCEPTION_NOTE_WEIGHTS") or os.path.join(
        os.environ.get("INCEPTION_NOTE_CACHE", "~/.cache/inception-note"), "weights"
    )
    return Path(base).expanduser()


def file_hashes(path: Path) -> dict:
    """sha256 (and md5 for files) of a weights file or directory."""
    if path.is_dir():
        return {"sha256": sha256_tree(path), "md5": None}
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def state_sha256(sd: dict) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes (what a network computes with)."""
    h = hashlib.sha256()
    for k in sorted(sd):
        a = np.ascontiguousarray(np.asarray(sd[k]))
        h.update(f"{k}|{a.dtype.str}|{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sha256_of(path) -> str:
    p = Path(path)
    return sha256_tree(p) if p.is_dir() else sha256_file(p)
