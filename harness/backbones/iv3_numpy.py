"""Inception V3 in plain numpy, from :mod:`iv3_arch`: a framework-free reference.

Slow (float64, im2col per image) and meant for a handful of images: it calibrates the
canonical random weights (:mod:`random_init`) and gives tests an independent computation to
hold torchvision, Keras and the 2015 graph against.  Input: N x H x W x 3 already normalised.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .iv3_arch import BLOCKS, POOL_FEATURES, STEM, Conv, Pool, PoolSemantics

BN_EPS = 1e-3


def conv2d(x: np.ndarray, w_oihw: np.ndarray, stride: int, pad: tuple) -> np.ndarray:
    """x: N x H x W x C; weights O x I x kh x kw; symmetric zero padding; no bias."""
    ph, pw = pad
    o, i, kh, kw = w_oihw.shape
    wmat = w_oihw.transpose(2, 3, 1, 0).reshape(kh * kw * i, o)  # (kh kw C) x O
    outs = []
    for img in x:  # per image: bounded im2col memory
        p = np.pad(img, ((ph, ph), (pw, pw), (0, 0)))
        win = sliding_window_view(p, (kh, kw), axis=(0, 1))[::stride, ::stride]  # oh ow C kh kw
        oh, ow = win.shape[:2]
        cols = win.transpose(0, 1, 3, 4, 2).reshape(oh * ow, kh * kw * i)
        outs.append((cols @ wmat).reshape(oh, ow, o))
    return np.stack(outs)


def pool2d(x: np.ndarray, p: Pool, kind: str, count_include_pad: bool) -> np.ndarray:
    k, s, pad = p.k, p.stride, p.pad
    if kind == "max":
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
        return sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(-2, -1))
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    total = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s].sum(axis=(-2, -1))
    if count_include_pad or pad == 0:
        return total / (k * k)
    ones = np.pad(np.ones(x.shape[1:3]), pad)
    count = sliding_window_view(ones, (k, k))[::s, ::s].sum(axis=(-2, -1))
    return total / count[None, :, :, None]


class NumpyIV3:
    """Forward pass with optional BatchNorm calibration (``calibrate=True`` overwrites stats)."""

    def __init__(self, sd: dict, semantics: PoolSemantics | None = None, eps: float = BN_EPS):
        self.sd, self.sem, self.eps = sd, semantics or PoolSemantics(), eps

    def conv_bn_relu(self, c: Conv, x, calibrate: bool):
        y = conv2d(x, self.sd[f"{c.torch}.conv.weight"].astype(np.float64), c.stride, c.pad)
        key = f"{c.torch}.bn"
        if calibrate:
            self.sd[f"{key}.running_mean"] = y.mean(axis=(0, 1, 2)).astype(np.float32)
            self.sd[f"{key}.running_var"] = y.var(axis=(0, 1, 2)).astype(np.float32)
        mean = self.sd[f"{key}.running_mean"].astype(np.float64)
        var = self.sd[f"{key}.running_var"].astype(np.float64)
        g = self.sd[f"{key}.weight"].astype(np.float64)
        b = self.sd[f"{key}.bias"].astype(np.float64)
        return np.maximum((y - mean) / np.sqrt(var + self.eps) * g + b, 0.0)

    def features(self, x: np.ndarray, calibrate: bool = False) -> np.ndarray:
        """N x 2048 pool features of normalised input x (N x H x W x 3)."""
        x = np.asarray(x, dtype=np.float64)
        for item in STEM:
            x = (
                self.conv_bn_relu(item, x, calibrate)
                if isinstance(item, Conv)
                else pool2d(x, item, item.kind, self.sem.count_include_pad)
            )
        for bi, block in enumerate(BLOCKS):
            outs = []
            for branch in block.branches:
                y = x
                for item in branch:
                    if isinstance(item, tuple):
                        y = np.concatenate(
                            [self.conv_bn_relu(c, y, calibrate) for c in item[1]], axis=-1
                        )
                    elif isinstance(item, Conv):
                        y = self.conv_bn_relu(item, y, calibrate)
                    else:
                        kind = (
                            self.sem.last_block_pool
                            if (bi == len(BLOCKS) - 1 and item.in_block)
                            else item.kind
                        )
                        y = pool2d(y, item, kind, self.sem.count_include_pad)
                outs.append(y)
            x = np.concatenate(outs, axis=-1)
        f = x.mean(axis=(1, 2))
        assert f.shape[1] == POOL_FEATURES
        return f

    def logits(self, x: np.ndarray, bias: bool = True) -> np.ndarray:
        f = self.features(x)
        out = f @ self.sd["fc.weight"].astype(np.float64).T
        return out + self.sd["fc.bias"].astype(np.float64) if bias else out
