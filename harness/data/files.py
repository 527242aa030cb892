"""Sources backed by image files: ``folder`` (any directory) and ``imagenet_val``.

Files are found recursively and yielded in sorted relative-path order.  Each file is read once
at construction: the sha256 of its bytes (the fingerprint) and its header (size, colour mode)
come from the same read, so corrupt non-images fail early with the file's name; a file that only
breaks while decoding fails then, also by name.  With ``skip_bad=true`` every file is fully
decoded once up front and the bad ones are skipped and counted in provenance (so N and the
fingerprint are known before any logits are computed).  Decoding refuses to guess: see
:func:`.decoding.decode_image` for 16-bit, alpha, CMYK and EXIF orientation; the decode processes
are :mod:`.decode_pool`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import settings as S
from ..errors import HarnessError, MissingInputError
from .base import ImageSource, check_uint8_images
from .decode_pool import (
    SHM_PREFIX,
    SpawnedInMainThread,
    decode_into,
    decode_process_init,
    release_blocks,
    shm_free_bytes,
)
from .decoding import (
    ALPHA,
    CMYK,
    DECODE_VERSION,
    EXIF,
    IMAGE_EXTENSIONS,
    PREPROCESS,
    RESAMPLE,
    DecodeSpec,
    decode_file,
    decode_opened,
    header_orientation,
    import_pil,
)

#: images smaller than this (pixels) are decoded serially (benchmarks/README.md)
PARALLEL_MIN_PIXELS = 128 * 128


def decode_workers(value) -> int:
    """``num_workers``: ``auto`` = the cores this process may use, capped at 8; or an integer."""
    if value == "auto":
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HarnessError(f"dataset.num_workers must be auto or a positive integer, got {value!r}")
    return int(value)


WORKER_TYPES = ("auto", "thread", "process")
#: ``worker_type=auto`` starts decode processes (~0.5 s, once per source) only for sources with
#: at least this many pixels in all; smaller ones decode in threads or serially
PROCESS_MIN_TOTAL_PIXELS = 32 * 2**20
#: pixels per job sent to the decode processes at least (256 images of 32 x 32)
PROCESS_JOB_MIN_PIXELS = 256 * 32 * 32


class FileImageSource(ImageSource):
    """Shared machinery: file list, one pass of hashing + header reading, decode, preprocessing.

    Each file is read once at construction: its bytes give the sha256 (the fingerprint) and the
    header (size, mode) is parsed from the same bytes, so unreadable files fail early, by name.
    """

    decodes_files = True
    default_preprocess = "none"

    @classmethod
    def file_entries(cls) -> list:
        """The decoding and preprocessing parameters of every file source."""
        resizing = S.When("preprocess", not_in=("none",))
        return [
            S.Setting(
                "preprocess",
                S.Choice(PREPROCESS),
                cls.default_preprocess,
                "none | resize | resize_center_crop",
            ),
            S.Setting(
                "size",
                S.Int(lo=1),
                299,
                "output size of resize / center crop",
                applies=resizing,
            ),
            S.Setting(
                "crop_fraction",
                S.Float(lo=0, hi=1, lo_open=True),
                0.875,
                "shorter side resized to size / crop_fraction before the crop (342 for 299)",
                applies=S.When("preprocess", is_in=("resize_center_crop",)),
            ),
            S.Setting(
                "resample",
                S.Choice(RESAMPLE),
                "bilinear",
                "bilinear | bicubic | lanczos | nearest (PIL)",
                applies=resizing,
            ),
            S.Setting(
                "skip_bad", S.Bool(), False, "true: skip unreadable files (counted in provenance)"
            ),
            S.Setting(
                "alpha",
                S.Choice(ALPHA),
                "error",
                "transparent pixels: error | drop | white | black (opaque alpha is dropped)",
            ),
            S.Setting("cmyk", S.Choice(CMYK), "error", "CMYK without ICC profile: error | naive"),
            S.Setting(
                "exif_orientation",
                S.Choice(EXIF),
                "apply",
                "apply (as image viewers show) | ignore",
            ),
            S.Setting(
                "num_workers",
                S.IntOrAuto(lo=1),
                "auto",
                "decoding workers (auto = the cores available, at most 8); batches identical "
                "to serial",
            ),
            S.Setting(
                "worker_type",
                S.Choice(WORKER_TYPES),
                "auto",
                "thread | process (no GIL; starts in ~0.5 s; they exit with the run, also after "
                "kill -9) | auto: processes from 32 Mpx of images on, with room in /dev/shm",
            ),
            S.Setting(
                "prefetch",
                S.Int(lo=0, hi=64),
                2,
                "batches decoded ahead of the network (bounded memory)",
            ),
        ]

    def __init__(
        self,
        *,
        preprocess,
        size,
        crop_fraction,
        resample,
        skip_bad,
        alpha,
        cmyk,
        exif_orientation,
        num_workers,
        worker_type,
        prefetch,
        **kw,
    ):
        super().__init__(**kw)
        self.num_workers = decode_workers(num_workers)
        self.worker_type = worker_type
        self._procs = None
        self._decode_spec: DecodeSpec | None = None
        self._blocks: list | None = None  # shared-memory blocks of the decode processes
        self._free: list | None = None
        self.prefetch = int(prefetch)
        self._pool = None
        self.preprocess = preprocess
        self.size = int(size)
        self.crop_fraction = float(crop_fraction)
        self.resample = resample
        self.skip_bad = skip_bad
        self.alpha, self.cmyk, self.exif_orientation = alpha, cmyk, exif_orientation
        self.root: Path = Path(".")
        self.files: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self.modes: Counter = Counter()
        self.handling: Counter = Counter()
        self.skipped: list[str] = []
        self._file_hashes: list[str] = []

    # -- discovery -----------------------------------------------------------------------------
    def _scan(self, files: list[Path]) -> None:
        """Read every file once: sha256 of its bytes and its header (or a full decode with
        skip_bad, so N and the fingerprint are known before any logits are computed)."""
        Image = import_pil()
        keep, sizes, hashes = [], [], []
        it = files
        if self.progress and len(files) > 2000:
            from tqdm.auto import tqdm

            it = tqdm(files, desc=f"scan {self.kind}", unit="file", leave=False)
        for f in it:
            try:
                raw = f.read_bytes()
                with Image.open(io.BytesIO(raw)) as im:
                    if self.skip_bad:
                        self.handling.update(self._decode_opened(im)[1])
                    size, mode = im.size, im.mode
                    if self.exif_orientation == "apply" and header_orientation(im, raw) in (
                        5,
                        6,
                        7,
                        8,
                    ):
                        size = size[::-1]  # rotated by 90 degrees when decoded
            except Exception as exc:  # PIL raises many types for bad files
                if self.skip_bad:
                    self.skipped.append(self._rel(f))
                    continue
                raise HarnessError(
                    f"{self.kind}: cannot read image {f} ({type(exc).__name__}); remove or replace "
                    "the file, or pass skip_bad=true to skip unreadable files"
                ) from None
            keep.append(f)
            sizes.append((size[1], size[0]))
            hashes.append(hashlib.sha256(raw).hexdigest())
            self.modes[mode] += 1
        self.files, self.sizes, self._file_hashes = keep, sizes, hashes
        if not self.files:
            raise HarnessError(f"{self.kind}: no readable images under {self.root}")

    def _rel(self, f: Path) -> str:
        return f.relative_to(self.root).as_posix()

    # -- reading -------------------------------------------------------------------------------
    def _spec(self) -> DecodeSpec:
        """The decode settings (built once: read for every image)."""
        if self._decode_spec is None:
            self._decode_spec = self._make_spec()
        return self._decode_spec

    def _make_spec(self) -> DecodeSpec:
        return DecodeSpec(
            self.kind,
            self.alpha,
            self.cmyk,
            self.exif_orientation,
            self.preprocess,
            self.size,
            self.crop_fraction,
            self.resample,
        )

    def _decode_opened(self, im):
        return decode_opened(im, self._spec())

    def _decode(self, i: int):
        return decode_file(self.files[i], self._spec())

    def _out_size(self, i: int) -> tuple[int, int]:
        return self.sizes[i] if self.preprocess == "none" else (self.size, self.size)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        """Decode serially or in ``num_workers`` threads (Pillow releases the GIL while decoding);
        results come back in input order, so batches are identical to serial decoding."""
        h, w = self._out_size(int(idx[0])) if len(idx) else (0, 0)
        # small images decode in ~0.1 ms, mostly Python holding the GIL: threads only slow them
        # down (measured: 32x32 PNG 11,000/s serial, 6,300/s with 2 threads), so they stay serial
        if self.num_workers > 1 and len(idx) > 1 and h * w >= PARALLEL_MIN_PIXELS:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="decode")
            # contiguous chunks, one per worker: per-image task overhead would cost more than
            # decoding a small image; order is kept by concatenating the chunks in order
            out = [r for part in self._pool.map(self._decode_many, self._chunks(idx)) for r in part]
        else:
            out = [self._decode(int(i)) for i in idx]
        for _, done in out:
            self.handling.update(done)
        return np.stack([x for x, _ in out])

    def _chunks(self, idx) -> list[np.ndarray]:
        return np.array_split(np.asarray(idx, dtype=np.int64), min(self.num_workers, len(idx)))

    def _decode_many(self, idx) -> list:
        return [self._decode(int(i)) for i in idx]

    # -- decode processes ---------------------------------------------------------------------
    def _batches_of(self, idx: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
        kind = self.worker_type
        if kind == "auto":  # processes cost a start-up: only for enough work, and shared memory
            sizes = self._pixels(idx)
            free = shm_free_bytes()
            room = free is None or free > 3 * (max(1, self.prefetch) + 1) * max(
                PROCESS_JOB_MIN_PIXELS, batch_size * max(sizes, default=0)
            )
            kind = "process" if sum(sizes) >= PROCESS_MIN_TOTAL_PIXELS and room else "thread"
        if kind == "process" and self.num_workers > 1 and len(idx) > 1:
            return self._process_batches(idx, batch_size)
        return super()._batches_of(idx, batch_size)

    def _pixels(self, idx: np.ndarray) -> list[int]:
        """Pixels of each image (plain ints: called over every index of a pass)."""
        if self.preprocess != "none":
            return [self.size * self.size] * len(idx)
        sizes = self.sizes
        return [sizes[i][0] * sizes[i][1] for i in idx.tolist()]

    def _process_batches(self, idx: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
        """Batches decoded by ``num_workers`` processes (no GIL between them), each writing its
        chunk of a job (one batch, or several batches of small images) into one shared-memory
        array; max(prefetch, 1) + 1 jobs in flight at most, batches yielded in order and
        bit-identical to serial decoding."""
        # small images: several batches per job, so each process gets enough work per round
        # trip (sized by the largest image, so a mixed folder never queues huge jobs)
        largest = max(self._pixels(idx))
        per_job = batch_size * max(1, -(-PROCESS_JOB_MIN_PIXELS // (batch_size * largest)))
        pending: deque = deque()

        def ready():  # the oldest jobs' batches; the jobs leave `pending` only once collected
            out = [x for job in pending[0] for x in self._collect(job)]
            pending.popleft()
            return [check_uint8_images(x, self.kind) for x in out]

        try:
            for s in range(0, len(idx), per_job):
                block = idx[s : s + per_job]
                jobs: list = []
                pending.append(jobs)  # first, so a failing submit leaves nothing unreleased
                if len(list(self._size_groups(block))) == 1:  # one size: one job, sliced after
                    jobs.append((self._submit(block), batch_size))
                else:  # sizes vary: the batches' own runs of equal size, one job each
                    for b in range(0, len(block), batch_size):
                        for group in self._size_groups(block[b : b + batch_size]):
                            jobs.append((self._submit(group), len(group)))
                if len(pending) > max(1, self.prefetch):
                    yield from ready()
            while pending:
                yield from ready()
        finally:  # an error or an early stop: wait for what is running, free its blocks
            for jobs in pending:
                for job in jobs:
                    self._release(job)

    def _process_pool(self):
        if self._procs is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fresh interpreter that imports only numpy, Pillow and this module (a fork
            # would copy torch's and TensorFlow's threads and locks)
            ctx = multiprocessing.get_context("spawn")
            self._procs = ProcessPoolExecutor(
                self.num_workers,
                mp_context=ctx,
                initializer=decode_process_init,  # they die with this process
                initargs=(os.getpid(), SpawnedInMainThread()),
            )
        return self._procs

    def _block(self, nbytes: int):
        """A free shared-memory block of at least ``nbytes`` (reused: its pages are already
        mapped, so no page fault per 4 KiB on every batch); removed with the source."""
        from multiprocessing import shared_memory

        if self._blocks is None:
            import weakref

            self._blocks, self._free = [], []
            weakref.finalize(self, release_blocks, self._blocks)
        for k, shm in enumerate(self._free):
            if shm.size >= nbytes:
                return self._free.pop(k)
        if self._free:  # all too small (larger images): replace one
            old = self._free.pop(0)
            self._blocks.remove(old)
            release_blocks([old])
        free = shm_free_bytes()
        if free is not None and nbytes > free:
            raise HarnessError(
                f"{self.kind}: /dev/shm has {free / 2**20:.0f} MiB free, a decode job needs "
                f"{nbytes / 2**20:.0f} MiB; enlarge it (docker run --shm-size=2g) or set "
                "dataset.worker_type=thread"
            )
        name = f"{SHM_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        shm = shared_memory.SharedMemory(name=name, create=True, size=max(1, nbytes))
        self._blocks.append(shm)
        return shm

    def _broken_pool(self) -> HarnessError:
        """The pool lost a process: drop it (the next pass starts a new one); the error."""
        if self._procs is not None:
            self._procs.shutdown(wait=False, cancel_futures=True)
            self._procs = None
        return HarnessError(
            f"{self.kind}: a decode process died (killed for memory, or a script without an "
            "`if __name__ == '__main__':` guard started it); guard the script's entry point or "
            "set dataset.worker_type=thread"
        )

    def _submit(self, group: np.ndarray):
        from concurrent.futures.process import BrokenProcessPool

        h, w = self._out_size(int(group[0]))
        shape = (len(group), h, w, 3)
        shm = self._block(int(np.prod(shape)))
        futures: list = []
        try:
            pool, spec, start = self._process_pool(), self._spec(), 0
            for chunk in self._chunks(group):
                paths = [str(self.files[int(i)]) for i in chunk]
                futures.append(pool.submit(decode_into, spec, paths, shm.name, shape, start))
                start += len(chunk)
        except BaseException as exc:  # wait for the chunks already running, then free the block
            self._release(((shape, shm, futures), len(group)))
            if isinstance(exc, BrokenProcessPool):
                raise self._broken_pool() from None
            raise
        return shape, shm, futures

    def _collect(self, job) -> list[np.ndarray]:
        """The job's batches (its array copied out of the block, in slices of ``step`` rows)."""
        from concurrent.futures.process import BrokenProcessPool

        (shape, shm, futures), step = job
        try:
            for f in futures:
                try:
                    dones = f.result()  # a worker's error (naming the file) is raised here
                except BrokenProcessPool:
                    raise self._broken_pool() from None
                for done in dones:
                    self.handling.update(done)
            view = np.ndarray(shape, np.uint8, buffer=shm.buf)
            out = view.copy()  # the block is reused for a later job
            del view
            return [out[k : k + step] for k in range(0, len(out), step)]
        finally:
            self._release(job)

    def _release(self, job) -> None:
        """Wait for a job's workers (an error or an early stop) and free its block, once."""
        (_, shm, futures), _ = job
        for f in futures:
            f.cancel()
        for f in futures:
            if not f.cancelled():
                try:
                    f.exception()
                except Exception:  # noqa: BLE001 - a broken pool: the worker is gone anyway
                    pass
        if shm in self._blocks and not any(shm is b for b in self._free):
            self._free.append(shm)

    def __getstate__(self):  # copies (first(), pickling) share no pool and no memory block
        state = dict(vars(self))
        state["_pool"] = state["_procs"] = state["_blocks"] = state["_free"] = None
        return state

    def _size_groups(self, idx: np.ndarray) -> Iterator[np.ndarray]:
        # Images of different sizes (preprocess=none) go out in runs of equal size, in order.
        start = 0
        for k in range(1, len(idx) + 1):
            if k == len(idx) or self._out_size(int(idx[k])) != self._out_size(int(idx[start])):
                yield idx[start:k]
                start = k

    def _read_grouped(self, idx: np.ndarray) -> Iterator[np.ndarray]:
        for group in self._size_groups(idx):
            yield self._read(group)

    # -- identity -------------------------------------------------------------------------------
    def _total(self) -> int:
        return len(self.files)

    def file_hashes(self) -> list[str]:
        return self._file_hashes

    def _identity(self) -> dict:
        h = hashlib.sha256()
        for f, fh in zip(self.files, self.file_hashes()):
            h.update(self._rel(f).encode() + b"\0" + fh.encode() + b"\n")
        return {
            "files_sha256": h.hexdigest(),
            "n_files": len(self.files),
            "preprocess": self._preprocess_desc(),
            "decode": self._decode_desc(),
        }

    def _decode_desc(self) -> dict:
        return {
            "version": DECODE_VERSION,
            "alpha": self.alpha,
            "cmyk": self.cmyk,
            "exif_orientation": self.exif_orientation,
        }

    def _preprocess_desc(self) -> dict:
        d = {"preprocess": self.preprocess}
        if self.preprocess != "none":
            d.update(size=self.size, resample=self.resample)
        if self.preprocess == "resize_center_crop":
            d["crop_fraction"] = self.crop_fraction
        return d

    def _resolution(self):
        sizes = {self._out_size(int(i)) for i in self.indices}
        return sizes.pop() if len(sizes) == 1 else "varies (preprocess=none)"

    def _extra_provenance(self) -> dict:
        return {
            "root": str(self.root),
            "preprocessing": self._preprocess_desc(),
            "decoding": {**self._decode_desc(), "sixteen_bit": "v >> 8 (high byte)"},
            "color_modes": dict(self.modes),
            "converted_to_rgb": sum(v for k, v in self.modes.items() if k != "RGB"),
            "decode_handling": dict(self.handling),
            "skip_bad": self.skip_bad,
            "skipped_files": len(self.skipped),
            "skipped_examples": self.skipped[:10],
        }


