"""Common base of every image source: order, first-n selection, batching, fingerprint.

A source knows how many samples it holds (``_total``), how to read a list of sample indices
as a uint8 N x H x W x 3 array (``_read``), and a content identity of the whole underlying set
(``_identity``).  The base class turns ``order``/``seed``/``n`` into the exact index list, and
the fingerprint is sha256 over (kind, identity, index list, resolution, preprocessing): it
changes when samples, order, n or resolution change and is the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import numpy as np

from .. import settings as S
from ..errors import HarnessError

ORDERS = ("as_loaded", "shuffled")
FINGERPRINT_VERSION = 1


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def check_uint8_images(x, where: str) -> np.ndarray:
    """Validate a batch as uint8 N x H x W x 3 (the one format every backbone takes)."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise HarnessError(
            f"{where}: images must be uint8 in [0, 255], got dtype {x.dtype}; convert floats with "
            "a declared value_range (0_1, -1_1 or 0_255)"
        )
    if x.ndim != 4 or x.shape[-1] != 3:
        raise HarnessError(
            f"{where}: images must be N x H x W x 3 (RGB, channels last), got shape {x.shape}"
        )
    return x


VALUE_RANGES = ("0_1", "-1_1", "0_255")
# YAML 1.1 and Hydra's override grammar read digit groups with underscores as integers:
# `0_1` -> 1, `-1_1` -> -11, `0_255` -> 255.  No real range is an integer, so map them back.
_PARSED_AS_INT = {1: "0_1", -11: "-1_1", 255: "0_255"}
_ALIASES = {
    "0-1": "0_1",
    "[0,1]": "0_1",
    "-1-1": "-1_1",
    "[-1,1]": "-1_1",
    "0-255": "0_255",
    "[0,255]": "0_255",
}


#: the ``value_range`` setting: the spellings YAML and the command line turn into integers or
#: aliases are accepted and mapped back
VALUE_RANGE_KIND = S.Choice(VALUE_RANGES, aliases=(*_PARSED_AS_INT.items(), *_ALIASES.items()))


def value_range_setting(doc: str) -> S.Setting:
    return S.Setting("value_range", VALUE_RANGE_KIND, None, doc, nullable=True)


def trust_range_setting() -> S.Setting:
    return S.Setting(
        "trust_value_range",
        S.Bool(),
        False,
        "true: skip the check that the data match value_range (e.g. -1_1 data with negatives)",
        applies=S.When("value_range", not_in=(None,), text="value_range is set"),
    )


def normalize_value_range(value_range):
    """'0_1' | '-1_1' | '0_255' | None, whatever YAML or the command line made of it."""
    if value_range is None:
        return None
    if isinstance(value_range, (int, np.integer)) and not isinstance(value_range, bool):
        if int(value_range) in _PARSED_AS_INT:
            return _PARSED_AS_INT[int(value_range)]
    v = str(value_range).strip().replace(" ", "")
    v = _ALIASES.get(v, v)
    if v not in VALUE_RANGES:
        raise HarnessError(f"unknown value_range {value_range!r}; use 0_1, -1_1 or 0_255")
    return v


