"""Memorisation statistics on features: Meehan et al. 2020's C_T and Alaa et al. 2022's
authenticity.

Both detect generated samples that sit closer to training samples than held-out real samples
do (../shared/paper-notes.md sections 7 and 10).  Arrays in (the cached pass's features), no
network; Euclidean distances, exact (:func:`harness.sample_metrics.nearest_neighbors`).

* **C_T** (Meehan, Chaudhuri & Dasgupta, AISTATS 2020), as their code computes it
  (casey-meehan/data-copying, ``data_copying_tests.py``: ``Zu``, ``Zu_cells``, ``C_T``):
  partition space into ``cells`` k-means cells fitted on the **training** set (sklearn
  ``KMeans``, here seeded with ``n_init`` fixed; every set assigned with ``predict``).  In each
  cell pi, with ``L(.)`` the distance to the nearest training sample *of that cell*, the
  Mann-Whitney ``U`` of the generated distances against the test distances (``U`` = number of
  (generated, test) pairs with the generated distance larger, ties 1/2) is z-scored as
  ``Z_U = (U - (m n / 2 - 0.5)) / sqrt(m n (m + n + 1) / 12)`` (m generated, n test in the
  cell; the reference's "- 0.5" continuity term, no tie correction).  Cells with
  ``Qm(pi) > tau = min_per_cell / m_total`` (strictly more than ``min_per_cell`` generated
  samples, the reference's ``tau = 20 / len(Qm)``) are kept and
  ``C_T = sum_kept Pn(pi) Z_U(pi) / sum_kept Pn(pi)``, ``Pn(pi)`` the cell's share of the test
  set.  ``C_T << 0``: generated samples are closer to the training set than test samples are
  (data copying); ``>> 0``: underfitting; about 0: neither.  A cell without test samples is an
  error (as in the reference: ``Z_U`` is undefined there).
* **Authenticity** (Alaa, van Breugel, Saveliev & van der Schaar, ICML 2022), the paper's
  definition (``convention="paper"``): generated sample g_j with nearest real sample r_i*
  (ties: lowest index) is authentic iff ``d(r_i*, its nearest other real) < d(g_j, r_i*)``
  (strict, as their code compares; a tie is unauthentic); report the authentic fraction and
  the per-sample flags.  ``convention="reference_code"`` reproduces what both of the authors'
  repositories compute (vanderschaarlab/evaluating-generative-models ``metrics/evaluation.py``
  and vanderschaarlab/synthcity ``metrics/eval_statistical.py``, ``AlphaPrecision.metrics``):
  for each **real** sample r_i, with g_j(i) its nearest generated sample,
  ``real_to_real[j(i)] < d(r_i, g_j(i))`` where ``real_to_real`` is indexed by the
  *generated* index j(i) (an index of one set used in the other: needs at most as many
  generated as real samples); flags are then per real sample.

>>> import numpy as np
>>> real = np.random.default_rng(0).normal(size=(40, 2))
>>> authenticity(real, real[:10]).value              # exact copies are never authentic
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from .errors import ConfigError
from .sample_metrics import _check_int, _check_seed, check_features, nearest_neighbors

__all__ = [
    "CTResult",
    "AuthenticityResult",
    "AUTHENTICITY_CONVENTIONS",
    "default_cells",
    "mann_whitney_z",
    "data_copying_ct",
    "authenticity",
]

#: the default partition: one k-means cell per this many test samples, 1 to MAX_DEFAULT_CELLS
#: (reproduces the reference's settings: 5 cells for 1,000 test points (moons), 50 for 10,000
#: (MNIST))
TEST_SAMPLES_PER_CELL = 200
MAX_DEFAULT_CELLS = 50
#: k-means restarts (sklearn's historical default, which the reference's ``KMeans()`` used)
KMEANS_N_INIT = 10


def default_cells(n_test: int) -> int:
    """Number of cells when ``cells=None``: ``clip(n_test // 200, 1, 50)``."""
    return int(min(MAX_DEFAULT_CELLS, max(1, n_test // TEST_SAMPLES_PER_CELL)))


def mann_whitney_z(gen_dist: np.ndarray, test_dist: np.ndarray) -> float:
    """The reference's z-scored Mann-Whitney U of generated against test distances:
    ``U = R_gen - m (m + 1) / 2`` (R_gen: the generated values' rank sum in the pooled sample,
    average ranks for ties), ``Z = (U - (m n / 2 - 0.5)) / sqrt(m n (m + n + 1) / 12)``."""
    m, n = len(gen_dist), len(test_dist)
    ranks = rankdata(np.concatenate([gen_dist, test_dist]))
    u = float(ranks[:m].sum()) - m * (m + 1) / 2.0
    return (u - (m * n / 2.0 - 0.5)) / math.sqrt(m * n * (m + n + 1) / 12.0)


@dataclass(frozen=True)
class CTResult:
    """Meehan et al.'s C_T and its cells (arrays indexed by k-means cell)."""

    value: float
    z_u: np.ndarray  # per cell; NaN where the cell holds no generated sample
    kept: np.ndarray  # bool per cell: more than min_per_cell generated samples
    test_fraction: np.ndarray  # Pn(pi): the cell's share of the test set
    generated_count: np.ndarray
    test_count: np.ndarray
    train_count: np.ndarray
    cells: int
    min_per_cell: int
    seed: int
    n_init: int

    @property
    def cells_used(self) -> int:
        return int(self.kept.sum())

    @property
    def cells_dropped(self) -> int:
        return int(self.cells - self.kept.sum())

    def provenance(self) -> dict:
        return {
            "ct_partition": f"sklearn KMeans on train, {self.cells} cells, "
            f"random_state={self.seed}, n_init={self.n_init}",
            "ct_cells_used": self.cells_used,
            "ct_cells_dropped": self.cells_dropped,
            "ct_keep_rule": f"more than {self.min_per_cell} generated samples in the cell "
            "(Qm(pi) > tau = min_per_cell / m)",
            "ct_weights": "test-set share of each kept cell",
            "ct_z_u": "(U - (m n / 2 - 0.5)) / sqrt(m n (m + n + 1) / 12), no tie correction",
            "ct_sign": "<< 0: data copying; >> 0: underfitting",
        }


def data_copying_ct(
    train,
    test,
    generated,
    cells: int | None = None,
    seed: int = 0,
    min_per_cell: int = 20,
    n_init: int = KMEANS_N_INIT,
    fitted: dict | None = None,
) -> CTResult:
    """Meehan et al. 2020's C_T data-copying statistic (module docstring).

    ``cells``: k-means cells on ``train`` (None: :func:`default_cells` of the test size);
    ``min_per_cell``: a cell counts only with more than this many generated samples.
    ``fitted``: an empty dict kept across calls with the same ``train`` and ``test`` (one
    reference, many generated sets): the k-means partition and the test samples' per-cell
    distances are computed once (the same numbers).
    """
    from sklearn.cluster import KMeans

    t = check_features(train, "train")
    p = check_features(test, "test")
    q = check_features(generated, "generated")
    for name, arr in (("test", p), ("generated", q)):
        if arr.shape[1] != t.shape[1]:
            raise ConfigError(
                f"{name} has {arr.shape[1]} feature dimensions but train has {t.shape[1]}; all "
                "three sets must come from the same backbone layer"
            )
    k = default_cells(len(p)) if cells is None else _check_int(cells, "cells", 1)
    if k > len(t):
        raise ConfigError(f"cells={k} is more than the {len(t)} training samples; use fewer cells")
    min_per_cell = _check_int(min_per_cell, "min_per_cell", 0)
    seed = _check_seed(seed)
    n_init = _check_int(n_init, "n_init", 1)
    fitted = {} if fitted is None else fitted
    key = (k, seed, n_init)
    if key not in fitted:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(t)
        fitted[key] = {"km": km, "lt": km.predict(t), "lp": km.predict(p), "test_d": {}}
    fit = fitted[key]
    km, lt, lp = fit["km"], fit["lt"], fit["lp"]
    lq = km.predict(q)
    t_cnt = np.bincount(lt, minlength=k)
    p_cnt = np.bincount(lp, minlength=k)
    q_cnt = np.bincount(lq, minlength=k)
    empty = np.flatnonzero((p_cnt == 0) | (t_cnt == 0))
    if len(empty):
        raise ConfigError(
            f"cells={k}: {len(empty)} k-means cell(s) hold no test or no training sample, so "
            "their Z_U is undefined; use fewer cells (or more test samples)"
        )
    z = np.full(k, np.nan)
    for c in range(k):
        if q_cnt[c] == 0:
            continue
        tc = t[lt == c]
        _, gen_d = nearest_neighbors(q[lq == c], tc)
        if c not in fit["test_d"]:
            fit["test_d"][c] = nearest_neighbors(p[lp == c], tc)[1]
        z[c] = mann_whitney_z(gen_d, fit["test_d"][c])
    kept = q_cnt > min_per_cell
    if not kept.any():
        raise ConfigError(
            f"min_per_cell={min_per_cell}: no k-means cell holds more than {min_per_cell} of "
            f"the {len(q)} generated samples; use more generated samples, fewer cells or a "
            "lower min_per_cell"
        )
    weights = p_cnt / len(p)
    value = float((weights[kept] * z[kept]).sum() / weights[kept].sum())
    return CTResult(value, z, kept, weights, q_cnt, p_cnt, t_cnt, k, min_per_cell, seed, n_init)


AUTHENTICITY_CONVENTIONS = ("paper", "reference_code")


@dataclass(frozen=True)
class AuthenticityResult:
    """Authentic fraction and per-sample flags (per generated sample with ``paper``, per real
    sample with ``reference_code``).  ``distance``: each flagged sample's distance to its
    matched sample of the other set; ``real_nn_distance``: the real nearest-other-real distance
    it was compared with."""

    value: float
    authentic: np.ndarray
    distance: np.ndarray
    real_nn_distance: np.ndarray
    convention: str
    n_real: int
    n_generated: int

    def provenance(self) -> dict:
        rule = {
            "paper": "generated g authentic iff d(r*, nearest other real) < d(g, r*), r* the "
            "real nearest to g (ties: lowest index)",
            "reference_code": "per real r_i: real_to_real[j] < d(r_i, g_j), j = index of the "
            "generated sample nearest r_i (the authors' code's indexing)",
        }[self.convention]
        return {
            "authenticity_convention": self.convention,
            "authenticity_rule": rule,
            "authenticity_n_real": self.n_real,
            "authenticity_n_generated": self.n_generated,
        }


def authenticity(real, generated, convention: str = "paper") -> AuthenticityResult:
    """Alaa et al. 2022's authenticity of ``generated`` against ``real`` (module docstring)."""
    if convention not in AUTHENTICITY_CONVENTIONS:
        raise ConfigError(
            f"convention={convention!r} is not one of {', '.join(AUTHENTICITY_CONVENTIONS)}"
        )
    r = check_features(real, "real")
    g = check_features(generated, "generated", min_rows=1)
    if g.shape[1] != r.shape[1]:
        raise ConfigError(
            f"generated has {g.shape[1]} feature dimensions but real has {r.shape[1]}; both sets "
            "must come from the same backbone layer"
        )
    _, real_nn = nearest_neighbors(r, r, exclude_self=True)
    if convention == "paper":
        idx, dist = nearest_neighbors(g, r)
        compared = real_nn[idx]
    else:
        if len(g) > len(r):
            raise ConfigError(
                f"convention=reference_code indexes the real nearest-neighbour distances by a "
                f"generated index: it needs at most {len(r)} generated samples (got {len(g)}); "
                "use convention=paper"
            )
        idx, dist = nearest_neighbors(r, g)
        compared = real_nn[idx]
    flags = compared < dist
    return AuthenticityResult(
        float(flags.mean()), flags, dist, compared, convention, len(r), len(g)
    )
