"""Digits classifiers and the digits replication: wall times on this machine.

    python benchmarks/digits.py                 # training per framework (fresh, no cache)
    python benchmarks/digits.py --replication   # also `+experiment=paper` end to end (fresh cache)

Training runs with the disk cache off (every checkpoint is trained, none reused), best and median
of ``--repeat`` runs; the baseline in the same run is the cost of a cached checkpoint (what every
later use pays).  The replication runs ``python -m harness +experiment=paper`` in a subprocess
with a fresh ``INCEPTION_NOTE_CACHE`` (so the classifiers are trained once inside it) and
reports its wall time and the per-item seconds of its summary table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402,F401  (torch before TensorFlow in one process)

from harness import digits_cnn  # noqa: E402
from harness.backbones.weights import NO_DISK_CACHE  # noqa: E402


def time_training(repeat: int) -> list[dict]:
    rows = []
    for framework in digits_cnn.FRAMEWORKS:
        secs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                rec = digits_cnn.trained_checkpoints(
                    NO_DISK_CACHE, seeds=(0,), frameworks=(framework,), out_dir=out
                )
                secs.append(time.perf_counter() - t0)
        (r,) = rec.values()
        rows.append(
            {
                "framework": framework,
                "best_s": min(secs),
                "median_s": statistics.median(secs),
                "test_accuracy": r.get("test_accuracy"),
            }
        )
    with tempfile.TemporaryDirectory() as cache:
        digits_cnn.trained_checkpoints(cache, seeds=(0,), frameworks=("torch",))
        t0 = time.perf_counter()
        digits_cnn.trained_checkpoints(cache, seeds=(0,), frameworks=("torch",))
        rows.append({"framework": "torch, cached (baseline)", "best_s": time.perf_counter() - t0})
    return rows


def time_replication() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "INCEPTION_NOTE_CACHE": str(Path(tmp) / "cache")}
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "+experiment=paper",
                "progress=false",
                f"output_root={tmp}/results",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        table = None
        runs = sorted(Path(tmp, "results", "paper").glob("*/table.csv"))
        if runs:
            import pandas as pd

            table = pd.read_csv(runs[-1])
    return {"returncode": r.returncode, "wall_s": wall, "table": table, "stderr": r.stderr[-2000:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--replication", action="store_true")
    args = ap.parse_args()
    print(f"{'framework':<28} {'best s':>8} {'median s':>9} {'test acc':>9}")
    for row in time_training(args.repeat):
        acc = row.get("test_accuracy")
        print(
            f"{row['framework']:<28} {row['best_s']:>8.2f} "
            f"{row.get('median_s', float('nan')):>9.2f} "
            f"{'' if acc is None else f'{acc:.4f}':>9}"
        )
    if args.replication:
        got = time_replication()
        print(f"\n+experiment=paper (fresh cache): {got['wall_s']:.1f} s, exit {got['returncode']}")
        t = got["table"]
        if t is not None:
            cols = [c for c in ("label", "status", "seconds") if c in t.columns]
            print(t[cols].to_string(index=False))
        if got["returncode"]:
            print(got["stderr"])


if __name__ == "__main__":
    main()