def _iter_images(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _find_images(root: Path) -> list[Path]:
    return sorted(_iter_images(root), key=lambda p: p.relative_to(root).as_posix())


class FolderSource(FileImageSource):
    """Every PNG/JPEG/WebP/BMP image under ``root`` (recursive), in sorted relative-path order."""

    kind = "folder"
    summary = "Any directory of PNG/JPEG/WebP/BMP images, recursive, sorted by relative path."

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting("root", S.Path(), None, "required: dataset.root=<dir>", required=True),
            *cls.file_entries(),
            *super().entries(),
        ]

    @classmethod
    def missing_input(cls, params: dict, path: str) -> str | None:
        root = cls.given_path(params, "root")
        if root is None:
            return None
        if not root.is_dir():
            return _no_folder(root, path)
        if not any(_iter_images(root)):
            return _no_images(root, path)
        return None

    def __init__(self, *, root, **kw):
        super().__init__(**kw)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MissingInputError(_no_folder(self.root, "dataset"))
        files = _find_images(self.root)
        if not files:
            raise HarnessError(_no_images(self.root, "dataset"))
        self._scan(files)


def _no_folder(root: Path, path: str) -> str:
    return f"{path}.root: directory {root} does not exist; pass {path}.root=<dir of images>"


def _no_images(root: Path, path: str) -> str:
    return (
        f"{path}.root: no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}; point "
        f"{path}.root at a directory of images"
    )


