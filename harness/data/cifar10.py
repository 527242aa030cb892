"""CIFAR-10 from the standard python-pickle layout (the one torchvision's ``CIFAR10`` uses).

``root`` may be the directory that contains ``cifar-10-batches-py/`` or that directory itself.
The split is small (50,000 x 32 x 32 x 3 = 150 MB), so it is held in memory once loaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .. import settings as S
from ..errors import HarnessError, MissingInputError
from ..frameworks import import_torchvision
from ..storage import file_hashes  # md5 and sha256 in one pass
from .base import ImageSource

BASE_FOLDER = "cifar-10-batches-py"
# md5 of the official files (torchvision's CIFAR10 checks the same values)
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SPLIT_FILES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}


def _folder(root: Path) -> Path:
    return root if root.name == BASE_FOLDER else root / BASE_FOLDER


def _not_found(folder: Path, split: str, path: str) -> str:
    """Where CIFAR-10 was looked for and each way to give it, naming the node's keys (the
    reference set's are ``reference.*``, and there a folder of the user's own is the usual fix)."""
    own = "give your own reference images with reference=<dir>, or " if path == "reference" else ""
    return (
        f"{path}.root: cifar10 {split} files not found in {folder} (expected "
        f"{', '.join(SPLIT_FILES[split])}); {own}extract cifar-10-python.tar.gz from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html there and point {path}.root at its parent, "
        f"or pass {path}.download=true on a connected machine"
    )


class Cifar10Source(ImageSource):
    kind = "cifar10"
    summary = "CIFAR-10 train (50,000 images, 32x32) from the python-pickle layout under `root`."

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting(
                "root",
                S.Path(),
                "~/.cache/inception-note/datasets",
                "directory holding cifar-10-batches-py/ (or that directory itself)",
                yaml="${data_root}",
            ),
            S.Setting("split", S.Choice(tuple(SPLIT_FILES)), "train", "train | test"),
            S.Setting(
                "download", S.Bool(), False, "true: fetch through torchvision (needs network)"
            ),
            *super().entries(),
        ]

    @classmethod
    def missing_input(cls, params: dict, path: str) -> str | None:
        root, split = params.get("root"), params.get("split", "train")
        if not isinstance(root, str) or split not in SPLIT_FILES or params.get("download"):
            return None
        folder = _folder(Path(root).expanduser())
        if all((folder / f).is_file() for f in SPLIT_FILES[split]):
            return None
        return _not_found(folder, split, path)

    def __init__(self, *, root, split, download, **kw):
        super().__init__(**kw)
        self.split = split
        folder = _folder(Path(root).expanduser())
        missing = [f for f in SPLIT_FILES[split] if not (folder / f).is_file()]
        if missing and download:
            self._download(folder.parent)
            missing = [f for f in SPLIT_FILES[split] if not (folder / f).is_file()]
        if missing:
            raise MissingInputError(_not_found(folder, split, "dataset"))
        self.folder = folder
        self._data: np.ndarray | None = None
        self._labels_all: np.ndarray | None = None
        self.file_md5, self.file_sha256 = {}, {}
        for f in SPLIT_FILES[split]:
            h = file_hashes(folder / f)
            self.file_md5[f], self.file_sha256[f] = h["md5"], h["sha256"]
        self.official = all(self.file_md5[f] == OFFICIAL_MD5[f] for f in SPLIT_FILES[split])
        if not self.official:
            import warnings

            warnings.warn(
                f"cifar10: files in {folder} do not match the official md5 sums; "
                "results will be labelled as non-official data",
                stacklevel=2,
            )

    @staticmethod
    def _download(root: Path) -> None:
        import_torchvision()
        from torchvision.datasets import CIFAR10

        try:
            CIFAR10(str(root), train=True, download=True)
            CIFAR10(str(root), train=False, download=True)
        except Exception as exc:  # network errors come in many types
            raise MissingInputError(
                f"cifar10: download into {root} failed ({type(exc).__name__}); this machine may be "
                "offline: copy cifar-10-batches-py/ there from a connected machine"
            ) from None

    def _load(self):
        if self._data is None:
            xs, ys = [], []
            for f in SPLIT_FILES[self.split]:
                try:
                    with open(self.folder / f, "rb") as fh:
                        d = pickle.load(fh, encoding="bytes")
                    x = np.asarray(d[b"data"], dtype=np.uint8)
                    y = np.asarray(d[b"labels"], dtype=np.int64)
                except Exception as exc:
                    raise HarnessError(
                        f"cifar10: cannot read {self.folder / f} ({type(exc).__name__}); "
                        "re-extract the official archive"
                    ) from None
                if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
                    raise HarnessError(
                        f"cifar10: {self.folder / f} is not a CIFAR-10 batch (data shape {x.shape})"
                    )
                xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(y)
            self._data = np.ascontiguousarray(np.concatenate(xs))
            self._labels_all = np.concatenate(ys)
        return self._data, self._labels_all

    def _total(self) -> int:
        return len(self._load()[0])

    def _read(self, idx):
        return self._load()[0][idx]

    def _all_labels(self):
        return self._load()[1]

    def _identity(self) -> dict:
        return {"split": self.split, "files_sha256": self.file_sha256}

    def _resolution(self):
        return (32, 32)

    def _extra_provenance(self) -> dict:
        return {"root": str(self.folder), "split": self.split, "official_md5_match": self.official}

    def paper_dataset(self) -> str | None:
        return f"cifar10_{self.split}"
