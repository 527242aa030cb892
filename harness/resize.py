"""Image resizing exactly as each ecosystem does it, as separable weight matrices.

Every linear method is an (out x in) matrix per axis, built in float64 numpy and applied as
``Wh @ img @ Ww.T`` by any framework (numpy here, torch matmuls on a GPU), so the same math
runs everywhere and is tested against the reference ops:

* ``tf1_bilinear``: TF1 ``resize_bilinear(align_corners=False)``, no half-pixel centres:
  src = dst * in/out (what the 2015 graph and the original IS code do).
* ``torch_bilinear``: ``F.interpolate(mode="bilinear", antialias=False)`` with
  ``align_corners`` True (src = dst * (in-1)/(out-1), what 2018-era ``nn.Upsample`` did) or False
  (src = (dst+0.5)*in/out - 0.5, clamped at 0; the same as TF2 ``tf.image.resize`` bilinear).
* ``antialias``: PIL-style triangle filter widened by the scale factor when downsampling,
  ``F.interpolate(..., antialias=True)`` (torchmetrics >= 1.8).
* ``pil_bicubic``: PIL ``Image.resize(BICUBIC)`` on the uint8 image (quantised to uint8, as
  pipelines that resize with PIL before ``ToTensor`` do); not a matrix, applied per image.
* ``none``: no resize; the images must already have the network's input size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import HarnessError

METHODS = ("tf1_bilinear", "torch_bilinear", "tf2_bilinear", "antialias", "pil_bicubic", "none")


def _bilinear_weights(src: np.ndarray, n_in: int) -> np.ndarray:
    """Rows of linear-interpolation weights for fractional source coordinates ``src``."""
    w = np.zeros((len(src), n_in), dtype=np.float64)
    lo = np.floor(src).astype(np.int64)
    frac = (src - np.floor(src)).astype(np.float64)
    lo = np.clip(lo, 0, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    rows = np.arange(len(src))
    np.add.at(w, (rows, lo), 1.0 - frac)
    np.add.at(w, (rows, hi), frac)
    return w


def _antialias_weights(n_out: int, n_in: int) -> np.ndarray:
    """PIL / torch antialias triangle filter (support scaled by in/out when shrinking)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in)
        j = np.arange(xmin, xmax)
        t = 1.0 - np.abs((j + 0.5 - center) / support)
        t = np.maximum(t, 0.0)
        if t.sum() > 0:
            w[i, xmin:xmax] = t / t.sum()
    return w


@lru_cache(maxsize=64)
def weight_matrix(method: str, n_out: int, n_in: int, align_corners: bool = False) -> np.ndarray:
    """(n_out x n_in) float64 interpolation matrix for one axis."""
    if n_out < 1 or n_in < 1:
        raise HarnessError(f"resize: sizes must be positive, got {n_in} -> {n_out}")
    # The reference kernels compute source coordinates in float32 (scale = float(in)/out, then
    # dst * scale); over 500 pixels that rounding moves a coordinate by ~3e-5, i.e. up to ~0.01
    # grey levels.  Mirror it so the weights are the reference's own.
    f32 = np.float32
    dst = np.arange(n_out, dtype=f32)
    if method == "tf1_bilinear":
        src = dst * (f32(n_in) / f32(n_out))
    elif method in ("torch_bilinear", "tf2_bilinear"):
        if method == "torch_bilinear" and align_corners:
            src = dst * (f32(n_in - 1) / f32(n_out - 1)) if n_out > 1 else np.zeros(1, f32)
        else:
            src = np.maximum((f32(n_in) / f32(n_out)) * (dst + f32(0.5)) - f32(0.5), f32(0.0))
    elif method == "antialias":
        return _antialias_weights(n_out, n_in)
    else:
        raise HarnessError(f"resize: {method!r} has no weight matrix")
    return _bilinear_weights(src, n_in)


def check_method(method: str, align_corners) -> None:
    if method not in METHODS:
        raise HarnessError(
            f"unknown resize {method!r}; choose from {', '.join(METHODS)} (or native)"
        )
    if align_corners is not None and method != "torch_bilinear":
        raise HarnessError(f"align_corners applies only to resize=torch_bilinear, not {method}")


#: the resize methods an experiment compares, label -> backbone knobs
COMPARED = {
    "tf1_bilinear": {"resize": "tf1_bilinear"},
    "tf2_bilinear": {"resize": "tf2_bilinear"},
    "torch_bilinear(align_corners=True)": {"resize": "torch_bilinear", "align_corners": True},
    "torch_bilinear(align_corners=False)": {"resize": "torch_bilinear", "align_corners": False},
    "antialias": {"resize": "antialias"},
    "pil_bicubic": {"resize": "pil_bicubic"},
}

#: short names for experiment configs (``resizes=[...]`` on the command line) -> backbone knobs
BY_SHORT_NAME = {
    "tf1_bilinear": {"resize": "tf1_bilinear"},
    "tf2_bilinear": {"resize": "tf2_bilinear"},
    "torch_bilinear": {"resize": "torch_bilinear", "align_corners": False},
    "torch_bilinear_align_corners": {"resize": "torch_bilinear", "align_corners": True},
    "antialias": {"resize": "antialias"},
    "pil_bicubic": {"resize": "pil_bicubic"},
}


