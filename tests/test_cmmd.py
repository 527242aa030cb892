"""CMMD (issue 29 item 2) against a literal transcription of its definition, pair by pair."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import feature_metrics as fm
from harness.errors import ConfigError


def brute_cmmd(x, y, unbiased: bool, sigma=10.0, scale=1000.0) -> float:
    """scale x MMD^2 with k(a, b) = exp(-|a - b|^2 / (2 sigma^2)), every pair written out:
    the authors' estimator averages over all pairs (i = j included); the U-statistic leaves
    the i = j terms out of the within-set means."""

    def k(a, b):
        return math.exp(-sum((float(u) - float(v)) ** 2 for u, v in zip(a, b)) / (2 * sigma**2))

    def within(s):
        pairs = [(i, j) for i in range(len(s)) for j in range(len(s)) if not unbiased or i != j]
        return sum(k(s[i], s[j]) for i, j in pairs) / len(pairs)

    cross = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return scale * (within(x) + within(y) - 2 * cross)


@pytest.mark.parametrize("estimator", ["reference", "unbiased"])
@pytest.mark.parametrize("shift, spread", [(0.0, 1.0), (0.5, 3.0), (4.0, 8.0)])
def test_cmmd_matches_its_brute_force_to_1e_9(estimator, shift, spread):
    rng = np.random.default_rng(int(shift * 10 + spread))
    x = rng.normal(size=(23, 6)) * spread
    y = rng.normal(size=(31, 6)) * spread + shift
    got = fm.cmmd(x, y, estimator)
    want = brute_cmmd(x, y, unbiased=estimator == "unbiased")
    assert abs(got.value - want) < 1e-9, (got.value, want)
    assert got.provenance()["cmmd_estimator"] == estimator
    assert (got.sigma, got.scale, got.n1, got.n2) == (10.0, 1000.0, 23, 31)


def test_cmmd_on_normalised_embeddings_and_float32():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 16))
    y = rng.normal(size=(50, 16)) + 0.3
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    want = brute_cmmd(x, y, unbiased=False)
    assert (
        abs(
            fm.cmmd(x.astype(np.float32), y.astype(np.float32)).value
            - brute_cmmd(x.astype(np.float32), y.astype(np.float32), unbiased=False)
        )
        < 1e-9
    )
    assert abs(fm.cmmd(x, y).value - want) < 1e-9


def test_cmmd_refuses_an_unknown_estimator_in_one_line():
    with pytest.raises(ConfigError, match="choose one of reference, unbiased") as e:
        fm.cmmd(np.zeros((3, 2)), np.ones((3, 2)), "biased")
    assert "\n" not in str(e.value)
