"""ImageNet class lists for each backbone's output layout.

Shipped data: ``assets/ilsvrc2012_devkit_classes.tsv`` = the ILSVRC2012 devkit table
(ILSVRC2012_ID 1..1000, wnid, short name).  From it:

* ``imagenet1000`` (torchvision, Keras): index i = i-th wnid in sorted order (n01440764 tench
  first).  Checked in tests against torchvision's own category names.
* ``tfhub1001``: index 0 = background, then the 1000 sorted wnids (TF-slim layout).
* ``tf2015_1008``: the 2015-12-05 graph's softmax index = ``target_class`` of its label map
  ``imagenet_2012_challenge_label_map_proto.pbtxt``.  Public copies show target_class 449 =
  n01440764 and 450 = n01443537, i.e. the devkit ILSVRC2012_ID, which this module assumes for
  all 1000 (indices 0 and 1001..1007 unused).  When the real ``.tgz`` is present, the label map
  inside it is read instead (:func:`tf2015_names_from_label_map`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from .errors import HarnessError

ASSETS = Path(__file__).resolve().parent / "assets"

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

LAYOUTS = ("imagenet1000", "tfhub1001", "tf2015_1008")


@lru_cache(maxsize=1)
def devkit_table() -> tuple:
    """((ilsvrc2012_id, wnid, name), ...) for ids 1..1000."""
    rows = []
    for line in (ASSETS / "ilsvrc2012_devkit_classes.tsv").read_text().splitlines():
        i, wnid, name = line.split("\t")
        rows.append((int(i), wnid, name.replace("_", " ")))
    return tuple(rows)


@lru_cache(maxsize=1)
def sorted_wnids() -> tuple:
    return tuple(sorted(r[1] for r in devkit_table()))


@lru_cache(maxsize=1)
def _name_of_wnid() -> dict:
    names = {}
    counts: dict = {}
    for _, _wnid, name in devkit_table():
        counts[name] = counts.get(name, 0) + 1
    for _, wnid, name in devkit_table():
        # two names are used twice in ILSVRC (crane, maillot): say which one
        names[wnid] = f"{name} ({wnid})" if counts[name] > 1 else name
    return names


def wnid_to_index(wnid: str) -> int:
    """Sorted-wnid index (0..999), the label order of torchvision and Keras."""
    try:
        return sorted_wnids().index(wnid)
    except ValueError:
        raise HarnessError(
            f"unknown ImageNet wnid {wnid!r}: not one of the 1000 ILSVRC2012 classes"
        ) from None


@lru_cache(maxsize=1)
def devkit_id_to_index() -> dict:
    """ILSVRC2012_ID (1..1000, as in the official validation ground-truth file) -> sorted index."""
    order = {w: i for i, w in enumerate(sorted_wnids())}
    return {i: order[w] for i, w, _ in devkit_table()}


def class_names(layout: str) -> list[str]:
    """Human-readable name of every output index for a backbone's output layout."""
    names = _name_of_wnid()
    if layout == "imagenet1000":
        return [names[w] for w in sorted_wnids()]
    if layout == "tfhub1001":
        return ["background"] + [names[w] for w in sorted_wnids()]
    if layout == "tf2015_1008":
        out = ["(unused)"] * 1008
        for i, w, _ in devkit_table():
            out[i] = names[w]
        return out
    raise HarnessError(f"unknown class layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def tf2015_names_from_label_map(label_map_text: str) -> list[str]:
    """Names of the 1008 outputs from the 2015 tgz's
    ``imagenet_2012_challenge_label_map_proto.pbtxt``.
    """
    names = _name_of_wnid()
    out = ["(unused)"] * 1008
    for cls, wnid in re.findall(
        r'target_class:\s*(\d+)\s*target_class_string:\s*"(n\d+)"', label_map_text
    ):
        out[int(cls)] = names.get(wnid, wnid)
    return out


def meaningful_indices(layout: str) -> list[int]:
    """Output indices that are real ImageNet classes (drops background and unused outputs)."""
    if layout == "imagenet1000":
        return list(range(1000))
    if layout == "tfhub1001":
        return list(range(1, 1001))
    if layout == "tf2015_1008":
        return list(range(1, 1001))
    raise HarnessError(f"unknown class layout {layout!r}")


def sorted_index_of_outputs(layout: str, raw_indices):
    """Sorted-wnid class index (0..999) of raw output indices of ``layout`` (-1: not a class)."""
    import numpy as np

    raw = np.asarray(raw_indices)
    if layout == "imagenet1000":
        return raw.copy()
    if layout == "tfhub1001":
        return np.where((raw >= 1) & (raw <= 1000), raw - 1, -1)
    if layout == "tf2015_1008":
        dev = devkit_id_to_index()
        table = np.full(1008, -1)
        for i in range(1, 1001):
            table[i] = dev[i]
        return table[raw]
    raise HarnessError(f"unknown class layout {layout!r}")


def layout_of_outputs(n: int) -> str:
    """The class layout of a classifier with ``n`` outputs (1000, 1001 or 1008)."""
    layouts = {1000: "imagenet1000", 1001: "tfhub1001", 1008: "tf2015_1008"}
    if n not in layouts:
        raise HarnessError(
            f"a classifier with {n} outputs is none of the ImageNet layouts "
            "(1000, 1001 with background, 1008 of the 2015 graph)"
        )
    return layouts[n]
