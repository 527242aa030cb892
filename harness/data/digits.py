"""scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``): a real image set
that ships with a package, no download.

1,797 grey 8 x 8 images of the digits 0-9 (the UCI "optdigits" set as scikit-learn bundles it),
values the integers 0..16, labels kept.  How they become the harness's images, all recorded:

* scaling, exactly: ``uint8 = round(v * 255 / 16)`` (0 -> 0, 16 -> 255; computed in integers as
  ``(255 v + 8) // 16``: the one tie, v = 8 -> 127.5, goes to 128 under round-half-up and
  round-half-to-even alike);
* grey replicated to 3 equal channels (the harness's format is uint8 N x H x W x 3);
* ``upscale`` k: nearest-neighbour, every pixel repeated k x k times (exact; 4 -> 32 x 32, so
  networks with a minimum input side of 16 can see them);
* a fixed stratified split that does not depend on scikit-learn's RNG: per class (in order
  0..9), one ``numpy.random.default_rng(0)`` draws a permutation of that class's indices; the
  first ``round(0.3 * n_class)`` go to ``test``, the rest to ``train``; each split keeps the
  original order (sorted indices).  ``all`` is the whole set in its original order.
* ``arrangement``: ``as_loaded`` (scikit-learn's order, the default; its digits run roughly
  0, 1, ..., 9, 0, 1, ..., so contiguous splits already see every class) or ``class_sorted`` (a
  stable sort of the split by label, as an ImageFolder yields a dataset: all 0s, then all 1s,
  ...), applied before ``order`` and ``n``; recorded (and part of the fingerprint when not
  ``as_loaded``, so as-loaded fingerprints are those of version 1).

The fingerprint covers the sha256 of the raw array and of the labels, scikit-learn's version,
the split, the scaling and the upscale factor, so a changed bundle changes it.

:class:`PhotoTilesSource` (``dataset=photo_tiles``): out-of-domain images for the digits
classifiers, from the two photographs scikit-learn bundles (``load_sample_images``: china.jpg,
flower.jpg), made grey, block-averaged and cut into tiles; see its docstring for every rule.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from .. import settings as S
from ..errors import HarnessError
from .base import ImageSource

#: bump when the conversion or the split rule changes (part of the fingerprint)
DIGITS_VERSION = 1
SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.3
SPLIT_SEED = 0
SCALING = "uint8 = round(v * 255 / 16), v in 0..16 (computed as (255 v + 8) // 16)"
SPLIT_RULE = (
    "stratified per class: 30% test (round(0.3 * n_class) per class), numpy default_rng(0) "
    "permutation of each class's indices, classes 0..9 in order with one generator; "
    "sorted by original index"
)
CHANNELS = "grey replicated to 3 equal channels (RGB)"
UPSCALE_RULE = "nearest neighbour: each pixel repeated upscale x upscale times (exact)"
ARRANGEMENTS = ("as_loaded", "class_sorted")
ARRANGEMENT_RULES = {
    "as_loaded": "scikit-learn's order within the split (sorted original indices)",
    "class_sorted": "stable sort of the split by label (0s, then 1s, ...; within a class "
    "scikit-learn's order), like an ImageFolder",
}
CLASS_NAMES = tuple(str(i) for i in range(10))
RAW_SIZE = 8


@lru_cache(maxsize=1)
def _raw():
    """(grey uint8 N x 8 x 8 scaled to 0..255, labels int64, raw sha256, labels sha256,
    scikit-learn version): read once per process."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise HarnessError(
            "dataset=digits needs scikit-learn: pip install scikit-learn (or pip install -e .)"
        ) from None
    bunch = load_digits()
    raw = np.ascontiguousarray(bunch.images)
    target = np.asarray(bunch.target, dtype=np.int64)
    if raw.shape[1:] != (RAW_SIZE, RAW_SIZE) or len(target) != len(raw):
        raise HarnessError(
            f"dataset digits: scikit-learn {sklearn.__version__} returned images of shape "
            f"{raw.shape}; expected N x 8 x 8 (reinstall scikit-learn)"
        )
    ints = np.rint(raw)
    if not (np.array_equal(ints, raw) and ints.min() >= 0 and ints.max() <= 16):
        raise HarnessError(
            f"dataset digits: scikit-learn {sklearn.__version__}'s digits are not the integers "
            "0..16 this source scales exactly; reinstall scikit-learn"
        )
    grey = ((ints.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)
    raw_sha = hashlib.sha256(raw.tobytes()).hexdigest()
    labels_sha = hashlib.sha256(target.astype("<i8").tobytes()).hexdigest()
    return grey, target, raw_sha, labels_sha, sklearn.__version__


def split_indices(labels: np.ndarray) -> dict:
    """``{"train": idx, "test": idx, "all": idx}`` (sorted int64 indices) by the fixed
    stratified rule of this module (:data:`SPLIT_RULE`)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = int(round(TEST_FRACTION * len(members)))
        test.append(members[rng.permutation(len(members))[:n_test]])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    all_idx = np.arange(len(labels), dtype=np.int64)
    train_idx = np.setdiff1d(all_idx, test_idx).astype(np.int64)
    return {"train": train_idx, "test": test_idx, "all": all_idx}


class DigitsSource(ImageSource):
    """scikit-learn's bundled 8 x 8 digits (see the module docstring for every conversion)."""

    kind = "digits"
    summary = (
        "scikit-learn's bundled handwritten digits (1,797 images, 8x8, 10 classes, labels kept; "
        "no download), scaled exactly to uint8 RGB."
    )
    class_names = CLASS_NAMES
    #: the labels' space (a backbone declaring the same ``label_space`` gets top-1 accuracy)
    label_space = "digits10"

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting(
                "split",
                S.Choice(SPLITS),
                "train",
                "train | test | all: fixed stratified split, 30% of each class in test",
            ),
            S.Setting(
                "upscale",
                S.Int(lo=1, hi=64),
                1,
                "nearest-neighbour factor (exact pixel repetition): 4 -> 32x32",
            ),
            S.Setting(
                "arrangement",
                S.Choice(ARRANGEMENTS),
                "as_loaded",
                "as_loaded (scikit-learn's order: classes interleaved) | class_sorted (stable "
                "sort by label, like an ImageFolder); before order and n",
            ),
            *super().entries(),
        ]

    def __init__(self, *, split, upscale, arrangement, **kw):
        super().__init__(**kw)
        self.split = split
        self.upscale = int(upscale)
        self.arrangement = arrangement
        grey, target, self.raw_sha256, self.labels_sha256, self.sklearn_version = _raw()
        self.splits = split_indices(target)
        members = self.splits[split]
        if arrangement == "class_sorted":
            members = members[np.argsort(target[members], kind="stable")]
        self._members = members
        self._grey = grey[self._members]
        self._labels_split = target[self._members]

    def _total(self) -> int:
        return len(self._members)

    def _read(self, idx):
        g = self._grey[np.asarray(idx, dtype=np.int64)]
        if self.upscale > 1:
            g = np.repeat(np.repeat(g, self.upscale, axis=1), self.upscale, axis=2)
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=-1))

    def _all_labels(self):
        return self._labels_split

    @property
    def original_indices(self) -> np.ndarray:
        """Indices into ``load_digits()`` of the samples, in the order they are yielded."""
        return self._members[self.indices]

    def _resolution(self):
        side = RAW_SIZE * self.upscale
        return (side, side)

    def _identity(self) -> dict:
        ident = {
            "split": self.split,
            "upscale": self.upscale,
            "raw_sha256": self.raw_sha256,
            "labels_sha256": self.labels_sha256,
            "scikit_learn": self.sklearn_version,
            "scaling": SCALING,
            "split_rule": SPLIT_RULE,
            "digits_version": DIGITS_VERSION,
        }
        if self.arrangement != "as_loaded":  # as-loaded fingerprints stay those of version 1
            ident["arrangement"] = ARRANGEMENT_RULES[self.arrangement]
        return ident

    def _extra_provenance(self) -> dict:
        counts = np.bincount(self._labels_split, minlength=len(CLASS_NAMES))
        return {
            "source": "sklearn.datasets.load_digits (bundled with scikit-learn, no download)",
            "scikit_learn": self.sklearn_version,
            "raw_sha256": self.raw_sha256,
            "labels_sha256": self.labels_sha256,
            "split": self.split,
            "split_rule": SPLIT_RULE,
            "split_counts": {k: int(len(v)) for k, v in self.splits.items()},
            "class_counts": {n: int(c) for n, c in zip(CLASS_NAMES, counts)},
            "class_names": list(CLASS_NAMES),
            "label_space": self.label_space,
            "scaling": SCALING,
            "channels": CHANNELS,
            "upscale": self.upscale,
            "upscale_rule": UPSCALE_RULE,
            "arrangement": self.arrangement,
            "arrangement_rule": ARRANGEMENT_RULES[self.arrangement],
        }

    def describe(self) -> str:
        return (
            f"digits {self.split} (n={len(self)}, {self.arrangement}, {self.order_label}, "
            f"upscale {self.upscale})"
        )


