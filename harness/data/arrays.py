"""``arrays``: samples saved as ``.npy`` or ``.npz`` (N x H x W x 3 or N x 3 x H x W).

Memory-mapped: a ``.npy`` file and an uncompressed ``.npz`` member are mapped in place; a
compressed ``.npz`` member is extracted once to a ``.npy`` in the cache directory and mapped
from there.  uint8 arrays are used as they are; float arrays need a declared ``value_range``
and every batch is checked against it.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..backbones.weights import cache_root
from ..config import as_bool
from ..errors import HarnessError, MissingInputError
from ..results import atomic_path
from .base import ImageSource, normalize_value_range, to_uint8


def default_cache_dir() -> Path:
    return cache_root()


def _open_npz_member(path: Path, key: str | None):
    """Memory-map one member of an .npz; returns (array, key, all member names)."""
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
            return arr, key, members
    # compressed: extract once (keyed by the file's content) and map the copy
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    target = default_cache_dir() / "npz_extracted" / f"{h.hexdigest()[:24]}_{key}.npy"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if not target.exists() or target.stat().st_size != info.file_size:
            # a per-process temporary name: concurrent readers never share a half-written file
            with atomic_path(target) as tmp, zf.open(info) as src, open(tmp, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
    return np.load(target, mmap_mode="r"), key, members


class ArraySource(ImageSource):
    kind = "arrays"

    def __init__(
        self,
        path: str,
        key: str | None = None,
        value_range: str | None = None,
        layout: str = "auto",
        labels_key: str | None = "labels",
        trust_value_range: bool = False,
        **kw,
    ):
        super().__init__(**kw)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise MissingInputError(
                f"arrays: file {self.path} does not exist; pass dataset.path=<.npy or .npz>"
            )
        self.value_range = value_range = normalize_value_range(value_range)
        self.trust_value_range = as_bool(trust_value_range, "trust_value_range")
        self._labels_arr = None
        try:
            if self.path.suffix == ".npz":
                arr, self.key, members = _open_npz_member(self.path, key)
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
        }
