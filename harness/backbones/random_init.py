"""``weights=random:<seed>``: one canonical random Inception V3, the same in every framework.

Framework initialisers are no use for a random baseline: deep random ReLU networks whose
BatchNorm is the identity (eval mode, mean 0, var 1) map every input onto nearly the same
feature vector (measured: the spread across images is ~2% of the mean), so every image gets
the same class distribution, IS ~ 1, and no gradient moves the output; torchvision's own init
adds logits of order 1e7 (every softmax one-hot).  The canonical random network instead is

1. every conv He-normal (std sqrt(2 / fan_in)), gamma 1, beta 0;
2. every BatchNorm's running mean/variance set to the statistics of its conv output on a fixed
   calibration batch (as training-mode BatchNorm would see them): 8 procedural images (the
   ``synthetic`` source, seed = the weights seed) upsampled 32 -> 299 with TF1 bilinear and
   mapped to [-1, 1], computed layer by layer in float64 by the numpy reference
   (:mod:`iv3_numpy`, Keras/TF pooling semantics);
3. a classifier W ~ N(0, (FC_GAIN / sqrt(2048))^2) for 1008 outputs (1000/1001-class heads take
   the first rows), with bias -W mu + N(0, 0.5^2), mu = the calibration batch's mean feature.

Weights are numpy arrays in torchvision's naming and layout; each backbone converts them
(:mod:`harness.backbones.porting`), so ``random:<seed>`` is the same parameter values
everywhere and any difference between backbones is the implementation's.  The result is cached
on disk per seed (``<cache.dir>/weights/random``), or built in memory with the on-disk cache
disabled (once per process and seed: the same arrays).
"""

from __future__ import annotations

import functools

import numpy as np

from .. import data
from .. import resize as rs
from .. import storage as W
from ..atomic_io import atomic_path, ensure_dir
from .iv3_arch import POOL_FEATURES, PoolSemantics, all_convs

FC_GAIN = 4.0
RANDOM_INIT_VERSION = 2
CALIBRATION_IMAGES = 8
CALIBRATION_SIZE = 299


def _he_state(seed: int) -> tuple[dict, np.random.Generator]:
    rng = np.random.default_rng([int(seed), RANDOM_INIT_VERSION])
    sd = {}
    for c in all_convs():
        kh, kw = c.k
        fan_in = c.cin * kh * kw
        sd[f"{c.torch}.conv.weight"] = (
            rng.standard_normal((c.cout, c.cin, kh, kw)) * np.sqrt(2.0 / fan_in)
        ).astype(np.float32)
        sd[f"{c.torch}.bn.weight"] = np.ones(c.cout, np.float32)
        sd[f"{c.torch}.bn.bias"] = np.zeros(c.cout, np.float32)
        sd[f"{c.torch}.bn.running_mean"] = np.zeros(c.cout, np.float32)
        sd[f"{c.torch}.bn.running_var"] = np.ones(c.cout, np.float32)
    return sd, rng


def calibration_batch(seed: int) -> np.ndarray:
    """The fixed inputs the BatchNorm statistics are measured on, normalised to [-1, 1]."""
    x = data.load_source(
        "synthetic", count=CALIBRATION_IMAGES, seed=int(seed), progress=False
    ).read_all()
    x = rs.resize_numpy(x, (CALIBRATION_SIZE, CALIBRATION_SIZE), "tf1_bilinear", dtype=np.float64)
    return x / 127.5 - 1.0


def _computed(seed: int) -> dict:
    """:func:`_compute`'s arrays, fresh copies of the ones this process already computed for
    ``seed`` (a pure function of it: with the disk cache off, a report that builds the same
    random network five times computes it once)."""
    return {k: v.copy() for k, v in _compute_once(int(seed)).items()}


@functools.lru_cache(maxsize=2)
def _compute_once(seed: int) -> dict:
    return _compute(seed)


def _compute(seed: int) -> dict:
    from .iv3_numpy import NumpyIV3

    sd, rng = _he_state(seed)
    net = NumpyIV3(sd, PoolSemantics.of("keras"))
    feats = net.features(calibration_batch(seed), calibrate=True)
    mu = feats.mean(axis=0)
    w = rng.standard_normal((1008, POOL_FEATURES)) * (FC_GAIN / np.sqrt(POOL_FEATURES))
    sd["fc.weight"] = w.astype(np.float32)
    sd["fc.bias"] = (-(w @ mu) + rng.standard_normal(1008) * 0.5).astype(np.float32)
    return sd


def random_iv3_state(seed: int, num_outputs: int = 1000, cache_dir=None) -> dict:
    """torchvision-layout float32 numpy state dict (conv OIHW, fc (C x 2048)).

    Cached per seed as ``<cache.dir>/weights/random/iv3_random_<seed>_v<version>.npz``; a file
    that cannot be read is rebuilt.  Callers hash the arrays they get (``weights_sha256``), so a
    replaced file changes every cache key that depends on it.  ``cache_dir=NO_DISK_CACHE``:
    computed in memory, nothing read or written (the same arrays).
    """
    if W.disk_cache_off(cache_dir):
        return _take_outputs(_computed(seed), num_outputs)
    name = f"iv3_random_{int(seed)}_v{RANDOM_INIT_VERSION}.npz"
    path = W.cache_root(cache_dir) / "weights" / "random" / name
    sd = None
    if path.exists():
        try:
            with np.load(path) as z:
                sd = {k: z[k] for k in z.files}
        except Exception:  # a corrupt cache file is simply rebuilt
            sd = None
    if sd is None:
        ensure_dir(path.parent, W.CACHE_FIX)  # an unwritable cache.dir fails before the work
        sd = _computed(seed)
        with atomic_path(path, suffix=".npz", fix=W.CACHE_FIX) as tmp, open(tmp, "wb") as f:
            np.savez(f, **sd)
    return _take_outputs(sd, num_outputs)


def _take_outputs(sd: dict, num_outputs: int) -> dict:
    out = dict(sd)
    out["fc.weight"] = sd["fc.weight"][:num_outputs]
    out["fc.bias"] = sd["fc.bias"][:num_outputs]
    return out
