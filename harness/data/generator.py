"""``generator``: samples from a Python callable, so a GAN checkpoint can be scored directly.

``callable`` is ``package.module:function`` or ``path/to/file.py:function``.  It is called as
``function(n, seed, **kwargs)`` and must return n images: uint8 N x H x W x 3, or float (also
N x 3 x H x W) with a declared ``value_range``.  It must be deterministic given (n, seed).
Samples are generated in chunks of ``chunk_size``; chunk k gets the seed
``SeedSequence([seed, k]).generate_state(1)[0]``, so any sample can be regenerated alone.

The fingerprint covers the callable's name, the sha256 of the file that defines it, seed,
chunk size, kwargs and an optional ``identity`` string (put the checkpoint's sha256 there:
the harness cannot see what the callable loads).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from pathlib import Path

import numpy as np

from ..errors import HarnessError
from .base import ImageSource, normalize_value_range, to_uint8


def resolve_callable(spec: str):
    if not isinstance(spec, str) or ":" not in spec:
        raise HarnessError(f"generator: callable must look like 'module:function' or 'file.py:function', got {spec!r}")
    mod_name, fn_name = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name).expanduser()
            if not path.is_file():
                raise HarnessError(f"generator: file {path} does not exist")
            mspec = importlib.util.spec_from_file_location(f"_harness_gen_{path.stem}", path)
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"generator: cannot import {mod_name} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise HarnessError(f"generator: {mod_name} has no callable {fn_name!r}")
    return fn


class GeneratorSource(ImageSource):
    kind = "generator"

    def __init__(self, callable: str, count: int, seed: int = 0, chunk_size: int = 250,
                 value_range: str | None = None, kwargs: dict | None = None,
                 identity: str | None = None, **kw):
        super().__init__(**kw)
        self.spec = callable
        self.fn = resolve_callable(callable)
        self.count, self.gen_seed, self.chunk_size = int(count), int(seed), int(chunk_size)
        if self.count < 1 or self.chunk_size < 1:
            raise HarnessError("generator: count and chunk_size must be positive")
        self.value_range = normalize_value_range(value_range)
        self.kwargs = dict(kwargs or {})
        self.identity = identity
        try:
            src = inspect.getsourcefile(self.fn)
            self.source_sha256 = hashlib.sha256(Path(src).read_bytes()).hexdigest() if src else None
        except (TypeError, OSError):
            self.source_sha256 = None
        self._cache: tuple[int, np.ndarray] | None = None
        first = self._chunk(0)
        self._hw = first.shape[1:3]

    def chunk_seed(self, k: int) -> int:
        return int(np.random.SeedSequence([self.gen_seed, k]).generate_state(1)[0])

    def _chunk(self, k: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == k:
            return self._cache[1]
        n = min(self.chunk_size, self.count - k * self.chunk_size)
        try:
            x = self.fn(n, self.chunk_seed(k), **self.kwargs)
        except Exception as exc:
            raise HarnessError(f"generator: {self.spec} failed ({type(exc).__name__}: {exc})") from None
        if hasattr(x, "detach"):  # a torch tensor
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[-1] != 3 and x.shape[1] == 3:
            x = x.transpose(0, 2, 3, 1)
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] != n:
            raise HarnessError(
                f"generator: {self.spec}({n}, seed) returned shape {x.shape}; expected {n} x H x W x 3 "
                "(or N x 3 x H x W)")
        x = np.ascontiguousarray(to_uint8(x, self.value_range, f"generator {self.spec}"))
        if k > 0 and x.shape[1:3] != tuple(self._hw):
            raise HarnessError(f"generator: chunk {k} has size {x.shape[1:3]}, chunk 0 had {tuple(self._hw)}")
        self._cache = (k, x)
        return x

    def _total(self) -> int:
        return self.count

    def _read(self, idx):
        out = np.empty((len(idx), *self._hw, 3), dtype=np.uint8)
        chunks = idx // self.chunk_size
        for k in np.unique(chunks):  # each chunk is generated once per batch
            sel = np.nonzero(chunks == k)[0]
            out[sel] = self._chunk(int(k))[idx[sel] - k * self.chunk_size]
        return out

    def _resolution(self):
        return tuple(int(v) for v in self._hw)

    def _identity(self) -> dict:
        return {"callable": self.spec, "source_sha256": self.source_sha256, "seed": self.gen_seed,
                "chunk_size": self.chunk_size, "count": self.count, "kwargs": self.kwargs,
                "identity": self.identity, "value_range": self.value_range}

    def _extra_provenance(self) -> dict:
        return {"callable": self.spec, "source_sha256": self.source_sha256, "seed": self.gen_seed,
                "chunk_size": self.chunk_size, "identity": self.identity,
                "value_range": self.value_range or "uint8 0..255"}