# ------------------------------------------------------------------------------ photo tiles
PHOTOS = ("china.jpg", "flower.jpg")
#: bump when a rule below changes (part of the fingerprint)
TILES_VERSION = 1
GREY_RULE = "grey = round((R + G + B) / 3), computed as (R + G + B + 1) // 3 (exact: no ties)"
BLOCK_RULE = (
    "block b: the grey image cropped to multiples of b (rows and columns past the last whole "
    "block dropped, top-left origin), each b x b block replaced by its mean rounded half up, "
    "computed as (2 * sum + b^2) // (2 * b^2); b = 1: unchanged"
)
TILE_RULE = (
    "non-overlapping size x size tiles of the block-averaged image in raster order (top-left "
    "origin; a partial tile at the right or bottom edge is dropped), china.jpg's tiles first, "
    "then flower.jpg's; grey replicated to 3 equal channels"
)
SELECTION_RULE = (
    "count tiles drawn without replacement by numpy.random.default_rng(seed).choice(total, "
    "count, replace=False), then sorted (so as_loaded is raster order)"
)


@lru_cache(maxsize=1)
def _photos():
    """((name, uint8 H x W x 3), ...), sha256 of each image's pixels, scikit-learn's version:
    ``load_sample_images`` read once per process."""
    try:
        import sklearn
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise HarnessError(
            "dataset=photo_tiles needs scikit-learn (and Pillow): pip install scikit-learn"
        ) from None
    try:
        bunch = load_sample_images()
    except ImportError as exc:  # scikit-learn reads the JPEGs with Pillow
        raise HarnessError(
            f"dataset=photo_tiles needs Pillow to read the photographs: {exc}"
        ) from None
    names = [str(f).replace("\\", "/").rsplit("/", 1)[-1] for f in bunch.filenames]
    images = dict(zip(names, bunch.images))
    if sorted(images) != sorted(PHOTOS):
        raise HarnessError(
            f"dataset photo_tiles: scikit-learn {sklearn.__version__} bundles {sorted(images)}, "
            f"expected {list(PHOTOS)}; reinstall scikit-learn"
        )
    out, shas = [], {}
    for name in PHOTOS:
        img = np.ascontiguousarray(images[name])
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise HarnessError(
                f"dataset photo_tiles: {name} was read as {img.dtype} {img.shape}, expected uint8 "
                "H x W x 3; reinstall scikit-learn / Pillow"
            )
        out.append((name, img))
        shas[name] = hashlib.sha256(img.tobytes()).hexdigest()
    return tuple(out), shas, sklearn.__version__


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> uint8 H x W by :data:`GREY_RULE`."""
    s = rgb.astype(np.int64).sum(axis=-1)
    return ((s + 1) // 3).astype(np.uint8)


def block_mean(grey: np.ndarray, b: int) -> np.ndarray:
    """uint8 H x W -> uint8 (H // b) x (W // b) by :data:`BLOCK_RULE`."""
    if b == 1:
        return grey
    h, w = grey.shape[0] // b, grey.shape[1] // b
    s = grey[: h * b, : w * b].astype(np.int64).reshape(h, b, w, b).sum(axis=(1, 3))
    return ((2 * s + b * b) // (2 * b * b)).astype(np.uint8)


def tiles_of(small: np.ndarray, size: int) -> np.ndarray:
    """uint8 H x W -> uint8 T x size x size, raster order, partial edge tiles dropped."""
    th, tw = small.shape[0] // size, small.shape[1] // size
    t = small[: th * size, : tw * size].reshape(th, size, tw, size).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(t.reshape(th * tw, size, size))


class PhotoTilesSource(ImageSource):
    """Out-of-domain images for a small classifier, no download: tiles of the two photographs
    scikit-learn bundles (``sklearn.datasets.load_sample_images``: china.jpg and flower.jpg,
    427 x 640 colour), every step exact integer arithmetic on the decoded pixels:

    1. grey, :data:`GREY_RULE`;
    2. ``block`` b: mean over b x b blocks, :data:`BLOCK_RULE` (default 8: 427 x 640 -> 53 x 80,
       so an 8 x 8 tile shows a 64 x 64-pixel patch of the photograph, e.g. a petal or a roof);
    3. tiles of ``size`` x ``size``, :data:`TILE_RULE` (defaults: 6 x 10 tiles per photograph,
       120 in all);
    4. ``count`` of them, :data:`SELECTION_RULE`.

    No labels.  The fingerprint covers the sha256 of each photograph's decoded pixels, every
    rule, the parameters and the selection, so another scikit-learn or JPEG decoder that changes
    a pixel changes it.
    """

    kind = "photo_tiles"
    summary = (
        "Out-of-domain images, no download: grey tiles of the photographs bundled with "
        "scikit-learn (china.jpg, flower.jpg), block-averaged; no labels."
    )

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting("size", S.Int(lo=1, hi=427), 8, "tile side in pixels (after block)"),
            S.Setting(
                "block",
                S.Int(lo=1, hi=427),
                8,
                "integer block-mean downscale before tiling (1 = none): 8 -> a tile shows 64x64 "
                "photo pixels",
            ),
            S.Setting(
                "count",
                S.Int(lo=1),
                100,
                "tiles drawn (without replacement) from all tiles of both photographs",
            ),
            S.Setting(
                "seed",
                S.Seed(),
                0,
                "seeds which tiles are drawn (a shuffle of the order has its own order_seed)",
                yaml="${seed}",
            ),
            *super().entries(),
        ]

    def __init__(self, *, size, block, count, seed, **kw):
        super().__init__(**kw)
        self.size, self.block, self.count, self.tile_seed = (
            int(size),
            int(block),
            int(count),
            int(seed),
        )
        photos, self.photo_sha256, self.sklearn_version = _photos()
        tiles, origin = [], []
        for name, img in photos:
            small = block_mean(grey_of(img), self.block)
            if min(small.shape) < self.size:
                raise HarnessError(
                    f"dataset photo_tiles: {name} is {small.shape[0]}x{small.shape[1]} after "
                    f"block={self.block}, smaller than one tile of size={self.size}; lower "
                    "dataset.block or dataset.size"
                )
            t = tiles_of(small, self.size)
            tiles.append(t)
            origin += [name] * len(t)
        all_tiles = np.concatenate(tiles)
        self.total_tiles = len(all_tiles)
        if self.count > self.total_tiles:
            raise HarnessError(
                f"dataset photo_tiles: count={self.count} but size={self.size}, "
                f"block={self.block} make only {self.total_tiles} tiles; use "
                f"dataset.count<={self.total_tiles} (or a smaller block or size)"
            )
        rng = np.random.default_rng(self.tile_seed)
        self.tile_indices = np.sort(rng.choice(self.total_tiles, self.count, replace=False))
        self._tiles = all_tiles[self.tile_indices]
        self._origin = [origin[i] for i in self.tile_indices]

    def _total(self) -> int:
        return self.count

    def _read(self, idx):
        g = self._tiles[np.asarray(idx, dtype=np.int64)]
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=-1))

    def _resolution(self):
        return (self.size, self.size)

    def _identity(self) -> dict:
        return {
            "photos_sha256": self.photo_sha256,
            "scikit_learn": self.sklearn_version,
            "size": self.size,
            "block": self.block,
            "count": self.count,
            "seed": self.tile_seed,
            "grey_rule": GREY_RULE,
            "block_rule": BLOCK_RULE,
            "tile_rule": TILE_RULE,
            "selection_rule": SELECTION_RULE,
            "tiles_version": TILES_VERSION,
        }

    def _extra_provenance(self) -> dict:
        per_photo = {n: int(sum(o == n for o in self._origin)) for n in PHOTOS}
        return {
            "source": "sklearn.datasets.load_sample_images (bundled with scikit-learn, no "
            "download)",
            "scikit_learn": self.sklearn_version,
            "photos_sha256": self.photo_sha256,
            "grey_rule": GREY_RULE,
            "block": self.block,
            "block_rule": BLOCK_RULE,
            "size": self.size,
            "tile_rule": TILE_RULE,
            "total_tiles": self.total_tiles,
            "count": self.count,
            "tile_seed": self.tile_seed,
            "selection_rule": SELECTION_RULE,
            "tiles_per_photo": per_photo,
            "channels": CHANNELS,
            "labels": "none (out-of-domain images)",
        }

    def describe(self) -> str:
        return (
            f"photo_tiles (n={len(self)}, {self.size}x{self.size}, block {self.block}, "
            f"{self.order_label})"
        )
