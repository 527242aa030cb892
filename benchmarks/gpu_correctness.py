"""CUDA against CPU: the same images, weights and knobs must give the same logits and IS.

    python benchmarks/gpu_correctness.py            (needs a CUDA GPU; CI has none)

Checks, each in exact float32 (TF32 off) unless named: torchvision (random weights, native
settings), the 2015 IS network ported into PyTorch (``weights=ported:tf2015:random:0``,
``pool_compat=tf2015``, (x-128)/128, no bias, 1008 classes), and the effect of BN folding and
TF32 on the same logits.  Prints the max relative logits error and the 10-split IS on each device.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import backbones, data, scores  # noqa: E402


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_correctness: no CUDA GPU")
    x = data.load_source("synthetic", count=64, seed=3).read_all()
    cases = {
        "torchvision random:0": dict(weights="random:0"),
        "2015 IS network in PyTorch (ported:tf2015:random:0)": dict(
            weights="ported:tf2015:random:0",
            pool_compat="tf2015",
            input_norm="centered_128",
            bias=False,
            resize="tf1_bilinear",
        ),
    }
    print(f"{'case':55s} {'rel err cuda/cpu':>16s} {'IS10 cpu':>10s} {'IS10 cuda':>10s}")
    for name, kw in cases.items():
        cpu = backbones.load_backbone("torchvision", device="cpu", batch_size=32, **kw).logits(x)
        for label, extra in (
            ("exact fp32", {"fuse_bn": False}),
            ("exact fp32, BN folded", {"fuse_bn": True}),
            ("TF32", {"precision": "tf32"}),
        ):
            gpu = backbones.load_backbone(
                "torchvision", device="cuda", batch_size=32, **kw, **extra
            ).logits(x)
            i_cpu = scores.inception_score(scores.softmax(cpu), 10).mean
            i_gpu = scores.inception_score(scores.softmax(gpu), 10).mean
            print(
                f"{name[:40] + ', ' + label:55s} {rel(gpu, cpu):16.2e} {i_cpu:10.6f} {i_gpu:10.6f}"
            )


if __name__ == "__main__":
    main()
