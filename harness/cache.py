"""Logits (and pool features) computed once per (images, backbone, knobs) and kept on disk.

Key = sha256 over the image source's fingerprint (which samples, in which order, at which
resolution), the backbone's cache identity (name, weights sha256, every knob, framework
versions) and the cache format version.  Layout under ``root`` (default
``$INCEPTION_NOTE_CACHE/logits``, i.e. ``~/.cache/inception-note/logits``)::

    <key[:2]>/<key>/meta.json          identity, provenance, sha256 of each array, complete flag
    <key[:2]>/<key>/logits.npy         float32 N x C           (when complete)
    <key[:2]>/<key>/pool.npy           float32 N x 2048        (when features were asked for)
    <key[:2]>/<key>/chunks/<start>.npz one chunk while a run is in progress (resumable)

Every file is written atomically.  A complete entry whose arrays do not match their recorded
sha256 (or cannot be read) is reported with a warning and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import results
from .errors import HarnessError
from .provenance import sha256_file

CACHE_VERSION = 1


def default_root() -> Path:
    base = os.environ.get("INCEPTION_NOTE_CACHE", "~/.cache/inception-note")
    return Path(base).expanduser() / "logits"


@dataclass
class CachedOutputs:
    logits: np.ndarray
    pool: np.ndarray | None
    key: str
    meta: dict
    from_cache: bool
    n_computed: int
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)


class LogitsCache:
    def __init__(self, root=None, chunk_size: int = 1024, enabled: bool = True):
        self.root = Path(root).expanduser() if root else default_root()
        if int(chunk_size) < 1:
            raise HarnessError(f"cache chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.enabled = enabled

    # ------------------------------------------------------------------ keys
    @staticmethod
    def identity(source, backbone) -> dict:
        return {"cache_version": CACHE_VERSION, "images": source.fingerprint(),
                "n_samples": len(source), "backbone": backbone.cache_identity()}

    def key(self, source, backbone) -> str:
        ident = self.identity(source, backbone)
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    # ------------------------------------------------------------------ read
    def _load_complete(self, d: Path, want_pool: bool):
        meta_path = d / "meta.json"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            warnings.warn(f"logits cache: unreadable {meta_path}; recomputing", stacklevel=3)
            return None
        if not meta.get("complete"):
            return None
        if want_pool and "pool.npy" not in meta.get("arrays", {}):
            return None  # computed without features: recompute with them
        out = {}
        for name, sha in meta.get("arrays", {}).items():
            p = d / name
            try:
                if not p.exists() or sha256_file(p) != sha:
                    raise ValueError("sha256 mismatch")
                out[name] = np.load(p)
            except (OSError, ValueError) as exc:
                warnings.warn(f"logits cache: entry {d.name} is corrupt ({name}: {exc}); recomputing",
                              stacklevel=3)
                return None
        return meta, out

    @staticmethod
    def _is_complete(d: Path) -> bool:
        try:
            return bool(json.loads((d / "meta.json").read_text()).get("complete"))
        except (OSError, json.JSONDecodeError):
            return True  # unreadable metadata: treat as a broken complete entry

    # ------------------------------------------------------------------ compute
    def get(self, backbone, source, features: bool = False, progress: bool = True,
            recompute: bool = False) -> CachedOutputs:
        """Logits (and pool features) for every sample of ``source`` under ``backbone``."""
        if features and not backbone.has_features:
            raise HarnessError(f"backbone {backbone.name} exposes no pool features (only logits)")
        key = self.key(source, backbone)
        d = self.entry_dir(key)
        t0 = time.perf_counter()
        if self.enabled and not recompute:
            hit = self._load_complete(d, features)
            if hit is not None:
                meta, arrs = hit
                return CachedOutputs(arrs["logits.npy"], arrs.get("pool.npy"), key, meta, True, 0,
                                     time.perf_counter() - t0, meta.get("provenance", {}))
        if d.exists() and (recompute or self._is_complete(d)):
            # forced, or a complete entry that failed to load (corrupt / lacks features): redo it;
            # an incomplete entry keeps its chunks and is resumed
            shutil.rmtree(d, ignore_errors=True)
        return self._compute(backbone, source, key, d, features, progress, t0)

    def _compute(self, backbone, source, key, d: Path, features, progress, t0) -> CachedOutputs:
        n = len(source)
        prov = {"backbone": backbone.provenance(), "images": source.provenance()}
        ident = self.identity(source, backbone)
        chunks_dir = d / "chunks"
        if self.enabled:
            chunks_dir.mkdir(parents=True, exist_ok=True)
            results.write_json(d / "meta.json", {"identity": ident, "complete": False,
                                                 "features": features, "provenance": prov})
        starts = list(range(0, n, self.chunk_size))
        logits_parts, pool_parts = {}, {}
        done = 0
        for s in starts:
            part = self._load_chunk(chunks_dir / f"{s:09d}.npz", features) if self.enabled else None
            if part is not None:
                logits_parts[s], pool_parts[s] = part
                done += len(part[0])
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, initial=done, unit="img", desc=f"{backbone.name} logits", smoothing=0.1,
                       leave=False)
        computed = 0
        try:
            for s in starts:
                if s in logits_parts:
                    continue
                e = min(s + self.chunk_size, n)
                lg, pl = [], []
                for batch in source.batches_range(s, e, backbone.batch_size):
                    a, b = backbone.forward(batch, features=features)
                    lg.append(a)
                    if features:
                        pl.append(b)
                    if bar is not None:
                        bar.update(len(batch))
                logits_parts[s] = np.concatenate(lg)
                pool_parts[s] = np.concatenate(pl) if features else None
                computed += e - s
                if self.enabled:
                    self._save_chunk(chunks_dir / f"{s:09d}.npz", logits_parts[s], pool_parts[s])
        finally:
            if bar is not None:
                bar.close()
        logits = np.concatenate([logits_parts[s] for s in starts])
        pool = np.concatenate([pool_parts[s] for s in starts]) if features else None
        if logits.shape[0] != n:
            raise HarnessError(f"logits cache: computed {logits.shape[0]} rows for {n} samples")
        meta = {"identity": ident, "complete": True, "features": features, "provenance": prov,
                "created": results.prov.now_iso(), "arrays": {}}
        if self.enabled:
            for name, arr in (("logits.npy", logits), ("pool.npy", pool)):
                if arr is None:
                    continue
                with results.atomic_path(d / name) as tmp:
                    np.save(tmp, arr)
                meta["arrays"][name] = sha256_file(d / name)
            results.write_json(d / "meta.json", meta)
            shutil.rmtree(chunks_dir, ignore_errors=True)
        return CachedOutputs(logits, pool, key, meta, False, computed, time.perf_counter() - t0, prov)

    @staticmethod
    def _save_chunk(path: Path, logits, pool) -> None:
        with results.atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                if pool is None:
                    np.savez(f, logits=logits)
                else:
                    np.savez(f, logits=logits, pool=pool)

    @staticmethod
    def _load_chunk(path: Path, features: bool):
        if not path.exists():
            return None
        try:
            with np.load(path) as z:
                lg = z["logits"]
                pl = z["pool"] if "pool" in z.files else None
        except Exception:
            warnings.warn(f"logits cache: unreadable chunk {path}; recomputing it", stacklevel=3)
            return None
        if features and pl is None:
            return None
        return lg, pl