def canonical(method: str, align_corners=None) -> str:
    """The operation a resize performs: methods with identical weights share one name (TF2's
    half-pixel bilinear is torch's ``align_corners=False`` bilinear), so they share cache keys."""
    if method == "tf2_bilinear" or (method == "torch_bilinear" and not align_corners):
        return "bilinear_half_pixel"
    return describe(method, align_corners)


def describe(method: str, align_corners=None) -> str:
    if method == "torch_bilinear":
        return f"torch_bilinear(align_corners={bool(align_corners)})"
    return method


def resize_numpy(
    x: np.ndarray, size: tuple[int, int], method: str, align_corners: bool = False, dtype=np.float32
) -> np.ndarray:
    """Resize N x H x W x C (any real dtype) to ``size``; returns ``dtype`` in the input's scale."""
    n, h, w, c = x.shape
    oh, ow = size
    if method == "none":
        if (h, w) != (oh, ow):
            raise HarnessError(f"resize=none needs {oh}x{ow} images, got {h}x{w}")
        return x.astype(dtype)
    if method == "pil_bicubic":
        return pil_bicubic(x, size).astype(dtype)
    if (h, w) == (oh, ow) and method in ("tf1_bilinear", "tf2_bilinear", "antialias"):
        return x.astype(dtype)
    wh = weight_matrix(method, oh, h, bool(align_corners)).astype(dtype)
    ww = weight_matrix(method, ow, w, bool(align_corners)).astype(dtype)
    xf = x.astype(dtype)
    # (oh x h) @ (n, h, w*c) -> (n, oh, w, c); then along w
    y = np.einsum("oh,nhwc->nowc", wh, xf, optimize=True)
    return np.einsum("pw,nowc->nopc", ww, y, optimize=True)


def pil_bicubic(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL BICUBIC resize of uint8 N x H x W x 3 images; returns uint8."""
    from PIL import Image

    if x.dtype != np.uint8:
        raise HarnessError("resize=pil_bicubic works on uint8 images")
    oh, ow = size
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), dtype=np.uint8)
    for i in range(x.shape[0]):
        out[i] = np.asarray(Image.fromarray(x[i]).resize((ow, oh), Image.BICUBIC))
    return out


def _torch_matrices(
    x, hw: tuple[int, int], size: tuple[int, int], method: str, align_corners: bool
):
    """(Wh, Ww) as tensors like ``x``, or None when the resize is an identity; one-line errors."""
    import torch

    (h, w), (oh, ow) = hw, size
    if method == "none":
        if (h, w) != (oh, ow):
            raise HarnessError(f"resize=none needs {oh}x{ow} images, got {h}x{w}")
        return None
    if method == "pil_bicubic":
        raise HarnessError("pil_bicubic runs on uint8 images before the tensor path")
    if (h, w) == (oh, ow) and method in ("tf1_bilinear", "tf2_bilinear", "antialias"):
        return None
    wh = torch.as_tensor(
        weight_matrix(method, oh, h, bool(align_corners)), dtype=x.dtype, device=x.device
    )
    ww = torch.as_tensor(
        weight_matrix(method, ow, w, bool(align_corners)), dtype=x.dtype, device=x.device
    )
    return wh, ww


def resize_torch(x, size: tuple[int, int], method: str, align_corners: bool = False):
    """Resize a float torch tensor N x C x H x W (any device) with the same matrices."""
    import torch

    m = _torch_matrices(x, tuple(x.shape[2:]), size, method, align_corners)
    if m is None:
        return x
    wh, ww = m
    # along W first: (N*C*H, W) @ (W, W') is a single large GEMM; then (H', H) @ (N*C, H, W')
    return torch.matmul(wh, torch.matmul(x, ww.T))


#: from this input width the NHWC resize's W pass is one large matrix product (see below);
#: narrower inputs (CIFAR's 32, 256) keep the per-row products and their exact numbers
GEMM_W_PASS_MIN_WIDTH = 512


def resize_torch_nhwc(x, size: tuple[int, int], method: str, align_corners: bool = False):
    """Resize a float torch tensor N x H x W x C; the result is contiguous N x H' x W' x C.

    Its ``permute(0, 3, 1, 2)`` view is already in channels_last memory layout, so no copy is
    needed before a channels_last network.
    """
    import torch

    n, h, w, c = x.shape
    m = _torch_matrices(x, (h, w), size, method, align_corners)
    if m is None:
        return x
    wh, ww = m
    oh, ow = size
    y = torch.matmul(wh, x.reshape(n, h, w * c)).reshape(n * oh, w, c)  # along H
    if w < GEMM_W_PASS_MIN_WIDTH:
        return torch.matmul(ww, y).reshape(n, oh, ow, c)  # along W: N*H' products with C columns
    # wide images: along W as one (N*H'*C, W) @ (W, W') product, ~4x faster at 1024 px on the
    # CPU than N*H' products with C = 3 columns; the sums' rounding may differ in the last bit
    z = torch.matmul(y.transpose(1, 2).reshape(n * oh * c, w), ww.T)
    return z.reshape(n, oh, c, ow).transpose(2, 3).contiguous()
