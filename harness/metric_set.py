"""IS_inf / FID_inf, Xu et al.'s metric set and the memorisation statistics as table columns.

One function per metric family: each takes the cached pass's arrays and the experiment's
settings (``extrapolation.*``, ``survey.*``, ``data_copying.*``: :mod:`harness.config`) and
returns ``{column: value}`` with what it used recorded, so ``metric_properties``,
``fid_sensitivity``, ``memorization``, ``splits`` and ``sanity`` report them alike.  No network
is called here (the extrapolations subsample the cached outputs of one pass).

A family that cannot be computed on a set this small (fewer distinct sizes than the
extrapolation's ``count``; no k-means cell with more than ``min_per_cell`` generated samples)
gives NaN and a ``<metric>_note`` column with the reason: said, never guessed, and it does not
stop the rest of the table.  Settings were validated by the schema before any pass; the size
checks are per set (a corrupted subset may be small where the full set is not).

>>> import numpy as np
>>> from omegaconf import OmegaConf
>>> cfg = OmegaConf.create({"count": 15, "n_min": None, "seed": 0})
>>> cols = is_inf_columns(np.full((12, 3), 1 / 3), cfg)   # 12 samples: too few subset sizes
>>> cols["is_inf"], cols["is_inf_note"].startswith("count=15")
(nan, True)
"""

from __future__ import annotations

import warnings

import numpy as np

from . import extrapolation as ex
from . import feature_metrics as fm
from . import memorization_stats as ms
from . import sample_metrics as sm
from .errors import ConfigError

__all__ = [
    "FAMILIES",
    "LOWER_IS_BETTER",
    "is_inf_columns",
    "fid_inf_columns",
    "mode_score_columns",
    "mmd_columns",
    "wasserstein_columns",
    "one_nn_columns",
    "data_copying_columns",
    "authenticity_columns",
    "cmmd_columns",
    "DEFAULT_FAMILIES",
    "reference_halves",
    "notes_of",
]

#: metric column -> what it is (the value columns these functions add, in display order)
FAMILIES = {
    "is_inf": "IS extrapolated to N = inf (Chong & Forsyth 2020; one split per size)",
    "fid_inf": "FID extrapolated to N = inf (Chong & Forsyth 2020)",
    "mode_score": "Mode Score (Xu et al.'s form by default; survey.mode_score_form)",
    "mmd2": "kernel MMD^2, Gaussian kernel, unbiased (median-heuristic bandwidth by default)",
    "w1": "Wasserstein-1 between the feature sets (exact, or sliced above the size limit)",
    "one_nn_accuracy": "1-NN two-sample test: leave-one-out accuracy (0.5 = indistinguishable)",
    "ct": "C_T data-copying statistic (Meehan et al. 2020; << 0: copying)",
    "authenticity": "authentic fraction of the samples (Alaa et al. 2022)",
    "cmmd": "CMMD (Jayasumana et al. 2024): 1000 x MMD^2, Gaussian kernel sigma 10 (made for "
    "CLIP embeddings: backbone=clip)",
}
#: the families computed unless ``extra_metrics`` says otherwise (CMMD is asked for by name:
#: its fixed bandwidth is meant for normalised CLIP embeddings)
DEFAULT_FAMILIES = tuple(f for f in FAMILIES if f != "cmmd")
#: columns where a smaller value means closer to the reference (1-NN: closer to 0.5)
LOWER_IS_BETTER = {"fid_inf", "mmd2", "w1", "cmmd"}


def _attempt(column: str, compute) -> dict:
    """``compute()``'s columns, or NaN and the one-line reason when the set is too small."""
    try:
        return compute()
    except ConfigError as exc:
        return {column: float("nan"), f"{column}_note": str(exc)}


def is_inf_columns(probs, cfg) -> dict:
    """``is_inf`` (+ ``is_inf_se`` and the fit's provenance) of N x C probabilities."""

    def run():
        r = ex.is_infinity(probs, cfg.n_min, int(cfg.count), int(cfg.seed))
        return {"is_inf": r.value, "is_inf_se": r.stderr, **r.provenance()}

    return _attempt("is_inf", run)


