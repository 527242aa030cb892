"""Folder of image files -> IS, end to end: the harness against torch-fidelity and clean-fid.

    python benchmarks/files.py [--n 120] [--decode-n 400] [--workers 1 2] [--rounds 2]
                               [--device cuda --batch-size 256]   # the GPU target

Generates three folders (32x32 PNG, 256x256 JPEG, 1024x1024 PNG) of smooth random images and
reports, on this machine:

1. decode only: images/s of the harness's file source serially and with ``num_workers`` threads
   or processes (``worker_type``), batches of 64 with the default prefetch, and the speed-up;
2. end to end: folder -> logits -> IS with ``tf2015_torch`` (weights ``random:0``, cache off)
   against the same images already in memory (an ``arrays`` source): the ratio is what file
   decoding costs once it overlaps with the network; the folder's scan is timed too;
3. the peers on the same folders and the same network weights (the harness's random 2015 graph
   exported with ``harness.export``): ``torch_fidelity.calculate_metrics(input1=folder,
   isc=True)`` and clean-fid's ``get_folder_features`` with a custom model (its offline hook:
   ``model=callable``; the callable runs torch-fidelity's extractor on clean-fid's resized batch).

Numbers go to stdout as a table; record them in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FOLDERS = [("png32", 32, "png"), ("jpeg256", 256, "jpg"), ("png1024", 1024, "png")]


def smooth_images(n, size, seed):
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    from PIL import Image

    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((size, size), Image.BILINEAR)
        noise = rng.normal(0, 6, (size, size, 3))
        out[i] = np.clip(np.asarray(im, np.float64) + noise, 0, 255).astype(np.uint8)
    return out


def write_folder(root: Path, n, size, ext, seed=0):
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    if len(list(root.glob(f"*.{ext}"))) == n:
        return
    for i, x in enumerate(smooth_images(n, size, seed)):
        Image.fromarray(x).save(root / f"{i:05d}.{ext}", quality=90)


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def decode_rate(root, workers, n, worker_type="thread", batch_size=64):
    """Decode-only images/s (best of 3 passes; the first also starts a process pool)."""
    from harness import data

    src = data.load_source(
        "folder",
        root=str(root),
        num_workers=workers,
        worker_type=worker_type,
        prefetch=2,
        progress=False,
    )
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        k = sum(len(b) for b in src.batches(batch_size))
        best = max(best, rate(k, time.perf_counter() - t))
    return best, src


def harness_is(src, batch_size=32, device="cpu"):
    from harness import backbones, scores

    net = backbones.load_backbone(
        "tf2015_torch", weights="random:0", batch_size=batch_size, device=device
    )
    t = time.perf_counter()
    logits = np.concatenate([net.logits(b) for b in src.batches(batch_size)])
    r = scores.inception_score(scores.softmax(logits), n_splits=10)
    return rate(len(logits), time.perf_counter() - t), r.mean


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120, help="images per folder for end to end")
    ap.add_argument("--decode-n", type=int, default=400, help="images per folder for decoding")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved end-to-end rounds (best)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for every network")
    ap.add_argument("--batch-size", type=int, default=32, help="network batch, every contender")
    return ap.parse_args(argv)


def decode_rows(base: Path, name, size, ext, a) -> list[tuple]:
    """Decode-only rows of one folder kind: serial, then each worker count and type."""
    # enough images for several jobs of 256 small images in flight; fewer of the large ones
    dn = {32: a.decode_n * 10, 256: a.decode_n * 5}.get(size, max(a.n, a.decode_n // 4))
    write_folder(base / f"{name}_decode", dn, size, ext)
    r1 = decode_rate(base / f"{name}_decode", 1, dn)[0]
    rows = [(name, "decode only, num_workers=1 (serial)", r1, 1.0)]
    for w in (w for w in a.workers if w > 1):
        for kind in ("thread", "process"):
            r = decode_rate(base / f"{name}_decode", w, dn, kind)[0]
            rows.append((name, f"decode only, num_workers={w}, worker_type={kind}", r, r / r1))
    return rows


def torch_fidelity_rate(root, weights, a) -> float:
    """Images/s of torch-fidelity's IS on the folder ``root``."""
    import torch_fidelity

    t = time.perf_counter()
    torch_fidelity.calculate_metrics(
        input1=str(root),
        isc=True,
        feature_extractor_weights_path=str(weights),
        cuda=a.device == "cuda",
        cache=False,
        verbose=False,
        batch_size=a.batch_size,
        samples_shuffle=False,
    )
    return rate(a.n, time.perf_counter() - t)


