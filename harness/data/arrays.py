"""``arrays``: samples saved as ``.npy`` or ``.npz`` (N x H x W x 3 or N x 3 x H x W).

Memory-mapped: a ``.npy`` file and an uncompressed ``.npz`` member are mapped in place; a
compressed ``.npz`` member is extracted once to ``<cache_dir>/npz/`` (the run's ``cache.dir``;
``None``: the default cache directory) and mapped from there.  The extracted file is named by
the sha256 of the ``.npz`` and the member name, and checked against the size and CRC-32 the zip
records for the member before every use (a file that fails is extracted again).  With
``cache_dir=NO_DISK_CACHE`` (``cache.enabled=false``) the member is extracted to a temporary
file that is unlinked as soon as it is mapped, and no cache directory is read or written.
uint8 arrays are used as they are; float arrays need a declared ``value_range`` and every batch
is checked against it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import settings as S
from ..atomic_io import atomic_path, ensure_dir, is_write_error, write_error
from ..errors import HarnessError, MissingInputError
from ..provenance import sha256_file
from ..storage import CACHE_FIX, cache_root, disk_cache_off
from .base import (
    ImageSource,
    normalize_value_range,
    to_uint8,
    trust_range_setting,
    value_range_setting,
)

#: part of the name of every extracted member: bump when the extraction changes
EXTRACT_VERSION = 1
#: how a member is described when no cache directory holds it
IN_TEMPORARY_FILE = "temporary file (unlinked once mapped; on-disk cache disabled)"


def default_cache_dir() -> Path:
    return cache_root()


def extracted_path(root: Path, npz_sha256: str, member: str) -> Path:
    """Where member ``member`` of the ``.npz`` with content ``npz_sha256`` is extracted."""
    digest = hashlib.sha256(json.dumps([EXTRACT_VERSION, npz_sha256, member]).encode()).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", member)[:40]
    return Path(root) / "npz" / f"{safe}-{digest[:40]}.npy"


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst) -> None:
    with zf.open(info) as src:  # zipfile checks the member's CRC-32 when it reaches the end
        for block in iter(lambda: src.read(1 << 20), b""):
            dst.write(block)


def _matches_member(target: Path, info: zipfile.ZipInfo) -> bool:
    """The extracted file has the member's size and CRC-32 (as the zip records them)."""
    try:
        if target.stat().st_size != info.file_size:
            return False
        crc = 0
        with open(target, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                crc = zlib.crc32(block, crc)
    except OSError:
        return False
    return crc == info.CRC


def _extract_cached(path: Path, zf, info, key: str, cache_dir) -> tuple[np.ndarray, str]:
    """The member extracted under the cache directory (once), checked, memory-mapped."""
    target = extracted_path(cache_root(cache_dir), sha256_file(path), key)
    if not _matches_member(target, info):
        ensure_dir(target.parent, CACHE_FIX)
        # a per-process temporary name: concurrent readers never share a half-written file
        with atomic_path(target, fix=CACHE_FIX) as tmp, open(tmp, "wb") as dst:
            _copy_member(zf, info, dst)
    return np.load(target, mmap_mode="r"), str(target)


def _extract_scratch(path: Path, zf, info, key: str) -> tuple[np.ndarray, str]:
    """The member in a temporary file, memory-mapped, and the file unlinked at once (the
    mapping keeps its pages until it is closed): no cache directory is touched."""
    fix = (
        "set TMPDIR=<a directory with space>, or save the .npz uncompressed (np.savez), "
        "which is mapped in place"
    )
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="inception-note-npz-", suffix=".npy")
        with os.fdopen(fd, "wb") as dst:
            _copy_member(zf, info, dst)
        return np.load(tmp, mmap_mode="r"), IN_TEMPORARY_FILE
    except OSError as exc:
        if not is_write_error(exc):
            raise
        where = Path(tmp or Path(tempfile.gettempdir()) / f"{path.stem}-{key}.npy")
        raise write_error(where, exc, fix) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _open_npz_member(path: Path, key: str | None, cache_dir=None):
    """Memory-map one member of an .npz; returns (array, key, all member names, where a
    compressed member was extracted to, or None when it is mapped in place)."""
    with zipfile.ZipFile(path) as zf:
        members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        if key is None:
            for cand in ("images", "x", "samples", "arr_0"):
                if cand in members:
                    key = cand
                    break
            else:
                if len(members) != 1:
                    raise HarnessError(
                        f"arrays: {path} holds {', '.join(members)}; say which with "
                        "dataset.key=<name>"
                    )
                key = members[0]
        if key not in members:
            raise HarnessError(f"arrays: {path} has no array '{key}' (has {', '.join(members)})")
        info = zf.getinfo(key + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fh)
                header_len = fh.tell()
            # data offset = local file header + name + extra + npy header
            with open(path, "rb") as raw:
                raw.seek(info.header_offset)
                local = raw.read(30)
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
            offset = info.header_offset + 30 + name_len + extra_len + header_len
            arr = np.memmap(
                path,
                dtype=dtype,
                mode="r",
                offset=offset,
                shape=shape,
                order="F" if fortran else "C",
            )
            return arr, key, members, None
        # compressed: extracted (keyed by the file's content and the member) and mapped
        if disk_cache_off(cache_dir):
            arr, where = _extract_scratch(path, zf, info, key)
        else:
            arr, where = _extract_cached(path, zf, info, key, cache_dir)
    return arr, key, members, where