class ImageNetValSource(FileImageSource):
    """ImageNet validation images: class subfolders (ImageFolder) or flat folder + label file.

    * class subfolders: ``root/<wnid>/*.JPEG``; classes are the sorted folder names (index 0..999
      in the order torchvision and Keras use); samples class-sorted, as ImageFolder yields them.
    * flat: ``root/*.JPEG`` in sorted order plus ``label_file``: one label per line, either
      ``<filename> <label>`` or just ``<label>`` in sorted-file order.  ``label_format`` says what
      a label is: ``devkit_id`` (1..1000, the official ``ILSVRC2012_validation_ground_truth.txt``),
      ``index`` (0..999 in sorted-wnid order, torchvision/Keras) or ``wnid`` (``n01440764``).
      Labels are stored as sorted-wnid indices 0..999 either way.
    """

    kind = "imagenet_val"
    summary = (
        "ILSVRC2012 validation (50,000 images): class subfolders (class-sorted order) or flat + "
        "label file."
    )
    default_preprocess = "resize_center_crop"

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting(
                "root",
                S.Path(),
                "~/.cache/inception-note/datasets/imagenet/val",
                "class subfolders n01440764/... or a flat folder with label_file",
                yaml="${data_root}/imagenet/val",
            ),
            S.Setting(
                "layout",
                S.Choice(("auto", "class_subfolders", "flat")),
                "auto",
                "auto | class_subfolders | flat",
            ),
            S.Setting(
                "label_file",
                S.Path(),
                None,
                "flat layout: ILSVRC2012_validation_ground_truth.txt or '<file> <label>' lines",
                nullable=True,
                applies=S.When("layout", not_in=("class_subfolders",)),
            ),
            S.Setting(
                "label_format",
                S.Choice(("devkit_id", "index", "wnid")),
                "devkit_id",
                "devkit_id (official file) | index (0..999 sorted wnid) | wnid",
                applies=S.When("label_file", not_in=(None,), text="label_file is set"),
            ),
            *cls.file_entries(),
            *super().entries(),
        ]

    def paper_dataset(self) -> str | None:
        return "imagenet_val"

    @classmethod
    def missing_input(cls, params: dict, path: str) -> str | None:
        root = cls.given_path(params, "root")
        if root is None:
            return None
        if not root.is_dir():
            return _no_imagenet(root, path)
        label_file = params.get("label_file")
        if (
            isinstance(label_file, str)
            and params.get("layout") != "class_subfolders"
            and not Path(label_file).expanduser().is_file()
        ):
            return _no_label_file(Path(label_file).expanduser(), path)
        return None

    def __init__(self, *, root, layout, label_file, label_format, **kw):
        super().__init__(**kw)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MissingInputError(_no_imagenet(self.root, "dataset"))
        subdirs = sorted(p for p in self.root.iterdir() if p.is_dir())
        if layout == "auto":
            layout = "class_subfolders" if subdirs else "flat"
        self.layout = layout
        self.label_format = label_format
        self.label_file = label_file
        if layout == "class_subfolders":
            from ..imagenet import sorted_wnids, wnid_to_index

            self.classes = [p.name for p in subdirs]
            # wnid folder names map to the standard 0..999 index even when some are absent
            known = set(sorted_wnids())
            files, labels = [], []
            for ci, d in enumerate(subdirs):
                fs = _find_images(d)
                files += fs
                labels += [wnid_to_index(d.name) if d.name in known else ci] * len(fs)
            label_of = dict(zip(files, labels))
        else:
            self.classes = None
            files = [p for p in _find_images(self.root) if p.parent == self.root]
            label_of = self._read_label_file(files) if label_file else None
        if not files:
            raise HarnessError(f"imagenet_val: no images under {self.root}; check dataset.root")
        self._scan(files)
        self._labels = None if label_of is None else np.array([label_of[f] for f in self.files])

    def _read_label_file(self, files: list[Path]) -> dict:
        path = Path(self.label_file).expanduser()
        if not path.is_file():
            raise MissingInputError(_no_label_file(path, "dataset"))
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        from ..imagenet import devkit_id_to_index, wnid_to_index

        def parse(tok: str) -> int:
            try:
                if self.label_format == "wnid":
                    return wnid_to_index(tok)
                v = int(tok)
                if self.label_format == "devkit_id":
                    return devkit_id_to_index()[v]
                if not 0 <= v < 1000:
                    raise KeyError(v)
                return v
            except (ValueError, KeyError):
                raise HarnessError(
                    f"imagenet_val: label {tok!r} in {path} is not a valid {self.label_format} "
                    "label; set dataset.label_format to devkit_id, index or wnid"
                ) from None

        if all(len(t) == 1 for t in lines):
            if len(lines) != len(files):
                raise HarnessError(
                    f"imagenet_val: label file has {len(lines)} labels for {len(files)} images; "
                    "give one label per image in sorted file order, or '<filename> <label>' lines"
                )
            return {f: parse(t[0]) for f, t in zip(files, lines)}
        by_name = {t[0]: parse(t[1]) for t in lines}
        missing = [f.name for f in files if f.name not in by_name]
        if missing:
            raise HarnessError(
                f"imagenet_val: no label for {len(missing)} image(s), e.g. {missing[0]}; fix {path}"
            )
        return {f: by_name[f.name] for f in files}

    def _all_labels(self):
        return self._labels

    def _identity(self) -> dict:
        d = super()._identity()
        d["layout"] = self.layout
        return d

    def _extra_provenance(self) -> dict:
        d = super()._extra_provenance()
        d.update(
            layout=self.layout,
            has_labels=self._labels is not None,
            label_file=self.label_file,
            label_format=self.label_format,
            n_classes=None if self.classes is None else len(self.classes),
        )
        return d


def _no_imagenet(root: Path, path: str) -> str:
    return (
        f"{path}.root: imagenet_val directory {root} does not exist; put the 50,000 ILSVRC2012 "
        "validation images there (class subfolders n01440764/... or a flat folder with "
        f"{path}.label_file=...) and pass {path}.root=<dir>"
    )


def _no_label_file(label_file: Path, path: str) -> str:
    return f"{path}.label_file: imagenet_val label file {label_file} does not exist; fix it"