def clean_fid_rate(root, weights, a) -> float:
    """Images/s of clean-fid's features of the folder ``root``, with torch-fidelity's network."""
    import torch
    from cleanfid import fid as cfid
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ext = (
        FeatureExtractorInceptionV3(  # built outside the timing, as the harness's net
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
        )
        .eval()
        .to(a.device)
    )
    t = time.perf_counter()

    def model(x):  # clean-fid: float32 NCHW in [0, 255], resized to 299
        with torch.no_grad():
            return ext(x.clamp(0, 255).round().to(torch.uint8))[0]

    cfid.get_folder_features(
        str(root),
        model=model,
        num_workers=0,
        batch_size=a.batch_size,
        device=torch.device(a.device),
        mode="clean",
        verbose=False,
    )
    return rate(a.n, time.perf_counter() - t)


def contenders(root: Path, mem_path, weights, a) -> list[tuple]:
    """(what, a callable giving its images/s) for the folder ``root``: the harness from the
    folder, from the same images in memory (None without ``mem_path``), and the peers."""
    from harness import data

    results: dict = {}

    def harness_folder():
        t_scan = time.perf_counter()
        folder = data.load_source("folder", root=str(root), progress=False)  # default workers
        t_scan = time.perf_counter() - t_scan
        r, is_mean = harness_is(folder, a.batch_size, a.device)
        results["is_file"] = is_mean
        return rate(a.n, a.n / r + t_scan)  # the folder scan (hashes, headers) counts too

    def harness_memory():
        mem = data.load_source("arrays", path=str(mem_path), progress=False)
        r, is_mean = harness_is(mem, a.batch_size, a.device)
        assert abs(is_mean - results["is_file"]) < 1e-9 * is_mean  # same images, same IS
        return r

    return [
        ("harness: folder -> IS (tf2015_torch), scan included", harness_folder),
        ("harness: in-memory arrays -> IS (same images)", harness_memory if mem_path else None),
        (
            "torch-fidelity: calculate_metrics(input1=folder, isc=True)",
            lambda: torch_fidelity_rate(root, weights, a),
        ),
        (
            "clean-fid: get_folder_features(model=custom, mode=clean)",
            lambda: clean_fid_rate(root, weights, a),
        ),
    ]


def best_rates(timed: list[tuple], rounds: int) -> dict:
    """Each contender's best images/s over interleaved rounds (or why it failed)."""
    best: dict = {}
    for _ in range(rounds):  # interleaved rounds, best of each: this machine drifts ~10%
        for what, fn in timed:
            if fn is None:
                continue
            try:
                best[what] = max(best.get(what, 0.0), fn())
            except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported
                best[what] = f"failed ({type(exc).__name__}: {exc})"
    return best


def end_to_end_rows(base: Path, name, size, ext, weights, a) -> list[tuple]:
    """End-to-end rows of one folder kind: the harness from the folder (ratio 1.00), from memory
    and the peers (ratio: harness folder / them)."""
    from harness import data

    root = base / f"{name}_e2e"
    write_folder(root, a.n, size, ext, seed=1)
    mem_path = None
    if size <= 256:  # the same decoded images as an in-memory (.npy, memory-mapped) source
        mem_path = base / f"{name}.npy"
        np.save(mem_path, data.load_source("folder", root=str(root), progress=False).read_all())
    timed = contenders(root, mem_path, weights, a)
    best = best_rates(timed, a.rounds)
    r_file = best[timed[0][0]]
    rows = []
    for what, fn in timed:
        if fn is None:
            continue
        r = best[what]
        if isinstance(r, str):
            rows.append((name, f"{what.split(':')[0]}: {r}", 0, 0))
        else:  # the folder row 1.00; the others: harness folder / them
            rows.append((name, what, r, 1.0 if what == timed[0][0] else r_file / r))
    return rows


def print_rows(rows: list[tuple]) -> None:
    print(f"\n{'folder':8s} {'what':62s} {'images/s':>9s} {'ratio':>7s}")
    for name, what, r, ratio in rows:
        print(f"{name:8s} {what:62s} {r:9.1f} {ratio:7.2f}")
    print(
        "\nratio: decode rows vs the first worker count; folder row 1.00; in-memory row = "
        "folder / in-memory; peer rows = harness folder / peer (> 1: the harness is faster)"
    )


def main(argv=None):
    a = parse_args(argv)
    import torch

    from harness.export import export_2015_weights

    base = Path(a.dir or tempfile.mkdtemp(prefix="bench-files-"))
    weights = export_2015_weights(base / "random0_2015.pth", "random:0")
    print(f"machine: {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; dir {base}")
    rows = []
    for name, size, ext in FOLDERS:
        rows += decode_rows(base, name, size, ext, a)
        rows += end_to_end_rows(base, name, size, ext, weights, a)
    print_rows(rows)


if __name__ == "__main__":
    main()
