"""``generator``: samples from a Python callable, so a GAN checkpoint can be scored directly.

``callable`` is ``package.module:function`` or ``path/to/file.py:function``.  It is called as
``function(n, seed, **kwargs)`` and must return n images: uint8 N x H x W x 3, or float (also
N x 3 x H x W) with a declared ``value_range``.  It must be deterministic given (n, seed).
Samples are generated in chunks of ``chunk_size``; chunk k gets the seed
``SeedSequence([seed, k]).generate_state(1)[0]``, so any sample can be regenerated alone.

The fingerprint covers the callable's name, the sha256 of the file that defines it and of every
local module it imports (recursively: modules outside the Python installation and
site-packages; installed packages count by name and version), seed, chunk size, kwargs and an
optional ``identity`` string (put the checkpoint's sha256 there: the harness cannot see what
the callable loads).  When the code cannot be identified (no source file, or a dynamic import
such as ``importlib.import_module``/``__import__``/``exec``), its logits are not cached and a
warning says why.  ``sys.exit`` or Ctrl-C inside the callable stops the run with an error,
never with exit code 0.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
import sysconfig
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from .. import settings as S
from ..errors import ConfigError, HarnessError, UserCodeError, UserCodeExit
from .base import (
    ImageSource,
    normalize_value_range,
    to_uint8,
    trust_range_setting,
    value_range_setting,
)

DYNAMIC_CALLS = (
    "import_module",
    "__import__",
    "exec",
    "eval",
    "run_path",
    "spec_from_file_location",
)


def _installed_roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {str(Path(p)) for p in sys.path if "site-packages" in p or "dist-packages" in p}
    return [Path(r).resolve() for r in roots if r]


def _is_installed(path: Path, roots) -> bool:
    path = path.resolve()
    return any(path.is_relative_to(r) for r in roots)


def _dynamic_call(node, f: Path) -> str | None:
    """Why the code cannot be identified when ``node`` is a dynamic import, else None."""
    if isinstance(node, ast.Call):
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        if name in DYNAMIC_CALLS:
            return f"{f.name} calls {name}() (a dynamic import the harness cannot follow)"
    return None


def _relative_targets(f: Path, node: ast.ImportFrom) -> list[Path]:
    """The local files a relative import in ``f`` names (resolved against its package dir)."""
    base = f.parent
    for _ in range(node.level - 1):
        base = base.parent
    mod = (node.module or "").replace(".", "/")
    out = []
    for cand in (
        base / f"{mod}.py",
        base / mod / "__init__.py",
        *[base / mod / f"{a.name}.py" for a in node.names],
    ):
        if mod or cand.name != "__init__.py":
            if cand.is_file():
                out.append(cand.resolve())
    return out


def _absolute_target(name: str, f: Path, roots, packages: dict) -> Path | None:
    """The local file an absolute import ``name`` in ``f`` names; None for the standard library
    and for an installed package (its version recorded in ``packages``)."""
    top = name.split(".")[0]
    if not top or top in sys.stdlib_module_names:
        return None
    local = [
        f.parent / f"{name.replace('.', '/')}.py",
        f.parent / name.replace(".", "/") / "__init__.py",
    ]
    hit = next((c for c in local if c.is_file()), None)
    if hit is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = (
            Path(spec.origin)
            if spec and spec.origin and spec.origin not in ("built-in", "frozen")
            else None
        )
        if origin is None or _is_installed(origin, roots) or origin.suffix != ".py":
            try:
                packages[top] = metadata.version(top)
            except metadata.PackageNotFoundError:
                packages[top] = None
            return None
        hit = origin
    return hit.resolve()


def code_identity(path: Path) -> tuple[dict | None, str | None]:
    """sha256 of a module file and of the local modules it imports, recursively.

    Returns (identity, None) or (None, reason) when the code cannot be identified.
    """
    import os

    roots = _installed_roots()
    seen, files, packages = set(), {}, {}
    home = Path(path).resolve().parent
    todo = [Path(path).resolve()]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        try:
            src = f.read_bytes()
            tree = ast.parse(src)
        except (OSError, SyntaxError, ValueError) as exc:
            return None, f"cannot read {f} ({type(exc).__name__})"
        files[os.path.relpath(f, home)] = hashlib.sha256(src).hexdigest()  # location-free
        for node in ast.walk(tree):
            reason = _dynamic_call(node, f)
            if reason is not None:
                return None, reason
            if isinstance(node, ast.ImportFrom) and node.level:
                todo.extend(_relative_targets(f, node))
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                hit = _absolute_target(name, f, roots, packages)
                if hit is not None:
                    todo.append(hit)
    return {
        "files_sha256": dict(sorted(files.items())),
        "packages": dict(sorted(packages.items())),
    }, None


def resolve_callable(spec: str):
    if not isinstance(spec, str) or ":" not in spec:
        raise HarnessError(
            "generator: callable must look like 'module:function' or 'file.py:function', got "
            f"{spec!r}"
        )
    mod_name, fn_name = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name).expanduser()
            if not path.is_file():
                raise HarnessError(f"generator: file {path} does not exist")
            # like running the file as a script: its own directory is importable (its helpers)
            home = str(path.resolve().parent)
            if home not in sys.path:
                sys.path.insert(0, home)
            mspec = importlib.util.spec_from_file_location(f"_harness_gen_{path.stem}", path)
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(
            f"generator: cannot import {mod_name} ({type(exc).__name__}: {exc})"
        ) from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise HarnessError(f"generator: {mod_name} has no callable {fn_name!r}")
    return fn


def _check_callable_spec(value: str, path: str) -> None:
    mod, sep, fn = value.rpartition(":")
    if not sep or not mod or not fn.isidentifier():
        raise ConfigError(
            f"{path} must look like 'module:function' or 'file.py:function', got {value!r}"
        )


class GeneratorSource(ImageSource):
    kind = "generator"
    summary = (
        "A Python callable `module:function` or `file.py:function` called as f(n, seed, **kwargs)."
    )

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting(
                "callable",
                S.Str(what="module:function or file.py:function", form=_check_callable_spec),
                None,
                "required",
                required=True,
            ),
            S.Setting("count", S.Int(lo=1), 50000, "samples the generator makes"),
            S.Setting(
                "seed",
                S.Seed(),
                0,
                "base seed (chunk k gets a seed derived from it)",
                yaml="${seed}",
            ),
            S.Setting("chunk_size", S.Int(lo=1), 250, "samples per call"),
            value_range_setting("for float outputs: 0_1 | -1_1 | 0_255"),
            S.Setting("kwargs", S.AnyMapping(), {}, "keyword arguments of every call"),
            S.Setting(
                "identity",
                S.Str(),
                None,
                "e.g. your checkpoint's sha256 (goes into the fingerprint)",
                nullable=True,
            ),
            trust_range_setting(),
            *super().entries(),
        ]

    def __init__(
        self,
        *,
        callable,
        count,
        seed,
        chunk_size,
        value_range,
        kwargs,
        identity,
        trust_value_range,
        **kw,
    ):
        super().__init__(**kw)
        self.spec = callable
        self.fn = resolve_callable(callable)
        self.count, self.gen_seed, self.chunk_size = int(count), int(seed), int(chunk_size)
        self.value_range = normalize_value_range(value_range)
        self.kwargs = dict(kwargs or {})
        self.identity = identity
        self.trust_value_range = trust_value_range
        try:
            src = inspect.getsourcefile(self.fn)
        except TypeError:
            src = None
        self.source_sha256 = self.code = None
        self.uncacheable_reason = None
        if src is None:
            self.uncacheable_reason = f"{callable} has no Python source file"
        else:
            self.source_sha256 = hashlib.sha256(Path(src).read_bytes()).hexdigest()
            self.code, self.uncacheable_reason = code_identity(Path(src))
        if self.uncacheable_reason:
            warnings.warn(
                f"generator: {self.uncacheable_reason}; its logits will not be cached "
                "(the harness could not see when the code changes)",
                stacklevel=2,
            )
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
        except SystemExit as exc:
            raise UserCodeExit(
                f"generator: {self.spec} called sys.exit({exc.code}) while making "
                f"samples {k * self.chunk_size}..; the run stopped unfinished"
            ) from None
        except KeyboardInterrupt:
            raise UserCodeExit(
                f"generator: {self.spec} was interrupted; the run stopped unfinished"
            ) from None
        except HarnessError:
            raise
        except Exception as exc:
            raise UserCodeError(
                f"your generator {self.spec} raised {type(exc).__name__} while making samples "
                f"{k * self.chunk_size}.. (the traceback above is in your code, not in "
                "inception-note)"
            ) from exc
        if hasattr(x, "detach"):  # a torch tensor
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[-1] != 3 and x.shape[1] == 3:
            x = x.transpose(0, 2, 3, 1)
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] != n:
            raise HarnessError(
                f"generator: {self.spec}({n}, seed) returned shape {x.shape}; expected {n} x H x W "
                "x 3 "
                "(or N x 3 x H x W)"
            )
        x = np.ascontiguousarray(
            to_uint8(
                x,
                self.value_range,
                f"generator {self.spec}",
                check_range=k == 0 and not self.trust_value_range,
            )
        )
        if k > 0 and x.shape[1:3] != tuple(self._hw):
            raise HarnessError(
                f"generator: chunk {k} has size {x.shape[1:3]}, chunk 0 had {tuple(self._hw)}"
            )
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

    @property
    def cacheable(self) -> bool:
        return self.uncacheable_reason is None

    def _identity(self) -> dict:
        return {
            "callable": self.spec,
            "code": self.code,
            "seed": self.gen_seed,
            "chunk_size": self.chunk_size,
            "count": self.count,
            "kwargs": self.kwargs,
            "identity": self.identity,
            "value_range": self.value_range,
        }

    def _extra_provenance(self) -> dict:
        return {
            "callable": self.spec,
            "source_sha256": self.source_sha256,
            "seed": self.gen_seed,
            "code_files": len((self.code or {}).get("files_sha256", {})),
            "cacheable": self.cacheable,
            "not_cached_because": self.uncacheable_reason,
            "chunk_size": self.chunk_size,
            "identity": self.identity,
            "value_range": self.value_range or "uint8 0..255",
        }
