"""Atomic file writes and their one-line errors: the bottom layer every other layer may use.

A file is written to a temporary file in the same directory and renamed onto its path only on
success (``os.replace``), so an interrupted run never leaves a half-written file and a failed
write leaves no temporary file.  A location that cannot be written (disk full, quota,
permissions, read-only file system, a path under a regular file) is one
:class:`~harness.errors.HarnessError` line naming the path and the fix (:func:`write_error`).
Imports nothing of the project but its error types, and neither pandas nor matplotlib: the
backbones and caches write through it without loading the table and figure stack.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import HarnessError

#: errors of a write that the user fixes (space, permissions, a wrong directory), not bugs
WRITE_ERRNOS = frozenset(
    getattr(errno, n)
    for n in ("ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST")
    if hasattr(errno, n)
)
#: of those, the ones that can only come from writing (also raised while filling a temp file)
_FULL_ERRNOS = frozenset(
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, n)
)


def _blocking_file(path: Path) -> Path | None:
    """The first existing component of ``path`` that is not a directory (None: no such one)."""
    for p in (path, *path.parents):
        try:
            if p.exists():
                return None if p.is_dir() else p
        except OSError:
            continue
    return None


def write_error(path, exc: OSError, fix: str | None = None) -> HarnessError:
    """One line for a write to ``path`` that failed with ``exc``: what happened and the fix.

    ``fix``: what the caller's user can change (e.g. ``set cache.dir=<writable directory>``);
    without it, "write to another directory".
    """
    path = Path(path)
    code = getattr(exc, "errno", None)
    where = path.parent
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        what = "the disk is full (or over quota)"
        todo = "free space on that disk"
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
        todo = f"make {where} writable"
    elif code == errno.EROFS:
        what = "the file system is read-only"
        todo = "write to a writable file system"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        block = _blocking_file(path)
        what = f"{block or where} is a file, not a directory"
        todo = "choose another directory"
    else:
        what = exc.strerror or type(exc).__name__
        todo = "check that directory"
    return HarnessError(
        f"cannot write {path}: {what}; {todo}, or {fix or 'write to another directory'}"
    )


def is_write_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def ensure_dir(path, fix: str | None = None) -> Path:
    """``mkdir -p path``; an unwritable location is one :func:`write_error` line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if not is_write_error(exc):
            raise
        raise write_error(path / ".", exc, fix) from None
    return path


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None, fix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file is removed whatever happens.  Disk full, permissions, a read-only file
    system or a parent that is a regular file raise :func:`write_error` (``fix``: the caller's
    remedy) instead of a bare ``OSError``.
    """
    path = Path(path)
    tmp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
            )
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are shared
        except OSError as exc:
            if not is_write_error(exc):
                raise
            raise write_error(path, exc, fix) from None
        try:
            yield Path(tmp)
        except OSError as exc:
            # filling the temporary file: disk full, or a write error about that very file
            if exc.errno in _FULL_ERRNOS or (
                is_write_error(exc) and exc.filename in (None, tmp, Path(tmp))
            ):
                raise write_error(path, exc, fix) from None
            raise
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if not is_write_error(exc):
                raise
            raise write_error(path, exc, fix) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write_text(path, text: str, fix: str | None = None) -> Path:
    with atomic_path(path, fix=fix) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path, data: bytes, fix: str | None = None) -> Path:
    with atomic_path(path, fix=fix) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def json_text(obj) -> str:
    """``obj`` as the JSON text :func:`write_json` writes (NaN/inf and numpy values mapped)."""
    return json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n"


def write_json(path, obj, fix: str | None = None) -> Path:
    return atomic_write_text(path, json_text(obj), fix=fix)