def _no_file(file: Path, path: str) -> str:
    return f"{path}.path: arrays file {file} does not exist; pass {path}.path=<.npy or .npz>"


class ArraySource(ImageSource):
    kind = "arrays"
    summary = (
        "Samples in a .npy/.npz (N x H x W x 3 or N x 3 x H x W); float arrays need value_range."
    )

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting("path", S.Path(), None, "required: dataset.path=<file.npz>", required=True),
            S.Setting(
                "key",
                S.Str(),
                None,
                "npz member (default: images, x, samples, arr_0, or the only one)",
                nullable=True,
            ),
            value_range_setting(
                "0_1 | -1_1 | 0_255 for float arrays (quote -1_1 or not: both work)"
            ),
            S.Setting("layout", S.Choice(("auto", "NHWC", "NCHW")), "auto", "auto | NHWC | NCHW"),
            S.Setting(
                "labels_key",
                S.Str(),
                "labels",
                "npz member with labels, if present (null: none)",
                nullable=True,
            ),
            trust_range_setting(),
            S.Setting(
                "cache_dir",
                S.Path(),
                None,
                "where compressed .npz members are extracted (the run passes cache.dir)",
                nullable=True,
                in_yaml=False,
            ),
            *super().entries(),
        ]

    @classmethod
    def missing_input(cls, params: dict, path: str) -> str | None:
        file = cls.given_path(params, "path")
        return None if file is None or file.is_file() else _no_file(file, path)

    def __init__(
        self,
        *,
        path,
        key,
        value_range,
        layout,
        labels_key,
        trust_value_range,
        cache_dir,
        **kw,
    ):
        """``cache_dir``: where a compressed ``.npz`` member is extracted (``<cache_dir>/npz``;
        None: the default cache directory; ``NO_DISK_CACHE``: a temporary file, nothing cached).
        """
        super().__init__(**kw)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise MissingInputError(_no_file(self.path, "dataset"))
        self.value_range = value_range = normalize_value_range(value_range)
        self.trust_value_range = trust_value_range
        self._labels_arr = None
        self.extracted_to = None
        try:
            if self.path.suffix == ".npz":
                arr, self.key, members, self.extracted_to = _open_npz_member(
                    self.path, key, cache_dir
                )
                if labels_key and labels_key in members and labels_key != self.key:
                    with np.load(self.path) as z:
                        self._labels_arr = np.asarray(z[labels_key])
            elif self.path.suffix == ".npy":
                arr, self.key = np.load(self.path, mmap_mode="r"), None
            else:
                raise HarnessError(f"arrays: {self.path} must end in .npy or .npz")
        except HarnessError:
            raise
        except Exception as exc:
            raise HarnessError(
                f"arrays: cannot read {self.path} ({type(exc).__name__}: {exc})"
            ) from None
        if arr.ndim != 4:
            raise HarnessError(
                f"arrays: {self.path} holds shape {arr.shape}; need N x H x W x 3 or N x 3 x H x W"
            )
        if layout == "auto":
            layout = "NHWC" if arr.shape[-1] == 3 else "NCHW" if arr.shape[1] == 3 else None
            if layout is None:
                raise HarnessError(
                    f"arrays: {self.path} shape {arr.shape} has no RGB axis of size 3 "
                    "(last for N x H x W x 3, second for N x 3 x H x W)"
                )
        if layout not in ("NHWC", "NCHW"):
            raise HarnessError(f"arrays: layout must be auto, NHWC or NCHW, got {layout!r}")
        self.layout = layout
        self.arr = arr
        if arr.dtype != np.uint8 and np.issubdtype(arr.dtype, np.floating) and value_range is None:
            raise HarnessError(
                f"arrays: {self.path} holds {arr.dtype} images; declare their range with "
                "dataset.value_range=0_1, -1_1 or 0_255"
            )
        h, w = (arr.shape[1], arr.shape[2]) if layout == "NHWC" else (arr.shape[2], arr.shape[3])
        if min(h, w) < 1:
            raise HarnessError(f"arrays: {self.path} images have size {h}x{w}")
        self._hw = (int(h), int(w))
        if len(arr):
            # fail early on a range mismatch, and cross-check the declared range on a sample
            self._convert(
                np.asarray(arr[: min(len(arr), 1024)]), cross_check=not self.trust_value_range
            )
        if self._labels_arr is not None and len(self._labels_arr) != len(arr):
            raise HarnessError(
                f"arrays: {labels_key} has {len(self._labels_arr)} entries for {len(arr)} images"
            )
        self._content_sha: str | None = None

    def _convert(self, x: np.ndarray, cross_check: bool = False) -> np.ndarray:
        if self.layout == "NCHW":
            x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(
            to_uint8(x, self.value_range, f"arrays {self.path.name}", check_range=cross_check)
        )

    def _total(self) -> int:
        return int(self.arr.shape[0])

    def _read(self, idx):
        # sorted reads of a memmap are sequential; restore the requested order afterwards
        order = np.argsort(idx, kind="stable")
        block = np.asarray(self.arr[idx[order]])
        out = np.empty_like(block)
        out[order] = block
        return self._convert(out)

    def _all_labels(self):
        return self._labels_arr

    def _identity(self) -> dict:
        if self._content_sha is None:
            h = hashlib.sha256()
            step = max(
                1, (64 << 20) // max(1, int(np.prod(self.arr.shape[1:])) * self.arr.dtype.itemsize)
            )
            for s in range(0, len(self.arr), step):
                h.update(np.ascontiguousarray(self.arr[s : s + step]).tobytes())
            self._content_sha = h.hexdigest()
        return {
            "array_sha256": self._content_sha,
            "dtype": str(self.arr.dtype),
            "shape": list(self.arr.shape),
            "layout": self.layout,
            "value_range": self.value_range,
        }

    def _resolution(self):
        return self._hw

    def _extra_provenance(self) -> dict:
        return {
            "path": str(self.path),
            "key": self.key,
            "stored_dtype": str(self.arr.dtype),
            "layout": self.layout,
            "value_range": self.value_range or "uint8 0..255",
            **({"extracted_to": self.extracted_to} if self.extracted_to else {}),
        }
