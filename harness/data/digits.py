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

The fingerprint covers the sha256 of the raw array and of the labels, scikit-learn's version,
the split, the scaling and the upscale factor, so a changed bundle changes it.
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
            *super().entries(),
        ]

    def __init__(self, *, split, upscale, **kw):
        super().__init__(**kw)
        self.split = split
        self.upscale = int(upscale)
        grey, target, self.raw_sha256, self.labels_sha256, self.sklearn_version = _raw()
        self.splits = split_indices(target)
        self._members = self.splits[split]
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
        return {
            "split": self.split,
            "upscale": self.upscale,
            "raw_sha256": self.raw_sha256,
            "labels_sha256": self.labels_sha256,
            "scikit_learn": self.sklearn_version,
            "scaling": SCALING,
            "split_rule": SPLIT_RULE,
            "digits_version": DIGITS_VERSION,
        }

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
        }

    def describe(self) -> str:
        return f"digits {self.split} (n={len(self)}, {self.order_label}, upscale {self.upscale})"
