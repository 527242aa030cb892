"""Images/s of each backbone: the harness path against the raw framework forward, same process.

    python benchmarks/throughput.py --device cpu  --backbones torchvision keras tfhub tf2015
    python benchmarks/throughput.py --device cuda --backbones torchvision \
        --batch-sizes 256 --gpu-modes
    python benchmarks/throughput.py --device cpu --backbones torchvision dinov2:vits14 \
        dinov2:vitl14 clip --n-images 16

* encoders (``dinov2[:<variant>]``, ``clip[:<open_clip model>]``): features instead of logits
  (``backbone.forward(x, features=True)``: resize to 224 / 336 with PIL bicubic, normalisation,
  the ViT, features back to numpy); raw = the model on tensors already preprocessed.

* harness: ``backbone.logits(uint8 N x 32 x 32 x 3)`` end to end (host->device copy, resize to
  299, normalisation, network, logits back to numpy float32, class selection, finite check).
* raw: the framework's own forward on the same model with inputs already preprocessed
  (torch ``model(x)`` on device tensors; Keras ``predict_on_batch``; TF-Hub ``obj(x)``; the
  2015 graph's ``sess.run`` fed at ExpandDims).
* ``--gpu-modes`` (CUDA, torchvision): exact float32 (TF32 off for convolutions and matmuls),
  then channels_last, BatchNorm folding, torch.compile (default / reduce-overhead = CUDA graphs),
  and TF32 / bf16, each with its logits error against exact float32 and the change of a
  10-split IS on the same images.

Random weights are used (no pretrained weights here): throughput does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import backbones, scores  # noqa: E402
from harness.backbones.base import preload_torch  # noqa: E402


def timeit_pair(fns, n_images: int, warmup: int = 1, repeat: int = 3, sync=None) -> list[float]:
    """Best-of-``repeat`` images/s of each function, runs interleaved (A B A B ...) so that
    drift of a shared, noisy machine affects all of them alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            if sync:
                sync()
            t = time.perf_counter()
            fn()
            if sync:
                sync()
            best[i] = min(best[i], time.perf_counter() - t)
    return [n_images / b for b in best]


def raw_forward(net, x_uint8):
    """A closure running the framework's own forward on preprocessed inputs (built outside the
    timer).
    """
    name = net.name
    if name == "torchvision":
        import torch

        xs = [
            net.preprocess(x_uint8[s : s + net.batch_size])
            for s in range(0, len(x_uint8), net.batch_size)
        ]
        if net.channels_last:
            xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
        model = net.model

        def run():
            with torch.inference_mode(), net.precision_context():
                for x in xs:
                    model(x)

        return run
    if name == "keras":
        xs = [
            net.preprocess(x_uint8[s : s + net.batch_size])
            for s in range(0, len(x_uint8), net.batch_size)
        ]
        return lambda: [net.model.predict_on_batch(x) for x in xs]
    if name == "tfhub":
        from harness import resize as rs

        xs = [
            net.tf.constant(
                rs.resize_numpy(x_uint8[s : s + net.batch_size], (299, 299), "tf2_bilinear")
                / 255.0,
                dtype=net.tf.float32,
            )
            for s in range(0, len(x_uint8), net.batch_size)
        ]
        return lambda: [net._fn(x).numpy() for x in xs]
    if name == "tf2015":
        xs = [
            x_uint8[s : s + net.batch_size].astype(np.float32)
            for s in range(0, len(x_uint8), net.batch_size)
        ]
        return lambda: [net._sess.run(net._pool, {net._inp: x}) for x in xs]
    if name in ("dinov2", "clip"):
        import torch

        xs = [
            net.prepare_tensor(x_uint8[s : s + net.batch_size])
            for s in range(0, len(x_uint8), net.batch_size)
        ]

        def run_encoder():
            with torch.inference_mode():
                for x in xs:
                    net._embed(x)

        return run_encoder
    raise ValueError(name)


def bench_backbone(spec, device, batch_sizes, n_images, repeat):
    rows = []
    name, _, option = spec.partition(":")
    x = np.random.default_rng(0).integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    for bs in batch_sizes:
        kw = dict(weights="random:0", batch_size=bs)
        if option:
            kw["variant" if name == "dinov2" else "model"] = option
        if name in ("torchvision", "dinov2", "clip"):
            kw["device"] = device
        elif device == "cuda":
            continue
        net = backbones.load_backbone(name, **kw)
        sync = None
        if device == "cuda":
            import torch

            sync = torch.cuda.synchronize
        harness = (
            (lambda net=net: net.logits(x))
            if net.has_logits
            else (lambda net=net: net.forward(x, features=True))
        )
        raw, har = timeit_pair([raw_forward(net, x), harness], n_images, repeat=repeat, sync=sync)
        rows.append(
            {
                "backbone": spec,
                "device": device,
                "batch_size": bs,
                "mode": "default",
                "raw_img_s": raw,
                "harness_img_s": har,
                "harness_vs_raw": har / raw - 1,
            }
        )
        print(
            f"{spec:14s} {device:5s} bs={bs:4d}  raw {raw:9.1f} img/s  harness {har:9.1f} img/s  "
            f"({100 * (har / raw - 1):+.1f}%)",
            flush=True,
        )
    return rows