def fid_inf_columns(features, reference, cfg, factors: dict | None = None) -> dict:
    """``fid_inf`` (+ ``fid_inf_se``) of features against reference features or statistics
    (fixed from the full reference set); ``factors``: see
    :func:`harness.extrapolation.fid_infinity` (reuse across calls with one reference)."""

    def run():
        with warnings.catch_warnings():  # small subsets are rank deficient by design
            warnings.simplefilter("ignore", fm.RankDeficientWarning)
            r = ex.fid_infinity(
                features, reference, cfg.n_min, int(cfg.count), int(cfg.seed), factors
            )
        return {"fid_inf": r.value, "fid_inf_se": r.stderr, **r.provenance()}

    return _attempt("fid_inf", run)


def mode_score_columns(probs, reference_probs, cfg) -> dict:
    def run():
        r = sm.mode_score(probs, reference_probs, form=str(cfg.mode_score_form))
        return {"mode_score": r.value, **r.provenance()}

    return _attempt("mode_score", run)


def mmd_columns(features, reference, cfg) -> dict:
    bandwidth = None if cfg.mmd_bandwidth is None else float(cfg.mmd_bandwidth)

    def run():
        r = sm.mmd2_gaussian(features, reference, bandwidth, seed=int(cfg.seed))
        return {"mmd2": r.value, **r.provenance()}

    return _attempt("mmd2", run)


def wasserstein_columns(features, reference, cfg, sliced: bool | None = None) -> dict:
    """``w1``; ``sliced``: None = by the sets' sizes (``survey.wasserstein_exact_max``), or
    decided once for a whole table (exact and sliced values are never compared)."""
    limit = int(cfg.wasserstein_exact_max)
    if sliced is None:
        sliced = max(len(features), len(reference)) > limit

    def run():
        r = sm.wasserstein1(
            features,
            reference,
            exact_max=1 if sliced else max(limit, len(features), len(reference)),
            projections=int(cfg.wasserstein_projections),
            seed=int(cfg.seed),
        )
        return {**r.provenance(), "w1": r.value, "w1_exact_max": limit}

    return _attempt("w1", run)


def one_nn_columns(features, reference) -> dict:
    def run():
        r = sm.one_nn_two_sample(reference, features)
        return {
            "one_nn_accuracy": r.accuracy,
            "one_nn_accuracy_real": r.accuracy_real,
            "one_nn_accuracy_fake": r.accuracy_fake,
            **r.provenance(),
        }

    return _attempt("one_nn_accuracy", run)


def data_copying_columns(train, test, generated, cfg, fitted: dict | None = None) -> dict:
    """``ct``: C_T of ``generated`` with k-means cells on ``train`` and ``test`` held out;
    ``fitted``: see :func:`harness.memorization_stats.data_copying_ct` (one reference)."""

    def run():
        r = ms.data_copying_ct(
            train,
            test,
            generated,
            cells=None if cfg.cells is None else int(cfg.cells),
            seed=int(cfg.seed),
            min_per_cell=int(cfg.min_per_cell),
            fitted=fitted,
        )
        return {"ct": r.value, "ct_cells": r.cells, **r.provenance()}

    return _attempt("ct", run)


def authenticity_columns(real, generated) -> dict:
    def run():
        r = ms.authenticity(real, generated)
        return {"authenticity": r.value, **r.provenance()}

    return _attempt("authenticity", run)


def cmmd_columns(features, reference, cfg) -> dict:
    """``cmmd`` of features against reference features (``survey.cmmd_estimator``)."""

    def run():
        r = fm.cmmd(features, reference, estimator=str(cfg.cmmd_estimator))
        return {"cmmd": r.value, **r.provenance()}

    return _attempt("cmmd", run)


def reference_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded halves of ``n`` reference rows: C_T's training set and its
    held-out test set where a run has no separate held-out real set."""
    perm = np.random.default_rng([int(seed), 27]).permutation(int(n))
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def notes_of(table) -> list[str]:
    """The distinct ``*_note`` texts of a table's rows, each with how many rows it concerns."""
    out = []
    for col in [c for c in table.columns if c.endswith("_note") and c[:-5] in FAMILIES]:
        for text, count in table[col].dropna().value_counts(sort=False).items():
            out.append(f"{col[:-5]}: not computed for {count} row(s): {text}")
    return out
