"""Nearest neighbours in pool-feature space (copies of training images, duplicates)."""

from __future__ import annotations

import numpy as np


def normalise_features(f: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Centre on the reference mean and scale to unit length (cosine similarity by dot product)."""
    g = (f - center).astype(np.float32)
    g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return g


def nearest_similarity(
    q: np.ndarray, ref: np.ndarray, exclude_self: bool = False, chunk: int = 2048
):
    """Max cosine similarity of every query row to the reference rows (float32 GEMM in chunks)."""
    best = np.full(len(q), -np.inf, dtype=np.float32)
    arg = np.zeros(len(q), dtype=np.int64)
    for a in range(0, len(q), chunk):
        sims = q[a : a + chunk] @ ref.T
        if exclude_self:
            np.fill_diagonal(sims[:, a : a + chunk], -np.inf)
        arg[a : a + chunk] = sims.argmax(1)
        best[a : a + chunk] = sims.max(1)
    return best, arg


def within_set_similarity(f: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Max cosine similarity of every row of ``f`` to another row of ``f``, in features centred
    on ``f``'s own mean: a property of the set alone (the same whether or not a reference set is
    compared too; centring on a reference's mean moved the sanity report's within-sample
    near-duplicate rate from 0.308 to 0.314)."""
    g = normalise_features(f, f.mean(axis=0))
    best, _ = nearest_similarity(g, g, exclude_self=True, chunk=chunk)
    return best