def gpu_modes(batch_size, n_images, repeat, is_images, mode_filter=None):
    """torchvision on CUDA: exact fp32 baseline and each speed-up step."""
    import torch

    x = np.random.default_rng(0).integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    xis = np.random.default_rng(1).integers(0, 256, size=(is_images, 32, 32, 3), dtype=np.uint8)
    modes = [
        ("exact fp32 (TF32 off), NCHW", dict(channels_last=False, fuse_bn=False)),
        ("exact fp32, channels_last", dict(channels_last=True, fuse_bn=False)),
        ("exact fp32, NCHW + BN folded", dict(channels_last=False, fuse_bn=True)),
        (
            "exact fp32, NCHW + BN folded + torch.compile",
            dict(channels_last=False, fuse_bn=True, compile="default"),
        ),
        (
            "exact fp32, NCHW + BN folded + compile reduce-overhead (CUDA graphs)",
            dict(channels_last=False, fuse_bn=True, compile="reduce-overhead"),
        ),
        (
            "exact fp32, channels_last + BN folded + torch.compile",
            dict(channels_last=True, fuse_bn=True, compile="default"),
        ),
        ("TF32, NCHW + BN folded", dict(channels_last=False, fuse_bn=True, precision="tf32")),
        (
            "TF32, channels_last + BN folded",
            dict(channels_last=True, fuse_bn=True, precision="tf32"),
        ),
        (
            "TF32, channels_last + BN folded + torch.compile",
            dict(channels_last=True, fuse_bn=True, precision="tf32", compile="default"),
        ),
        (
            "bf16 autocast, channels_last + BN folded + torch.compile",
            dict(channels_last=True, fuse_bn=True, precision="bf16", compile="default"),
        ),
    ]
    if mode_filter:
        modes = [m for m in modes if m[0] == modes[0][0] or any(f in m[0] for f in mode_filter)]
    rows, ref_logits, ref_is = [], None, None
    for label, kw in modes:
        net = backbones.load_backbone(
            "torchvision", weights="random:0", device="cuda", batch_size=batch_size, **kw
        )
        raw, har = timeit_pair(
            [raw_forward(net, x), lambda net=net: net.logits(x)],
            n_images,
            warmup=2,
            repeat=repeat,
            sync=torch.cuda.synchronize,
        )
        lg = net.logits(xis).astype(np.float64)
        is10 = scores.inception_score(scores.softmax(lg), 10).mean
        if ref_logits is None:
            ref_logits, ref_is = lg, is10
        relerr = float(np.abs(lg - ref_logits).max() / np.abs(ref_logits).max())
        rows.append(
            {
                "backbone": "torchvision",
                "device": "cuda",
                "batch_size": batch_size,
                "mode": label,
                "raw_img_s": raw,
                "harness_img_s": har,
                "harness_vs_raw": har / raw - 1,
                "logits_rel_err_vs_exact": relerr,
                "is10": is10,
                "is10_change": is10 - ref_is,
            }
        )
        print(
            f"{label:55s} raw {raw:8.1f}  harness {har:8.1f} img/s  logits err {relerr:.2e}  "
            f"IS {is10:.6f} ({is10 - ref_is:+.2e})",
            flush=True,
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--backbones", nargs="+", default=["torchvision", "keras", "tfhub", "tf2015"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[32])
    ap.add_argument("--n-images", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--gpu-modes", action="store_true")
    ap.add_argument("--is-images", type=int, default=5000)
    ap.add_argument(
        "--mode-filter", nargs="*", default=None, help="only GPU modes containing these strings"
    )
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)
    preload_torch()
    rows = []
    for name in a.backbones:
        rows += bench_backbone(name, a.device, a.batch_sizes, a.n_images, a.repeat)
    if a.gpu_modes:
        rows += gpu_modes(a.batch_sizes[0], a.n_images, a.repeat, a.is_images, a.mode_filter)
    import pandas as pd

    df = pd.DataFrame(rows)
    print()
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
