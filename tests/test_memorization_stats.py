"""C_T (Meehan et al. 2020) and authenticity (Alaa et al. 2022) against independent
computations: the definitions written out with sklearn's ``NearestNeighbors``,
``scipy.stats.mannwhitneyu`` and ``cdist`` plus explicit loops, on a partition from a separate
``KMeans`` call with the same settings.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from harness import memorization_stats as ms
from harness import sample_metrics as sm
from harness.errors import ConfigError


def test_doctests():
    res = doctest.testmod(ms)
    assert res.attempted > 0 and res.failed == 0


def _blobs(n, seed, centres=((0, 0), (6, 0), (0, 6), (6, 6))):
    rng = np.random.default_rng(seed)
    c = np.asarray(centres, float)[rng.integers(0, len(centres), n)]
    return c + rng.normal(size=(n, 2))


def _ct_independent(train, test, gen, k, seed, n_init, min_per_cell):
    """C_T as the paper's code defines it, written out: per k-means cell, Mann-Whitney U of
    generated vs test distances to the cell's training points, z-scored with the '- 0.5'
    term; cells with more than min_per_cell generated points, weighted by test share."""
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(train)
    lt, lp, lq = km.predict(train), km.predict(test), km.predict(gen)
    z, weight, keep = [], [], []
    for c in range(k):
        tc, pc, qc = train[lt == c], test[lp == c], gen[lq == c]
        keep.append(len(qc) / len(gen) > min_per_cell / len(gen))
        weight.append(len(pc) / len(test))
        if len(qc) == 0:
            z.append(math.nan)
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(tc)
        lq_d = nn.kneighbors(qc)[0][:, 0]
        lp_d = nn.kneighbors(pc)[0][:, 0]
        u = mannwhitneyu(lq_d, lp_d, alternative="less").statistic  # U of the first sample
        m, n = len(qc), len(pc)
        z.append((u - (m * n / 2 - 0.5)) / math.sqrt(m * n * (m + n + 1) / 12))
    z, weight, keep = np.array(z), np.array(weight), np.array(keep)
    return float((weight[keep] * z[keep]).sum() / weight[keep].sum()), z, keep


@pytest.mark.parametrize("copying", [False, True])
def test_ct_matches_the_definition(copying):
    train, test = _blobs(240, 1), _blobs(160, 2)
    if copying:  # half the generated points are near-copies of training points
        gen = np.concatenate([train[:100] + 1e-3, _blobs(100, 3)])
    else:
        gen = _blobs(200, 3)
    res = ms.data_copying_ct(train, test, gen, cells=4, seed=0, min_per_cell=20)
    value, z, keep = _ct_independent(train, test, gen, 4, 0, ms.KMEANS_N_INIT, 20)
    assert res.value == pytest.approx(value, rel=1e-10)
    np.testing.assert_allclose(res.z_u, z, rtol=1e-10)
    assert res.kept.tolist() == keep.tolist()
    if copying:
        assert res.value < -3  # C_T << 0: data copying
    else:
        assert abs(res.value) < 3


def test_ct_drops_sparse_cells_and_records_them():
    train, test = _blobs(240, 4), _blobs(160, 5)
    gen = _blobs(60, 6, centres=((0, 0),))  # only one of the four blobs is generated
    res = ms.data_copying_ct(train, test, gen, cells=4, seed=1, min_per_cell=20)
    value, z, keep = _ct_independent(train, test, gen, 4, 1, ms.KMEANS_N_INIT, 20)
    assert res.value == pytest.approx(value, rel=1e-10)
    assert res.cells_used == keep.sum() < 4 and res.cells_dropped == 4 - keep.sum()
    np.testing.assert_allclose(res.z_u, z, rtol=1e-10)  # NaN where no generated point
    prov = res.provenance()
    assert prov["ct_cells_used"] == res.cells_used
    json.dumps(prov)


def test_ct_mann_whitney_z_with_ties():
    gen = np.array([0.0, 0.0, 1.0, 2.0, 2.0])
    test = np.array([0.0, 1.0, 1.0, 3.0])
    u = sum((g > t) + 0.5 * (g == t) for g in gen for t in test)  # pairs, ties 1/2
    expect = (u - (5 * 4 / 2 - 0.5)) / math.sqrt(5 * 4 * (5 + 4 + 1) / 12)
    assert ms.mann_whitney_z(gen, test) == pytest.approx(expect, rel=1e-12)


def test_ct_default_cells():
    assert [ms.default_cells(n) for n in (50, 1000, 10_000, 10**6)] == [1, 5, 50, 50]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"cells": 500}, "cells=500 is more than the 240 training samples"),
        ({"cells": 0}, "cells must be at least 1"),
        ({"min_per_cell": 1000}, "min_per_cell=1000"),
        ({"cells": 200}, "cells=200: .* hold no test or no training sample"),
    ],
)
def test_ct_bad_arguments(kwargs, named):
    train, test, gen = _blobs(240, 1), _blobs(30, 2), _blobs(100, 3)
    with pytest.raises(ConfigError, match=named) as info:
        ms.data_copying_ct(train, test, gen, **kwargs)
    assert "\n" not in str(info.value)


def test_ct_mismatched_dimensions():
    train, test = _blobs(50, 1), _blobs(30, 2)
    with pytest.raises(ConfigError, match="generated has 3 feature dimensions"):
        ms.data_copying_ct(train, test, np.ones((10, 3)))


# --- authenticity ------------------------------------------------------------------------------


def _authenticity_paper(real, gen):
    """For each generated g: r* its nearest real (first in index order); authentic iff the
    distance from r* to its nearest other real is smaller than d(g, r*)."""
    d_rr = cdist(real, real)
    np.fill_diagonal(d_rr, np.inf)
    flags = []
    for g in gen:
        d = [float(np.sqrt(((g - r) ** 2).sum())) for r in real]
        best = min(range(len(real)), key=lambda i: (d[i], i))
        flags.append(d_rr[best].min() < d[best])
    return np.array(flags)


def _authenticity_reference_code(real, gen):
    """What the authors' repositories compute: per real r_i, j = its nearest generated sample;
    the real-to-real nearest distance of index j is compared with d(r_i, g_j)."""
    rr = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    d, j = NearestNeighbors(n_neighbors=1).fit(gen).kneighbors(real)
    return rr[j[:, 0]] < d[:, 0]


@pytest.mark.parametrize("block_rows", [None, 7])
def test_authenticity_matches_the_definition(block_rows, monkeypatch):
    if block_rows:  # several row blocks in the nearest-neighbour search: the same flags
        monkeypatch.setattr(sm, "BLOCK_ROWS", block_rows)
    rng = np.random.default_rng(9)
    real = rng.normal(size=(40, 3))
    gen = np.concatenate([real[:8], real[8:14] + 1e-4, rng.normal(size=(16, 3))])
    res = ms.authenticity(real, gen)
    flags = _authenticity_paper(real, gen)
    assert res.authentic.tolist() == flags.tolist()
    assert res.value == pytest.approx(flags.mean())
    assert not res.authentic[:14].any()  # copies and near-copies are unauthentic
    assert (res.distance[:8] == 0).all()  # exact copies at distance exactly 0
    code = ms.authenticity(real, gen, convention="reference_code")
    assert code.authentic.tolist() == _authenticity_reference_code(real, gen).tolist()
    assert len(code.authentic) == len(real)  # flags per real sample there
    assert code.provenance()["authenticity_convention"] == "reference_code"


def test_authenticity_ties_are_unauthentic():
    real = np.array([[0.0], [1.0], [5.0]])
    # 2: d = 1 to real 1, whose nearest real is at 1 (a tie); 10: d = 5 to real 5, whose
    # nearest real is at 4 (authentic)
    gen = np.array([[2.0], [-1.0], [0.5], [10.0]])
    res = ms.authenticity(real, gen)
    expect = [False, False, False, True]
    assert res.authentic.tolist() == _authenticity_paper(real, gen).tolist() == expect


def test_authenticity_bad_arguments():
    real = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ConfigError, match="convention="):
        ms.authenticity(real, real, convention="x")
    with pytest.raises(ConfigError, match="at most 5 generated samples"):
        ms.authenticity(real, np.ones((6, 2)), convention="reference_code")
    with pytest.raises(ConfigError, match="generated has NaN"):
        ms.authenticity(real, np.full((2, 2), np.nan))
    with pytest.raises(ConfigError, match="generated has 3 feature dimensions"):
        ms.authenticity(real, np.ones((2, 3)))


def test_ct_with_a_fitted_partition_kept_across_calls_gives_the_same_numbers():
    from harness.memorization_stats import data_copying_ct

    rng = np.random.default_rng(11)
    train, test = rng.normal(size=(200, 3)), rng.normal(size=(120, 3))
    fitted = {}
    for shift in (0.0, 0.4, -0.2):
        gen = rng.normal(size=(150, 3)) + shift
        fresh = data_copying_ct(train, test, gen, cells=3, min_per_cell=5)
        kept = data_copying_ct(train, test, gen, cells=3, min_per_cell=5, fitted=fitted)
        assert kept.value == fresh.value and np.array_equal(kept.z_u, fresh.z_u, equal_nan=True)
    assert len(fitted) == 1  # one partition, fitted once
