"""Logits (and pool features) computed once per (images, backbone, knobs) and kept on disk.

Key = sha256 over the image source's fingerprint (which samples, in which order, at which
resolution, and for generated images the generating code), the backbone's cache identity
(name, sha256 of the weights actually loaded, every knob that changes the output, framework
versions) and the cache format version.  Layout under ``<cache.dir>/logits``::

    <key[:2]>/<key>/meta.json                    identity and provenance (written once)
    <key[:2]>/<key>/chunks/<start>-<stop>.npz    rows start..stop-1 while a run is in progress
    <key[:2]>/<key>/logits.npy, pool.npy         the sealed arrays
    <key[:2]>/<key>/sealed.json                  written last: sha256 and shape of each array
    <key[:2]>/<key>/locks/                       one lock per chunk, one for sealing

Integrity: every chunk carries its entry key, its row range and the sha256 of its arrays, and is
checked before it is used or sealed; non-finite values are never written; a sealed entry is
checked against ``sealed.json`` before use.  Sealing writes every array and ``sealed.json`` to
temporary files first and renames them into place only when all of them are complete, so a
failed seal (disk full) leaves the chunks and nothing half-sealed; an unwritable ``cache.dir``
or a full disk is one :class:`~harness.errors.HarnessError` line naming the path and the fix.
A chunk that fails a check is moved to ``bad/`` and recomputed.  Chunks are named by their row
range, so a resumed run with another ``chunk_size`` uses whatever rows are already there.
``enabled=false`` computes in memory and reads, writes and deletes nothing.

Concurrency: many processes (Hydra multirun jobs, SLURM array tasks on a shared filesystem) may
fill one entry at once.  A process computes a chunk only while holding that chunk's file lock
(``filelock``; released by the OS if the process dies), so no chunk is computed twice while its
owner is alive, and a killed job leaves every finished chunk for the next one.  Files are
written under unique temporary names in their own directory and renamed into place (no rename
across devices).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from . import results
from .backbones.weights import CACHE_FIX, cache_root
from .errors import HarnessError
from .provenance import now_iso, sha256_file

CACHE_VERSION = 2
WAIT_SECONDS = 0.5


def default_root() -> Path:
    return cache_root() / "logits"


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


def _sha(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _finite(*arrays) -> bool:
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


def _from_sealed(hit, key: str, computed: int, t0: float, prov) -> CachedOutputs:
    """A sealed entry as the caller's result (``prov``: the fallback when the entry has none)."""
    rec, arrs = hit
    return CachedOutputs(
        arrs["logits"],
        arrs.get("pool"),
        key,
        rec,
        True,
        computed,
        time.perf_counter() - t0,
        rec["provenance"] if prov is None else rec.get("provenance", prov),
    )


