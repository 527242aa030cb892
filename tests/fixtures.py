"""Tiny datasets in the official formats, written by the tests (no downloads)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from harness import data


def write_cifar(root: Path, n_per_batch=6, seed=0):
    """A CIFAR-10 python-pickle tree (cifar-10-batches-py/) with synthetic content + labels."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x = data.load_source("synthetic", count=n_per_batch, seed=seed * 100 + k).read_all()
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        flat = x.transpose(0, 3, 1, 2).reshape(n_per_batch, 3072)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": flat, b"labels": y, b"batch_label": name.encode()}, f)
        images[name] = (x, np.array(y))
    return images


def write_pngs(folder: Path, n=12, seed=0, size=32) -> np.ndarray:
    """``n`` synthetic RGB PNGs named 000.png ...; returns the pixels."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = data.load_source("synthetic", count=n, seed=seed, size=size).read_all()
    for i, im in enumerate(x):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    return x


def write_imagenet_val(root: Path, per_class=4, classes=("n01440764", "n01443537", "n01484850")):
    """Class-subfolder ImageNet val (ImageFolder layout) with synthetic JPEGs."""
    k = 0
    for c in classes:
        d = Path(root) / c
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(per_class):
            x = data.load_source("synthetic", count=1, seed=1000 + k, size=40).read_all()[0]
            Image.fromarray(x).save(d / f"ILSVRC2012_val_{k:08d}.JPEG", quality=95)
            k += 1


def write_datasets(data_root: Path) -> None:
    """CIFAR-10 (30 train, 6 test) and a 12-image ImageNet val under ``data_root``."""
    write_cifar(data_root)
    write_imagenet_val(Path(data_root) / "imagenet" / "val")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``python -m harness *args`` in this process: (exit code, stdout, stderr)."""
    from harness import cli

    capsys.readouterr()
    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str) -> str:
    """The one ``error: ...`` line a user-fixable problem prints (asserts there is only that)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0]