def to_uint8(
    x: np.ndarray, value_range: str | None, where: str, check_range: bool = True
) -> np.ndarray:
    """Convert a float (or integer) image batch to uint8 using its declared value range.

    Values outside the declared range are an error: a silent range mismatch is one of the most
    common ways IS numbers go wrong.  A tolerance of 1e-6 of the range absorbs float rounding.
    With ``check_range`` the data are also cross-checked against the declaration: ``-1_1``
    data without a single negative value, or ``0_255`` data that never exceed 1, are errors
    (they are almost surely ``0_1`` data declared wrongly).
    """
    value_range = normalize_value_range(value_range)
    if x.dtype == np.uint8:
        return x
    ranges = {"0_1": (0.0, 1.0), "-1_1": (-1.0, 1.0), "0_255": (0.0, 255.0)}
    if np.issubdtype(x.dtype, np.integer) and value_range in (None, "0_255"):
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise HarnessError(
                f"{where}: integer images must lie in [0, 255], found [{lo}, {hi}]; rescale to "
                "uint8"
            )
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.floating):
        raise HarnessError(f"{where}: unsupported image dtype {x.dtype}; use uint8 or float")
    if value_range is None:
        raise HarnessError(
            f"{where}: float images (dtype {x.dtype}) need a declared value_range: 0_1, -1_1 or "
            "0_255"
        )
    if value_range not in ranges:
        raise HarnessError(f"{where}: unknown value_range {value_range!r}; use 0_1, -1_1 or 0_255")
    lo, hi = ranges[value_range]
    if x.size:
        if not np.isfinite(x).all():
            raise HarnessError(f"{where}: images contain NaN or inf")
        vmin, vmax = float(x.min()), float(x.max())
        tol = 1e-6 * (hi - lo)
        if vmin < lo - tol or vmax > hi + tol:
            raise HarnessError(
                f"{where}: values span [{vmin:.4g}, {vmax:.4g}], outside the declared value_range "
                f"{value_range} [{lo:g}, {hi:g}]; declare the range the data really has"
            )
        if check_range and value_range == "-1_1" and vmin >= 0:
            raise HarnessError(
                f"{where}: declared value_range -1_1 but no value is negative (span [{vmin:.4g}, "
                f"{vmax:.4g}]): these look like 0_1 data; declare dataset.value_range=0_1 (or "
                "dataset.trust_value_range=true if they really are [-1, 1] images)"
            )
        if check_range and value_range == "0_255" and vmax <= 1.0:
            raise HarnessError(
                f"{where}: declared value_range 0_255 but no value exceeds 1 (span [{vmin:.4g}, "
                f"{vmax:.4g}]): these look like 0_1 data; declare dataset.value_range=0_1 (or "
                "dataset.trust_value_range=true if they really are [0, 255] images)"
            )
    y = (x.astype(np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def prefetched(gen: Iterator, ahead: int) -> Iterator:
    """Run ``gen`` in a background thread, at most ``ahead`` items ahead of the consumer (the
    next batches decode while the network works on this one); same items, same order; an error
    in the producer is raised in the consumer; stopping early stops the producer."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in gen:
                if not put(("item", item)):
                    return
            put(("end", done))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    t = threading.Thread(target=run, name="prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        t.join(timeout=5)


class ImageSource:
    """Base class.  Subclasses set ``kind`` and implement ``_total``, ``_read``, ``_identity``."""

    kind = "base"
    #: whether reading decodes files (then a progress bar is shown while streaming)
    decodes_files = False
    #: whether the samples can be read in any order (generator sources cannot)
    random_access = True

    #: the first comment line of the generated YAML
    summary = ""

    @classmethod
    def settings(cls) -> S.Schema:
        """Every parameter of this source (``conf/dataset/<name>.yaml`` is generated from it)."""
        cached = cls.__dict__.get("_settings_cache")
        if cached is None:
            cached = cls._settings()
            cls._settings_cache = cached
        return cached

    @classmethod
    def entries(cls) -> list:
        """This source's own parameters (subclasses extend ``super().entries()``)."""
        return []

    @classmethod
    def _settings(cls) -> S.Schema:
        """``name``, the source's own parameters, then the common ``n``, ``order``,
        ``order_seed``."""
        shuffled = S.When("order", is_in=("shuffled",))
        return S.Schema(
            [
                S.Setting("name", S.Str(), cls.kind, cls.summary),
                *cls.entries(),
                S.Setting(
                    "n",
                    S.Int(lo=1),
                    None,
                    "first n samples after ordering (null = all)",
                    nullable=True,
                ),
                S.Setting("order", S.Choice(ORDERS), "as_loaded", "as_loaded | shuffled"),
                S.Setting(
                    "order_seed",
                    S.Seed(),
                    None,
                    "required with order=shuffled",
                    nullable=True,
                    applies=shuffled,
                    required_when=shuffled,
                ),
                S.Setting("progress", S.Bool(), True, "progress bar while decoding", in_yaml=False),
            ]
        )

    @classmethod
    def missing_input(cls, params: dict, path: str) -> str | None:
        """What is missing on disk for a config node ``params`` of this source at ``path``
        (``dataset``, ``reference``, ``datasets.<key>``), as one message naming the key to set,
        or None.  Cheap (a few ``stat`` calls): run at validation, before any framework is
        imported or network built (:func:`harness.config.check_sources_exist`)."""
        return None

    @staticmethod
    def given_path(params: dict, key: str):
        """``params[key]`` as an expanded Path when the user gave one (None when unset or still
        ``???``: validation names that)."""
        from pathlib import Path

        value = params.get(key)
        if not isinstance(value, str) or value == S.MISSING:
            return None
        return Path(value).expanduser()

    def __init__(self, *, n, order, order_seed, progress):
        """Takes every setting of :meth:`settings` (use :func:`harness.data.load_source`)."""
        self.n_requested = None if n is None else int(n)
        self.order = order
        self.order_seed = None if order_seed is None else int(order_seed)
        self.progress = progress
        self._indices: np.ndarray | None = None
        self._fingerprint: str | None = None

    # ---- to implement -------------------------------------------------------------------
    def _total(self) -> int:
        raise NotImplementedError

    def _read(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _identity(self) -> dict:
        raise NotImplementedError

    def _resolution(self):
        """(H, W) of every sample, or a string when sizes vary (then content decides)."""
        raise NotImplementedError

    def _extra_provenance(self) -> dict:
        return {}

    def _all_labels(self) -> np.ndarray | None:
        return None

    #: whether logits of this source may be cached (a generator whose code cannot be
    #: identified may not: its fingerprint would not change when the code does)
    cacheable = True

    def paper_dataset(self) -> str | None:
        """Which of the paper's datasets these images really are (None: not one of them)."""
        return None

    # ---- common -----------------------------------------------------------------------------
    @property
    def indices(self) -> np.ndarray:
        """Exact sample indices, in the order they are yielded."""
        if self._indices is None:
            total = self._total()
            if total < 1:
                raise HarnessError(f"{self.kind}: the source holds no samples")
            if self.order == "shuffled":
                if not self.random_access:
                    raise HarnessError(
                        f"{self.kind}: order=shuffled is not supported (samples are generated in "
                        "sequence and already i.i.d.); use order=as_loaded"
                    )
                idx = np.random.default_rng(self.order_seed).permutation(total)
            else:
                idx = np.arange(total)
            if self.n_requested is not None:
                if self.n_requested > total:
                    raise HarnessError(
                        f"{self.kind}: n={self.n_requested} requested but the source holds only "
                        f"{total} samples; lower dataset.n"
                    )
                idx = idx[: self.n_requested]
            self._indices = idx.astype(np.int64)
        return self._indices

    def first(self, n: int) -> ImageSource:
        """The same source restricted to its first ``n`` samples (a copy; files not re-read)."""
        import copy

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise HarnessError(f"dataset n must be a positive integer, got {n!r}")
        other = copy.copy(self)
        vars(other).update(n_requested=int(n), _indices=None, _fingerprint=None)
        return other

    def subset(self, rows) -> ImageSource:
        """The same source restricted to ``rows`` (positions in its order; a copy, files not
        re-read); its fingerprint names exactly these samples.  Random-access sources only."""
        import copy

        if not self.random_access:
            raise HarnessError(f"{self.kind}: samples are generated in sequence: no subset")
        other = copy.copy(self)
        rows = np.asarray(rows, dtype=np.int64)
        vars(other).update(_indices=self.indices[rows], _fingerprint=None)
        return other

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def labels(self) -> np.ndarray | None:
        all_labels = self._all_labels()
        return None if all_labels is None else np.asarray(all_labels)[self.indices]

    def batches(self, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Yield uint8 N x H x W x 3 batches in order; memory is bounded by one batch."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise HarnessError(f"batch_size must be a positive integer, got {batch_size!r}")
        idx = self.indices
        bar = None
        if self.decodes_files and self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(idx), desc=f"decode {self.kind}", unit="img", leave=False)
        try:
            for batch in self._batches_of(idx, batch_size):
                if bar is not None:
                    bar.update(len(batch))
                yield batch
        finally:
            if bar is not None:
                bar.close()

    def batches_range(self, start: int, stop: int, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Batches of the samples at positions start..stop-1 (for resumable, chunked work)."""
        return self._batches_of(self.indices[start:stop], batch_size)

    def _batches_of(self, idx: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
        def produce():
            for s in range(0, len(idx), batch_size):
                for batch in self._read_grouped(idx[s : s + batch_size]):
                    yield check_uint8_images(batch, self.kind)

        ahead = int(getattr(self, "prefetch", 0)) if self.decodes_files else 0
        return prefetched(produce(), ahead) if ahead > 0 and len(idx) > batch_size else produce()

    def _read_grouped(self, idx: np.ndarray) -> Iterator[np.ndarray]:
        """Sources with images of different sizes override this to split batches by size."""
        yield self._read(idx)

    def read_all(self, batch_size: int = 256) -> np.ndarray:
        """All selected samples in one array (tests and small sets only)."""
        parts = list(self.batches(batch_size))
        if len({p.shape[1:] for p in parts}) > 1:
            raise HarnessError(
                f"{self.kind}: images have different sizes; iterate batches() instead"
            )
        return np.concatenate(parts, axis=0)

    def fingerprint(self) -> str:
        """sha256 naming exactly which samples, in which order, at which resolution."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(
                sha256_json(
                    {
                        "fingerprint_version": FINGERPRINT_VERSION,
                        "kind": self.kind,
                        "identity": self._identity(),
                        "resolution": self._resolution(),
                    }
                ).encode()
            )
            h.update(np.ascontiguousarray(self.indices, dtype="<i8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def provenance(self) -> dict:
        res = self._resolution()
        return {
            "dataset": self.kind,
            "n_samples": len(self),
            "order": self.order_label,
            "order_seed": self.order_seed,
            "resolution": list(res) if isinstance(res, tuple) else res,
            "fingerprint": self.fingerprint(),
            **self._extra_provenance(),
        }

    @property
    def order_label(self) -> str:
        return self.order if self.order == "as_loaded" else f"shuffled(seed={self.order_seed})"

    def describe(self) -> str:
        return f"{self.kind} (n={len(self)}, {self.order_label})"