class LogitsCache:
    def __init__(self, root=None, chunk_size: int = 1024, enabled: bool = True):
        self.root = Path(root).expanduser() if root else default_root()
        if isinstance(chunk_size, bool) or int(chunk_size) < 1:
            raise HarnessError(f"cache chunk_size must be a positive integer, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.enabled = bool(enabled)

    # ------------------------------------------------------------------ keys
    @staticmethod
    def identity(source, backbone) -> dict:
        return {
            "cache_version": CACHE_VERSION,
            "images": source.fingerprint(),
            "n_samples": len(source),
            "backbone": backbone.cache_identity(),
        }

    def key(self, source, backbone) -> str:
        ident = self.identity(source, backbone)
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    # ------------------------------------------------------------------ sealed entries
    def _load_sealed(self, d: Path, want_pool: bool, warn: bool = True):
        sealed = d / "sealed.json"
        if not sealed.exists():
            return None
        try:
            rec = json.loads(sealed.read_text())
            arrays = rec["arrays"]
        except (OSError, json.JSONDecodeError, KeyError):
            if warn:
                warnings.warn(f"logits cache: unreadable {sealed}; recomputing", stacklevel=3)
            return None
        if want_pool and "pool" not in arrays:
            return None  # sealed without features: computed again with them
        out = {}
        for name, info in arrays.items():
            try:
                arr = np.load(d / f"{name}.npy")
                if _sha(arr) != info["sha256"]:
                    raise ValueError("sha256 mismatch")
            except (OSError, ValueError, KeyError) as exc:
                if warn:
                    warnings.warn(
                        f"logits cache: entry {d.name} is corrupt ({name}: {exc}); recomputing it",
                        stacklevel=3,
                    )
                return None
            out[name] = arr
        return rec, out

    # ------------------------------------------------------------------ public
    def get(
        self, backbone, source, features: bool = False, progress: bool = True, label: str = ""
    ) -> CachedOutputs:
        """Logits (and pool features) for every sample of ``source`` under ``backbone``."""
        if features and not backbone.has_features:
            raise HarnessError(f"backbone {backbone.name} exposes no pool features (only logits)")
        t0 = time.perf_counter()
        enabled = self.enabled and getattr(source, "cacheable", True)
        key = self.key(source, backbone)
        prov = {"backbone": backbone.provenance(), "images": source.provenance()}
        if not enabled:
            logits, pool, n = self._compute_in_memory(backbone, source, features, progress, label)
            return CachedOutputs(
                logits,
                pool,
                key,
                {"identity": self.identity(source, backbone)},
                False,
                n,
                time.perf_counter() - t0,
                prov,
            )
        d = self.entry_dir(key)
        hit = self._load_sealed(d, features)
        if hit is not None:
            return _from_sealed(hit, key, 0, t0, prov)
        return self._compute(backbone, source, key, d, features, progress, label, prov, t0)

    # ------------------------------------------------------------------ computing
    def _bar(self, progress, total, initial, backbone, label):
        if not progress:
            return None
        from tqdm.auto import tqdm

        desc = f"{label + ': ' if label else ''}{backbone.name} logits"
        return tqdm(total=total, initial=initial, unit="img", desc=desc, smoothing=0.1, leave=False)

    def _rows(self, backbone, source, start, stop, features, bar):
        lg, pl = [], []
        for batch in source.batches_range(start, stop, backbone.batch_size):
            a, b = backbone.forward(batch, features=features)
            lg.append(a)
            if features:
                pl.append(b)
            if bar is not None:
                bar.update(len(batch))
        logits = np.concatenate(lg)
        pool = np.concatenate(pl) if features else None
        if logits.shape[0] != stop - start:
            raise RuntimeError(f"computed {logits.shape[0]} rows for samples {start}..{stop - 1}")
        if not _finite(logits, pool):
            raise HarnessError(
                f"backbone {backbone.name} produced NaN/inf for samples "
                f"{start}..{stop - 1}; nothing was cached"
            )
        return logits, pool

    def _compute_in_memory(self, backbone, source, features, progress, label):
        n = len(source)
        bar = self._bar(progress, n, 0, backbone, label)
        try:
            logits, pool = self._rows(backbone, source, 0, n, features, bar)
        finally:
            if bar is not None:
                bar.close()
        return logits, pool, n

    def _compute(self, backbone, source, key, d, features, progress, label, prov, t0):
        n = len(source)
        ident = self.identity(source, backbone)
        for sub in ("chunks", "locks", "bad"):
            results.ensure_dir(d / sub, CACHE_FIX)
        if not (d / "meta.json").exists():
            results.write_json(
                d / "meta.json",
                {"identity": ident, "provenance": prov, "created": now_iso()},
                fix=CACHE_FIX,
            )
        grid = [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]
        have = self._scan(d, features)
        done0 = sum(min(e, n) - s for s, e in _merge(list(have)))
        bar = self._bar(progress, n, done0, backbone, label)
        computed = 0
        try:
            while True:
                hit = self._load_sealed(d, features, warn=False)  # finished by another process?
                if hit is not None:
                    return _from_sealed(hit, key, computed, t0, None)
                have = self._scan(d, features)
                todo = [r for r in grid if not _covered(r, have)]
                if not todo:
                    parts = self._assemble(d, key, have, n, features)
                    if parts is not None:
                        break
                    continue  # a chunk failed its check and was moved aside: compute it again
                busy = []
                for s, e in todo:
                    lock = FileLock(str(d / "locks" / f"{s:09d}.lock"))
                    try:
                        _acquire(lock, timeout=0)
                    except Timeout:
                        busy.append(lock)
                        continue
                    try:
                        if _covered((s, e), self._scan(d, features)):
                            continue
                        logits, pool = self._rows(backbone, source, s, e, features, bar)
                        self._save_chunk(d, key, s, e, logits, pool)
                        computed += e - s
                    finally:
                        lock.release()
                if busy and len(busy) == len(todo):
                    # every missing chunk is being computed by another process: wait for one
                    with busy[0].acquire(timeout=None, poll_interval=WAIT_SECONDS):
                        pass
        finally:
            if bar is not None:
                bar.close()
        logits, pool = parts
        rec = self._seal(d, ident, prov, logits, pool)
        return CachedOutputs(
            logits, pool, key, rec, False, computed, time.perf_counter() - t0, prov
        )

    # ------------------------------------------------------------------ chunks
    @staticmethod
    def _chunk_name(s: int, e: int) -> str:
        return f"{s:09d}-{e:09d}.npz"

    def _save_chunk(self, d: Path, key: str, s: int, e: int, logits, pool) -> None:
        header = {
            "key": key,
            "start": s,
            "stop": e,
            "logits": _sha(logits),
            "pool": None if pool is None else _sha(pool),
        }
        buf = io.BytesIO()
        arrays = {"logits": logits, "header": np.frombuffer(json.dumps(header).encode(), np.uint8)}
        if pool is not None:
            arrays["pool"] = pool
        np.savez(buf, **arrays)
        results.atomic_write_bytes(
            d / "chunks" / self._chunk_name(s, e), buf.getvalue(), fix=CACHE_FIX
        )

    @staticmethod
    def _scan(d: Path, features: bool) -> dict:
        """Row ranges of the chunks on disk (checked later, when used): {(start, stop): path}."""
        out = {}
        for p in (d / "chunks").glob("*.npz"):
            try:
                s, e = (int(v) for v in p.stem.split("-"))
            except ValueError:
                continue
            if features and not _has_pool(p):
                continue
            out[(s, e)] = p
        return out

    def _load_chunk(self, p: Path, key: str, s: int, e: int, features: bool):
        """The chunk's arrays if it is what its name says, intact and finite; else None."""
        try:
            with np.load(p) as z:
                header = json.loads(bytes(z["header"]).decode())
                logits = z["logits"]
                pool = z["pool"] if "pool" in z.files else None
        except FileNotFoundError:
            return "gone"
        except Exception as exc:  # a torn or foreign file
            return f"unreadable ({type(exc).__name__})"
        problems = []
        if header.get("key") != key:
            problems.append("belongs to another cache entry")
        if (header.get("start"), header.get("stop")) != (s, e):
            problems.append(f"holds rows {header.get('start')}..{header.get('stop')}")
        if logits.shape[0] != e - s or _sha(logits) != header.get("logits"):
            problems.append("logits do not match their sha256")
        if pool is not None and (pool.shape[0] != e - s or _sha(pool) != header.get("pool")):
            problems.append("pool features do not match their sha256")
        if features and pool is None:
            problems.append("has no pool features")
        if not _finite(logits, pool):
            problems.append("holds NaN/inf")
        return "; ".join(problems) if problems else (logits, pool)

    def _assemble(self, d: Path, key: str, have: dict, n: int, features: bool):
        """All n rows from checked chunks, or None after moving a bad chunk aside."""
        logits = pool = None
        filled = np.zeros(n, dtype=bool)
        for (s, e), p in sorted(have.items()):
            if e > n or s >= e or filled[s:e].all():
                continue
            got = self._load_chunk(p, key, s, e, features)
            if isinstance(got, str):
                if got != "gone":
                    warnings.warn(
                        f"logits cache: chunk {p.name} of {d.name} {got}; moved to "
                        "bad/ and recomputed",
                        stacklevel=4,
                    )
                    try:
                        os.replace(p, d / "bad" / f"{p.name}.{os.getpid()}.{time.time_ns()}")
                    except FileNotFoundError:
                        pass
                return None
            lg, pl = got
            if logits is None:
                logits = np.empty((n, *lg.shape[1:]), lg.dtype)
                pool = np.empty((n, *pl.shape[1:]), pl.dtype) if features else None
            logits[s:e] = lg
            if features:
                pool[s:e] = pl
            filled[s:e] = True
        if not filled.all():
            return None
        return logits, pool

    def _seal(self, d: Path, ident: dict, prov: dict, logits, pool) -> dict:
        lock = FileLock(str(d / "locks" / "seal.lock"))
        _acquire(lock)
        try:
            hit = self._load_sealed(d, pool is not None, warn=False)
            if hit is not None:
                return hit[0]
            # every file is complete in a temporary file before any is renamed into place;
            # leaving the stack renames the arrays first and sealed.json last (LIFO), and an
            # error on the way (disk full) removes every temporary file and renames nothing
            with contextlib.ExitStack() as stack:
                sealed_tmp = stack.enter_context(
                    results.atomic_path(d / "sealed.json", fix=CACHE_FIX)
                )
                arrays = {}
                for name, arr in (("logits", logits), ("pool", pool)):
                    if arr is None:
                        continue
                    tmp = stack.enter_context(results.atomic_path(d / f"{name}.npy", fix=CACHE_FIX))
                    np.save(tmp, arr)
                    arrays[name] = {
                        "sha256": _sha(arr),
                        "shape": list(arr.shape),
                        "file_sha256": sha256_file(tmp),
                    }
                rec = {
                    "identity": ident,
                    "provenance": prov,
                    "sealed": now_iso(),
                    "n": len(logits),
                    "arrays": arrays,
                }
                try:
                    sealed_tmp.write_text(results.json_text(rec), encoding="utf-8")
                except OSError as exc:  # named here: the innermost open file is an array's
                    if not results.is_write_error(exc):
                        raise
                    raise results.write_error(d / "sealed.json", exc, CACHE_FIX) from None
            for p in (d / "chunks").glob("*.npz"):  # redundant now; readers fall back to sealed
                p.unlink(missing_ok=True)
        finally:
            lock.release()
        return rec


def _acquire(lock: FileLock, timeout: float = -1) -> None:
    """Take a chunk's or the seal's lock; a lock file that cannot be created is one line."""
    try:
        lock.acquire(timeout=timeout, poll_interval=WAIT_SECONDS)
    except OSError as exc:
        if not results.is_write_error(exc):
            raise
        raise results.write_error(Path(lock.lock_file), exc, CACHE_FIX) from None


def _has_pool(p: Path) -> bool:
    try:
        with np.load(p) as z:
            return "pool" in z.files
    except Exception:
        return True  # let the check in _load_chunk report it


def _merge(ranges: list) -> list:
    out = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _covered(rng: tuple, have: dict) -> bool:
    s, e = rng
    for a, b in _merge(list(have)):
        if a <= s and e <= b:
            return True
    return False
