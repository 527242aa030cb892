"""Experiment ``metric_properties``: which generator failure each metric detects.

Controlled corruptions of a base set (Xu et al. 2018's method), each at several strengths and
seeds, scored by IS (10 splits), S(G), FID, KID, precision, recall, density and coverage:

1. ``intra_class_collapse``: each class's images replaced by copies of k of them;
2. ``mode_dropping``: only m classes kept, resampled to the same N;
3. ``memorization``: a fraction of samples replaced by copies of reference images (exact: their
   rows of the reference pass; ``jittered``: +-2 grey levels of noise, new pixels);
4. ``noise``: a fraction replaced by uniform noise images;
5. small transforms: ``shift`` (px), ``rotate`` (degrees), ``jpeg`` (quality), ``blur`` (sigma);
6. ``sample_size``: seeded subsets of N.

Re-selections of rows (1, 2, 3 exact, 6) reuse the cached logits and features of the base and
reference sets; new pixels (3 jittered, 4, 5) are written once under
``<cache.dir>/corruptions/<key>.npy`` (with a ``.json`` seal: identity, shape, dtype, sha256,
checked before every use; written atomically), keyed by everything they depend on: the base
set's fingerprint, the reference set's where its images are copied, the corruption, its
strength, its seed, the corruption code's version and the numpy and Pillow versions.  With
``cache.enabled=false`` they are computed in memory and nothing under ``cache.dir`` is read or
written.  Either way they go through the logits cache like any image set.  Classes are the
dataset's labels when it has them, else the backbone's predicted classes (stated).

A features-only backbone (an encoder, no classifier head) gets FID, KID and PRDC on its features
and no IS / S(G) rows (``is_note`` says why; the detects table and figures leave them out).
Without dataset labels it cannot give classes either: ``intra_class_collapse`` and
``mode_dropping`` are then a one-line error before any pass (use labelled data, or set both to
``[]``).

A strength the data cannot take is a one-line error before any network pass (before any pass
after the base set's when the classes are predicted): ``sample_size`` above the base set's N,
``mode_dropping`` above the number of classes, ``intra_class_collapse`` above the largest class
(no class could show k images; a class smaller than k keeps all its images).

``kid.subset_size``: an integer is capped at each configuration's set sizes; ``auto`` is
min(1000, N samples, N reference) as in ``sanity``; the size used is recorded per row
(``kid_subset_size``), the setting as ``kid_subset_size_setting``.  ``seed`` in the table is each
row's corruption (and KID) seed; the run's base seed is ``run_seed``.

"Detects" (per metric x corruption, :mod:`harness.detection`): at the strongest corruption,
``|effect| > detection.threshold`` (3) x noise.  The effect is the mean over seeds of the
corrupted value minus the mean over the same seeds of the uncorrupted set's (scored with each
seed's own draws); the noise is how far two independent real sets of N differ,
``sqrt(mean((A - B)^2) / 2)`` over ``detection.halvings`` disjoint random halvings per seed.
The cell says better / worse by the metric's own orientation and flags estimators degenerate
under exact duplicates; monotonicity is reported, not required.  Memorization is judged by its
contrast: the copies come from one seeded half of the reference per seed, and each set is scored
against that half and against the other, so the base set's own distance to the reference is not
taken for memorization.  The rule's false-alarm rate and power are printed under the table.

Beside it: ``sample_efficiency`` (the strongest corruption of each kind on seeded subsets of
``corruptions.sample_size``'s sizes: the smallest N that separates it), ``cost`` (seconds per
metric) and ``properties``: metric x property (discriminability, mode collapse, mode dropping,
memorization, robustness to small transforms, sample efficiency, cost) beside Xu et al. 2018's
conclusion (arXiv:1806.07755, abstract and concluding discussion: kernel MMD and the 1-NN test
do well on every property in a suitable feature space, IS and the Mode Score do not).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import config, detection, inputs, metric_set, scores
from harness import feature_metrics as fm
from harness import settings as S
from harness.config import as_bool
from harness.data.base import ImageSource, check_uint8_images
from harness.errors import ConfigError
from harness.pipeline import outputs
from harness.plotting import defined_ratio, inputs_title, legend, note_below, subplots
from harness.rows import dataset_label, provenance_columns
from harness.runner import Result

_fraction = S.Float(lo=0, hi=1, lo_open=True)

SETTINGS = S.ExperimentSettings(
    "Which generator failure each metric detects: intra-class collapse, mode dropping, "
    "memorization, noise, transforms, N; metric x property beside Xu et al. 2018 "
    "(arXiv:1806.07755).",
    S.Schema(
        [
            S.Node("backbone", "backbone", "tf2015_torch"),
            S.Node(
                "dataset",
                "dataset",
                "cifar10",
                doc='the base set (a perfect "generator" before corruption)',
            ),
            S.Node(
                "reference",
                "dataset",
                "cifar10_test",
                doc="the reference set of FID, KID, precision/recall, density/coverage",
            ),
            config.weights_override(
                "overrides backbone.weights (random:<seed>: a labelled smoke run)"
            ),
            S.Setting(
                "n", S.Int(lo=2), 10000, "base samples used (first n; null = all)", nullable=True
            ),
            S.Setting(
                "seeds",
                S.ListOf(S.Seed(), unique=True),
                [0, 1, 2],
                "repeats of every random corruption; the metrics' noise is measured with them",
            ),
            S.Section(
                "corruptions",
                S.Schema(
                    [
                        S.Setting(
                            "intra_class_collapse",
                            S.ListOf(S.Int(lo=1), min_len=0),
                            [20, 5, 2, 1],
                            "k images kept per class (mildest first)",
                        ),
                        S.Setting(
                            "mode_dropping",
                            S.ListOf(S.Int(lo=1), min_len=0),
                            [5, 2, 1],
                            "m classes kept",
                        ),
                        S.Setting(
                            "memorization",
                            S.ListOf(_fraction, min_len=0),
                            [0.1, 0.5, 1.0],
                            "fraction replaced by exact copies of reference images",
                        ),
                        S.Setting(
                            "memorization_jittered",
                            S.ListOf(_fraction, min_len=0),
                            [0.5],
                            "... by copies with +-2 grey levels of noise (new pixels)",
                        ),
                        S.Setting(
                            "noise",
                            S.ListOf(_fraction, min_len=0),
                            [0.1, 0.5],
                            "fraction replaced by uniform noise images",
                        ),
                        S.Setting("shift", S.ListOf(S.Int(lo=1), min_len=0), [1, 4], "px"),
                        S.Setting("rotate", S.ListOf(S.Float(), min_len=0), [5, 15], "degrees"),
                        S.Setting(
                            "jpeg", S.ListOf(S.Int(lo=1, hi=100), min_len=0), [75, 30], "quality"
                        ),
                        S.Setting(
                            "blur",
                            S.ListOf(S.Float(lo=0, lo_open=True), min_len=0),
                            [0.5, 1.5],
                            "Gaussian sigma (px)",
                        ),
                        S.Setting(
                            "sample_size",
                            S.ListOf(S.Int(lo=2), min_len=0),
                            [5000, 2000, 500],
                            "seeded subsets (at most n)",
                        ),
                    ]
                ),
            ),
            config.kid_section(subsets=20, seed=False, doc="KID (capped at the set sizes)"),
            config.prdc_section(),
            S.Setting(
                "extra_metrics",
                S.ListOf(S.Choice(tuple(metric_set.FAMILIES)), min_len=0, unique=True),
                list(metric_set.DEFAULT_FAMILIES),
                "beside IS, S(G), FID, KID and PRDC: IS_inf/FID_inf, Xu et al.'s metrics, C_T "
                "and authenticity; cmmd by name ([] for none: FID_inf, MMD and 1-NN cost the "
                "most)",
            ),
            config.extrapolation_section(),
            config.survey_section(),
            config.data_copying_section(),
            S.Section(
                "detection",
                S.Schema(
                    [
                        S.Setting(
                            "threshold",
                            S.Float(lo=0, lo_open=True),
                            3.0,
                            "detected: |effect| > threshold x the set-to-set noise",
                        ),
                        S.Setting(
                            "halvings",
                            S.Int(lo=1),
                            2,
                            "disjoint random halvings of the real set (and of the reference "
                            "for memorization) per seed; the noise's degrees of freedom = "
                            "seeds x halvings",
                        ),
                        S.Setting(
                            "sample_efficiency",
                            S.Bool(),
                            True,
                            "the strongest corruption of each kind re-scored on seeded subsets "
                            "of corruptions.sample_size's sizes: the smallest N that separates it",
                        ),
                    ]
                ),
            ),
        ]
    ),
    uses_splits=True,
)

METRICS = [
    "is_mean",
    "sg_nats",
    "fid",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    *metric_set.FAMILIES,
]
#: the corruptions that need classes (the dataset's labels or the backbone's predictions)
CLASS_CORRUPTIONS = ("intra_class_collapse", "mode_dropping")
#: why a backbone has no IS / S(G) rows (``is_note``)
NO_HEAD = "no classifier head (features only)"
ROW_SELECTIONS = ("intra_class_collapse", "mode_dropping", "memorization", "sample_size")
PIXEL_CORRUPTIONS = ("memorization_jittered", "noise", "shift", "rotate", "jpeg", "blur")
#: which direction is "worse" for each metric (for the figure's caption only)
LOWER_IS_BETTER = {"fid", "kid", *metric_set.LOWER_IS_BETTER}
NOISE = "none (random halves)"
#: the uncorrupted set's rows (one per seed: each seed's own random draws, e.g. KID's subsets)
UNCORRUPTED = "none"
#: bump when a pixel corruption (or the rng draws feeding it) changes what it produces
PIXEL_CODE_VERSION = 3  # 3: jittered copies come from the seed's copied reference half
#: numpy's RandomState (KID subsets) takes seeds in [0, 2**32)
SEED_LIMIT = 2**32
#: ``kid.subset_size=auto``: the largest subset, as in ``sanity``
KID_AUTO_MAX = 1000


# ---------------------------------------------------------------- row selections (pure, tested)
def collapse_rows(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Each position keeps its class, but shows one of k images of that class (cycled)."""
    out = np.arange(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep = rng.choice(members, size=min(k, len(members)), replace=False)
        out[members] = keep[np.arange(len(members)) % len(keep)]
    return out


def drop_rows(labels: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of m randomly chosen classes, resampled (with replacement) to the original N."""
    classes = np.unique(labels)
    kept = rng.choice(classes, size=min(m, len(classes)), replace=False)
    pool = np.flatnonzero(np.isin(labels, kept))
    return rng.choice(pool, size=len(labels), replace=True)


def subset_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=size, replace=False))


# ---------------------------------------------------------------- pixel corruptions (pure)
def _per_image(x: np.ndarray, fn) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(fn(Image.fromarray(im)).convert("RGB")) for im in x])


def shift_images(x: np.ndarray, px: int) -> np.ndarray:
    """Shift right and down by ``px`` with the edge replicated."""
    px = int(px)
    pad = np.pad(x, ((0, 0), (px, 0), (px, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(pad[:, : x.shape[1], : x.shape[2]])


def rotate_images(x: np.ndarray, deg: float) -> np.ndarray:
    from PIL import Image

    return _per_image(x, lambda im: im.rotate(float(deg), resample=Image.BILINEAR))


def jpeg_images(x: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    def once(im):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(quality))
        return Image.open(io.BytesIO(buf.getvalue()))

    return _per_image(x, once)


def blur_images(x: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import ImageFilter

    return _per_image(x, lambda im: im.filter(ImageFilter.GaussianBlur(float(sigma))))


def replace_with(
    x: np.ndarray, other: np.ndarray, frac: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """A fraction of positions replaced by rows of ``other`` (random rows); returns the images
    and the positions replaced."""
    n = len(x)
    pos = rng.choice(n, size=int(round(frac * n)), replace=False)
    out = x.copy()
    out[pos] = other[rng.integers(0, len(other), size=len(pos))]
    return out, pos


def noise_images(x: np.ndarray, frac: float, rng) -> np.ndarray:
    noise = rng.integers(
        0, 256, size=(max(1, int(round(frac * len(x)))), *x.shape[1:]), dtype=np.uint8
    )
    return replace_with(x, noise, frac, rng)[0]


def jitter_copies(x: np.ndarray, ref: np.ndarray, frac: float, rng) -> np.ndarray:
    out, pos = replace_with(x, ref, frac, rng)
    j = rng.integers(-2, 3, size=(len(pos), *x.shape[1:]))
    out[pos] = np.clip(out[pos].astype(np.int16) + j, 0, 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------- metrics of one configuration
def kid_subset_size(setting, n: int, n_reference: int) -> int:
    """The KID subset size used for ``n`` samples against ``n_reference``: an integer capped at
    both set sizes; ``auto`` = min(1000, n, n_reference), as ``sanity`` resolves it."""
    want = KID_AUTO_MAX if setting == "auto" else int(setting)
    return min(want, int(n), int(n_reference))


class Reference:
    """The reference set's outputs and what every configuration compares with: its pool
    features, probabilities (None without a classifier head), full-set statistics (FID_inf),
    C_T's seeded halves (training / held-out) and whether W1 is sliced in this run."""

    def __init__(self, pool, probs, cfg, largest: int, w1_sliced: bool | None = None):
        self.pool, self.probs = pool, probs
        self.stats = fm.feature_stats(pool) if "fid_inf" in cfg.extra_metrics else None
        self.factors: dict = {}  # its covariance factored once for every configuration
        self.ct_fit: dict = {}  # C_T's k-means partition of its training half, fitted once
        self.train, self.test = metric_set.reference_halves(len(pool), int(cfg.data_copying.seed))
        # one W1 method for the whole table (exact and sliced values are never compared)
        if w1_sliced is None:
            w1_sliced = max(largest, len(pool)) > int(cfg.survey.wasserstein_exact_max)
        self.w1_sliced = bool(w1_sliced)


def _timed(out: dict, metrics, compute):
    """``compute()`` with its wall time recorded as ``seconds_<metric>`` for each of
    ``metrics`` (metrics computed together share one time); its result."""
    t0 = time.perf_counter()
    got = compute()
    seconds = time.perf_counter() - t0
    for m in [metrics] if isinstance(metrics, str) else metrics:
        out[f"seconds_{m}"] = seconds
    return got


def extra_values(probs, feats, ref: Reference, cfg) -> dict:
    """The ``extra_metrics`` of one configuration (harness/metric_set.py's columns), each
    with its seconds (``seconds_<metric>``)."""
    want, out = set(cfg.extra_metrics), {}
    steps = {
        "is_inf": lambda: metric_set.is_inf_columns(probs, cfg.extrapolation),
        "fid_inf": lambda: metric_set.fid_inf_columns(
            feats, ref.stats, cfg.extrapolation, ref.factors
        ),
        "mode_score": lambda: metric_set.mode_score_columns(probs, ref.probs, cfg.survey),
        "mmd2": lambda: metric_set.mmd_columns(feats, ref.pool, cfg.survey),
        "w1": lambda: metric_set.wasserstein_columns(feats, ref.pool, cfg.survey, ref.w1_sliced),
        "one_nn_accuracy": lambda: metric_set.one_nn_columns(feats, ref.pool),
        "ct": lambda: {
            **metric_set.data_copying_columns(
                ref.pool[ref.train], ref.pool[ref.test], feats, cfg.data_copying, ref.ct_fit
            ),
            "ct_sets": "train / held-out: seeded halves of the reference set",
        },
        "authenticity": lambda: metric_set.authenticity_columns(ref.pool, feats),
        "cmmd": lambda: metric_set.cmmd_columns(feats, ref.pool, cfg.survey),
    }
    for metric, compute in steps.items():
        if metric in want and (probs is not None or metric not in NEEDS_PROBS):
            out.update(_timed(out, metric, compute))
    return out


#: extra metrics that need class probabilities (none for a features-only backbone)
NEEDS_PROBS = ("is_inf", "mode_score")


def metric_values(probs, feats, ref: Reference, n_splits: int, cfg, seed: int) -> dict:
    """Every metric of one configuration; ``probs=None`` (a features-only backbone): no IS and
    no S(G), the feature metrics only."""
    kid_cfg, prdc_cfg, ref_feats = cfg.kid, cfg.prdc, ref.pool
    n, out = len(feats), {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f = _timed(out, "fid", lambda: fm.fid(feats, ref_feats))
    size = kid_subset_size(kid_cfg.subset_size, n, len(ref_feats))
    k = _timed(
        out,
        "kid",
        lambda: fm.kid(
            feats,
            ref_feats,
            int(kid_cfg.subsets),
            size,
            int(seed),
            matmul_dtype=kid_cfg.matmul_dtype,
        ),
    )
    k_max = max(int(prdc_cfg.k_precision_recall), int(prdc_cfg.k_density_coverage))
    if min(n, len(ref_feats)) > k_max:
        p = _timed(
            out,
            ("precision", "recall", "density", "coverage"),
            lambda: fm.prdc(
                ref_feats,
                feats,
                int(prdc_cfg.k_precision_recall),
                int(prdc_cfg.k_density_coverage),
                ball=prdc_cfg.ball,
            ),
        )
    else:  # a small subset or reference half (sample efficiency, memorization's contrast)
        nan = float("nan")
        p = fm.PRDCResult(
            nan,
            nan,
            nan,
            nan,
            int(prdc_cfg.k_precision_recall),
            int(prdc_cfg.k_density_coverage),
            len(ref_feats),
            n,
            ball=prdc_cfg.ball,
        )
        out["prdc_note"] = (
            f"k-NN with k={k_max} needs more than {k_max} rows per set: {n} samples against "
            f"{len(ref_feats)} reference rows"
        )
    if probs is not None:
        prep = scores.prepare(probs)
        spec = scores.SplitSpec(min(n_splits, n))
        out["is_mean"] = _timed(
            out, "is_mean", lambda: scores.inception_score(prep, splits=spec).mean
        )
        out["sg_nats"] = _timed(out, "sg_nats", lambda: scores.improved_score(prep).nats)
    return {
        **out,
        "fid": f.value,
        "kid": k.mean,
        "precision": p.precision,
        "recall": p.recall,
        "density": p.density,
        "coverage": p.coverage,
        "kid_subset_size": size,
        "kid_matmul_dtype": k.matmul_dtype,
        "prdc_ball": p.ball,
        **extra_values(probs, feats, ref, cfg),
    }


# ---------------------------------------------------------------- new pixels: cache and source
def _array_sha256(x: np.ndarray) -> str:
    a = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


class PixelSet(ImageSource):
    """Corrupted images held in memory (uint8 N x H x W x 3); their identity is their sha256,
    so the logits cache keys them by content; ``made_from`` (what produced them) is provenance.
    """

    kind = "corrupted"

    def __init__(self, images: np.ndarray, made_from: dict):
        super().__init__(n=None, order="as_loaded", order_seed=None, progress=False)
        self.images = check_uint8_images(np.ascontiguousarray(images), "corrupted pixels")
        self.made_from = dict(made_from)
        self._sha = _array_sha256(self.images)

    def _total(self) -> int:
        return int(self.images.shape[0])

    def _read(self, idx):
        return self.images[np.asarray(idx)]

    def _identity(self) -> dict:
        return {"array_sha256": self._sha, "shape": list(self.images.shape), "dtype": "uint8"}

    def _resolution(self):
        return (int(self.images.shape[1]), int(self.images.shape[2]))

    def _extra_provenance(self) -> dict:
        return {"made_from": self.made_from}


def pixel_identity(corruption: str, strength, seed, base_fp: str, ref_fp: str | None) -> dict:
    """Everything a derived pixel set depends on (its cache key is the sha256 of this)."""
    import PIL

    return {
        "pixel_code_version": PIXEL_CODE_VERSION,
        "corruption": corruption,
        "strength": strength,
        "seed": seed,
        "base_fingerprint": base_fp,
        "reference_fingerprint": ref_fp,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def pixel_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _cache_settings(cfg) -> tuple[bool, Path]:
    from harness.backbones.weights import cache_root

    c = cfg.get("cache") or {}
    enabled = as_bool(c.get("enabled", True), "cache.enabled")
    return enabled, cache_root(c.get("dir")) / "corruptions"


def _load_checked(npy: Path, seal: Path, identity: dict, shape: tuple) -> np.ndarray | None:
    """The cached pixels if the file and its seal agree (identity, shape, dtype, sha256); None
    when absent.  A file that fails a check is moved to ``bad/`` (with a warning), not used."""
    if not seal.exists() and not npy.exists():
        return None
    try:
        rec = json.loads(seal.read_text(encoding="utf-8"))
        if rec.get("identity") != identity:
            raise ValueError("its seal names other inputs")
        arr = np.load(npy, allow_pickle=False)
        if arr.dtype != np.uint8 or tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{arr.dtype} {tuple(arr.shape)}, expected uint8 {tuple(shape)}")
        if list(arr.shape) != rec.get("shape") or _array_sha256(arr) != rec.get("sha256"):
            raise ValueError("its content does not match its seal's sha256")
        return arr
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        warnings.warn(
            f"metric_properties: cached pixels {npy.name} fail their check ({exc}); moved to "
            "bad/ and recomputed",
            stacklevel=3,
        )
        bad = npy.parent / "bad"
        bad.mkdir(parents=True, exist_ok=True)
        for p in (npy, seal):
            if p.exists():
                os.replace(p, bad / f"{p.name}.{os.getpid()}.{time.time_ns()}")
        return None


def derived_pixels(cfg, identity: dict, make, shape: tuple) -> np.ndarray:
    """``make()``'s pixels, from ``<cache.dir>/corruptions`` when a checked copy is there, else
    computed and written there (atomically: the array, then its seal).  With
    ``cache.enabled=false``: computed in memory, nothing under ``cache.dir`` read or written."""
    from harness.results import atomic_path, write_json

    enabled, root = _cache_settings(cfg)
    if not enabled:
        return make()
    key = pixel_key(identity)
    npy, seal = root / f"{key}.npy", root / f"{key}.json"
    arr = _load_checked(npy, seal, identity, shape)
    if arr is not None:
        return arr
    arr = np.ascontiguousarray(make())
    with atomic_path(npy, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)
    write_json(
        seal,
        {
            "identity": identity,
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "sha256": _array_sha256(arr),
        },
    )
    return arr


#: corruption -> (kind of strength, lowest allowed, highest allowed)
STRENGTHS = {
    "intra_class_collapse": (int, 1, None),
    "mode_dropping": (int, 1, None),
    "memorization": (float, 0, 1),
    "memorization_jittered": (float, 0, 1),
    "noise": (float, 0, 1),
    "shift": (int, 0, None),
    "rotate": (float, None, None),
    "jpeg": (int, 1, 95),
    "blur": (float, 0, None),
    "sample_size": (int, 2, None),
}


def check_settings(cfg) -> None:
    """Every strength and seed of the right type and range, before any network pass (one-line
    errors naming the key)."""

    def bad(key, v, want):
        raise ConfigError(f"metric_properties: {key} has {v!r}; each value must be {want}")

    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    for s in cfg.seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT:
            bad("seeds", s, f"an integer in [0, {SEED_LIMIT - 1}]")
    if not cfg.seeds:
        raise ConfigError("metric_properties: seeds must name at least one seed")
    size = cfg.kid.subset_size
    if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
        raise ConfigError(
            f"metric_properties: kid.subset_size={size!r}; set an integer >= 2 or auto "
            "(min(1000, N samples, N reference))"
        )
    for name, (kind, lo, hi) in STRENGTHS.items():
        key = f"corruptions.{name}"
        want = ("an integer" if kind is int else "a number") + (
            f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}" if lo is not None else ""
        )
        for v in cfg.corruptions.get(name) or []:
            ok_type = not isinstance(v, bool) and (
                isinstance(v, int) if kind is int else isinstance(v, (int, float))
            )
            if not ok_type or (lo is not None and v < lo) or (hi is not None and v > hi):
                bad(key, v, want)


def check_fits(corruptions, n: int, labels=None, classes_from: str = "dataset labels") -> None:
    """Every strength applicable to this base set (one-line errors naming the key, the value and
    the valid range): ``sample_size`` at most N; a replaced fraction (``memorization``,
    ``memorization_jittered``, ``noise``) 0 or enough to replace one of the N images; with
    classes known, ``mode_dropping`` at most the number of classes and ``intra_class_collapse``
    at most the largest class (a larger k collapses no class: the row would be the uncorrupted
    set under a k it never had)."""

    def bad(name, v, limit, why):
        raise ConfigError(
            f"metric_properties: corruptions.{name} has {v}, but {why}; each value must be in "
            f"[{STRENGTHS[name][1]}, {limit}]"
        )

    for size in corruptions.get("sample_size") or []:
        if size > n:
            bad("sample_size", size, n, f"the base set holds {n} samples (lower it or raise n)")
    for name in ("memorization", "memorization_jittered", "noise"):
        for frac in corruptions.get(name) or []:
            if frac > 0 and round(frac * n) == 0:  # the positions replaced: round(frac * N)
                raise ConfigError(
                    f"metric_properties: corruptions.{name} has {frac}, but {frac} x {n} samples "
                    f"replaces no image; each value must be 0 or in ({0.5 / n:.4g}, 1]"
                )
    if labels is None:
        return
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    for m in corruptions.get("mode_dropping") or []:
        if m > len(counts):
            bad(
                "mode_dropping",
                m,
                len(counts),
                f"the base set has {len(counts)} classes ({classes_from})",
            )
    for k in corruptions.get("intra_class_collapse") or []:
        if k > counts.max():
            bad(
                "intra_class_collapse",
                k,
                int(counts.max()),
                f"no class of the base set has more than {int(counts.max())} images "
                f"({classes_from})",
            )


def check_classes_available(corruptions, source, net) -> None:
    """Class-based corruptions with neither dataset labels nor a classifier to predict classes:
    a one-line error naming the fix, before any network pass."""
    wanted = [name for name in CLASS_CORRUPTIONS if corruptions.get(name)]
    if not wanted:
        return
    raise ConfigError(
        f"metric_properties: corruptions.{' and '.join(wanted)} need classes, but dataset "
        f"{source.kind} has no labels and backbone {net.name} has {NO_HEAD} to predict them; "
        "use a labelled dataset (e.g. dataset=digits) or drop them: "
        + " ".join(f"corruptions.{name}=[]" for name in CLASS_CORRUPTIONS)
    )


# ---------------------------------------------------------------- one run: plan, score, tables
@dataclass(eq=False)
class RunState:
    """The shared state of one run: its settings, the two sets and their network outputs, each
    seed's subsets and reference halvings, and the rows scored so far (``rows``: uncorrupted,
    noise halves and corruptions; ``contrast_rows``: memorization's contrast;
    ``efficiency_rows``: sample efficiency)."""

    cfg: Any
    got: Any  # what inputs.load_inputs returned (its random_weights go to the Result)
    net: Any
    base: Any  # the base set (its first n)
    ref: Any  # the reference set
    spec: Any  # the IS splits
    seeds: list[int]
    head: bool  # a classifier head: IS and S(G) rows; none: features only
    n: int
    labels: np.ndarray | None
    label_source: str
    b: Any  # the base set's outputs
    r: Any  # the reference set's outputs
    b_probs: np.ndarray | None
    r_probs: np.ndarray | None
    reference: Reference
    halvings: int
    sizes: list[int]  # sample efficiency's subset sizes (below n, largest first)
    efficiency: bool
    memorizing: bool
    subsets: dict  # seed -> {size: base positions}
    ref_halves: dict  # seed -> [(copied half, other half) of the reference per halving]
    half_refs: dict  # (seed, halving) -> (copied, other) References (when memorizing)
    rows: list = field(default_factory=list)
    contrast_rows: list = field(default_factory=list)
    efficiency_rows: list = field(default_factory=list)

    def base_rows(self, idx) -> tuple[np.ndarray | None, np.ndarray]:
        """The base set's probabilities (None without a head) and features at ``idx``."""
        return _rows_of(self.b_probs, idx), self.b.pool[idx]

    def score(self, probs, feats, seed, against: Reference | None = None) -> dict:
        """Every metric of one configuration (against the full reference unless told) and its
        exact duplicates."""
        against = self.reference if against is None else against
        out = metric_values(probs, feats, against, self.spec.n_splits, self.cfg, seed)
        out.update(duplicate_columns(feats, self.cfg))
        return out

    def add(self, corruption, strength, seed, vals) -> None:
        self.rows.append({"corruption": corruption, "strength": strength, "seed": seed, **vals})

    def contrast(self, corruption, strength, seed, probs, feats, halving=0) -> None:
        """A set scored against the reference half its copies come from and the other half."""
        copied, fresh = self.half_refs[seed, halving]
        for against, ref_of in (("copied half", copied), ("other half", fresh)):
            self.contrast_rows.append(
                {
                    "corruption": corruption,
                    "strength": strength,
                    "seed": seed,
                    "halving": halving,
                    "against": against,
                    **self.score(probs, feats, seed, ref_of),
                }
            )

    def efficient(self, corruption, strength, seed, probs, feats) -> None:
        """The strongest corruption re-scored on this seed's subsets (paired positions)."""
        for m, idx in self.subsets[seed].items():
            self.efficiency_rows.append(
                {
                    "corruption": corruption,
                    "strength": strength,
                    "seed": seed,
                    "size": m,
                    **self.score(_rows_of(probs, idx), feats[idx], seed),
                }
            )

    def last(self, name):
        """The strongest strength of a corruption (lists are mildest first); None if none."""
        values = list(self.cfg.corruptions.get(name) or [])
        return values[-1] if values else None


def _rows_of(probs, idx):
    return None if probs is None else probs[idx]


def _open_inputs(cfg):
    """The settings checked, then the backbone and the two sets loaded (the base set cut to
    ``n``) and the IS splits checked against the base set."""
    check_settings(cfg)
    got = inputs.load_inputs(cfg, nets=("backbone",), sources=("dataset", "reference"))
    net, base, ref = got.net(), got.source("dataset"), got.source("reference")
    if cfg.n is not None:
        base = base.first(min(int(cfg.n), len(base)))
    spec = config.split_spec(cfg)
    # a features-only encoder: FID/KID/PRDC on its features, no IS / S(G) (splits unused)
    keys = ["dataset"] if net.has_logits else []
    got.require_splits(spec.n_splits, keys=keys, need_logits=False)
    return got, net, base, ref, spec


def _classes_and_passes(cfg, net, base, ref):
    """The base set's classes (dataset labels, else the backbone's predictions), every strength
    checked against them before any pass it can precede, then the two sets' network outputs
    (base first): ``(labels, label_source, base outputs, reference outputs)``."""
    c, n = cfg.corruptions, len(base)
    labels, label_source = base.labels, "dataset labels"
    if labels is None and not net.has_logits:
        check_classes_available(c, base, net)  # before any network pass
        label_source = f"none (the dataset has no labels and the backbone {NO_HEAD})"
    check_fits(c, n, labels, label_source)  # before any network pass
    b = outputs(cfg, net, base, features=True, label="base set")
    if labels is None and net.has_logits:
        labels, label_source = b.probs.argmax(axis=1), f"classes predicted by {net.name}"
        check_fits(c, n, labels, label_source)  # before any further pass
    labels = None if labels is None else np.asarray(labels)
    r = outputs(cfg, net, ref, features=True, label="reference set")
    return labels, label_source, b, r


def _plan(cfg) -> RunState:
    """Inputs loaded and checked, the base and reference passes, and per seed the subsets of
    the base positions (sample efficiency) and halvings of the reference (memorization's
    contrast: copies come from the first half, "copied"; the other is fresh)."""
    seeds = [int(s) for s in cfg.seeds]
    got, net, base, ref, spec = _open_inputs(cfg)
    labels, label_source, b, r = _classes_and_passes(cfg, net, base, ref)
    c, head, n = cfg.corruptions, net.has_logits, len(base)
    b_probs, r_probs = (b.probs, r.probs) if head else (None, None)
    reference = Reference(r.pool, r_probs, cfg, n)
    halvings = int(cfg.detection.halvings)
    # the strongest strength of each corruption (lists are mildest first) and the subset sizes
    # on which it is re-scored for sample efficiency (at most n)
    sizes = sorted({int(v) for v in c.sample_size if int(v) < n}, reverse=True)
    wanted = as_bool(cfg.detection.sample_efficiency, "detection.sample_efficiency")
    efficiency = wanted and bool(sizes)
    subsets = {
        s: {m: subset_rows(n, m, np.random.default_rng([s, 7, m])) for m in sizes} for s in seeds
    }
    ref_halves = {
        s: [halves_of(len(r.pool), seed_of_halving(s, h)) for h in range(halvings)] for s in seeds
    }
    memorizing = bool(c.memorization or c.memorization_jittered)
    half_refs = _half_references(cfg, r, r_probs, reference, ref_halves, n) if memorizing else {}
    return RunState(
        cfg=cfg,
        got=got,
        net=net,
        base=base,
        ref=ref,
        spec=spec,
        seeds=seeds,
        head=head,
        n=n,
        labels=labels,
        label_source=label_source,
        b=b,
        r=r,
        b_probs=b_probs,
        r_probs=r_probs,
        reference=reference,
        halvings=halvings,
        sizes=sizes,
        efficiency=efficiency,
        memorizing=memorizing,
        subsets=subsets,
        ref_halves=ref_halves,
        half_refs=half_refs,
    )


def _half_references(cfg, r, r_probs, reference: Reference, ref_halves: dict, n: int) -> dict:
    """(seed, halving) -> the copied and the other half of the reference as References (one
    W1 method with the full reference's)."""
    half_refs = {}
    for s, halves in ref_halves.items():
        for h, (one, other) in enumerate(halves):
            half_refs[s, h] = tuple(
                Reference(
                    r.pool[idx], _rows_of(r_probs, idx), cfg, n, w1_sliced=reference.w1_sliced
                )
                for idx in (one, other)
            )
    return half_refs


def _score_uncorrupted(state: RunState) -> dict:
    """The uncorrupted set's rows, the noise halves and (where wanted) its contrast and subsets;
    the first seed's values (the run's baseline)."""
    b = state.b
    # the uncorrupted set, scored with each seed's own random draws (KID subsets ...)
    base_by_seed = {s: state.score(state.b_probs, b.pool, s) for s in state.seeds}
    for s in state.seeds:
        state.add(UNCORRUPTED, "none", s, base_by_seed[s])
    # the metrics' set-to-set noise: disjoint random halves of the base set, per seed and halving
    n = state.n
    for s in state.seeds:
        for h in range(state.halvings):
            perm = np.random.default_rng(seed_of_halving(s, h, 999)).permutation(n)
            for name, idx in (("half A", perm[: n // 2]), ("half B", perm[n // 2 :])):
                state.add(NOISE, f"{name} #{h}", s, state.score(*state.base_rows(idx), s))
        if state.memorizing:  # the base set against both reference halves: the contrast's noise
            for h in range(state.halvings):
                state.contrast(UNCORRUPTED, "none", s, state.b_probs, b.pool, h)
        if state.efficiency:
            state.efficient(UNCORRUPTED, "none", s, state.b_probs, b.pool)
    return base_by_seed[state.seeds[0]]


def _selected(state: RunState, corruption, strength, seed, idx, strongest=False) -> None:
    """A selection of the base set's rows scored (and re-scored on the seed's subsets when it
    is the strongest of its kind)."""
    state.add(corruption, strength, seed, state.score(*state.base_rows(idx), seed))
    if strongest:
        state.efficient(corruption, strength, seed, *state.base_rows(idx))


def _memorized(state: RunState, frac, copied, rng) -> tuple[np.ndarray | None, np.ndarray]:
    """The base set's outputs with ``round(frac * n)`` rows replaced by those of random images
    of the copied reference half (probabilities None without a head)."""
    n, b, r = state.n, state.b, state.r
    pos = rng.choice(n, size=int(round(float(frac) * n)), replace=False)
    src = copied[rng.integers(0, len(copied), size=len(pos))]
    feats = b.pool.copy()
    feats[pos] = r.pool[src]
    probs = None
    if state.b_probs is not None:
        probs = state.b_probs.copy()
        probs[pos] = state.r_probs[src]
    return probs, feats


def _score_row_selections(state: RunState) -> None:
    """Row selections: cached outputs, no network pass (one generator per seed, drawn from in
    the order of the corruptions and their strengths)."""
    c, eff = state.cfg.corruptions, state.efficiency
    for s in state.seeds:
        rng = np.random.default_rng([s, 1])
        for k in c.intra_class_collapse:
            idx = collapse_rows(state.labels, int(k), rng)
            strongest = eff and k == state.last("intra_class_collapse")
            _selected(state, "intra_class_collapse", f"k={k}", s, idx, strongest)
        for m in c.mode_dropping:
            idx = drop_rows(state.labels, int(m), rng)
            strongest = eff and m == state.last("mode_dropping")
            _selected(state, "mode_dropping", f"m={m}", s, idx, strongest)
        copied = state.ref_halves[s][0][0]
        for frac in c.memorization:
            probs, feats = _memorized(state, frac, copied, rng)
            state.add("memorization", f"{frac:g}", s, state.score(probs, feats, s))
            state.contrast("memorization", f"{frac:g}", s, probs, feats)
        for size in c.sample_size:
            _selected(state, "sample_size", f"N={size}", s, subset_rows(state.n, int(size), rng))


def _pixel_jobs(state: RunState, x, xr) -> list[tuple]:
    """Every new pixel set as ``(corruption, value, strength label, seed, make)``: the seeded
    ones per seed, then the deterministic transforms (seed None)."""
    c, jobs = state.cfg.corruptions, []
    for s in state.seeds:
        for frac in c.memorization_jittered:
            jobs.append(
                (
                    "memorization_jittered",
                    float(frac),
                    f"{frac:g}",
                    s,
                    lambda f=frac, s=s: jitter_copies(
                        x, xr[state.ref_halves[s][0][0]], float(f), np.random.default_rng([s, 2])
                    ),
                )
            )
        for frac in c.noise:
            jobs.append(
                (
                    "noise",
                    float(frac),
                    f"{frac:g}",
                    s,
                    lambda f=frac, s=s: noise_images(x, float(f), np.random.default_rng([s, 3])),
                )
            )
    # deterministic transforms: one result per strength (no seed), listed under the first seed
    for px in c.shift:
        jobs.append(("shift", int(px), f"{px}px", None, lambda p=px: shift_images(x, p)))
    for deg in c.rotate:
        jobs.append(("rotate", float(deg), f"{deg}deg", None, lambda d=deg: rotate_images(x, d)))
    for q in c.jpeg:
        jobs.append(("jpeg", int(q), f"q={q}", None, lambda q=q: jpeg_images(x, q)))
    for sg in c.blur:
        jobs.append(("blur", float(sg), f"sigma={sg}", None, lambda g=sg: blur_images(x, g)))
    return jobs


def _score_pixel_sets(state: RunState) -> None:
    """New pixels: computed once (cached, keyed by all they depend on), then the logits cache;
    one network pass per set."""
    c, base, ref = state.cfg.corruptions, state.base, state.ref
    if not any(c.get(name) for name in PIXEL_CORRUPTIONS):
        return
    x = base.read_all()
    xr = ref.read_all() if c.memorization_jittered else None
    base_fp, ref_fp = base.fingerprint(), ref.fingerprint()
    for corruption, value, strength, s, make in _pixel_jobs(state, x, xr):
        jittered = corruption == "memorization_jittered"
        ident = pixel_identity(corruption, value, s, base_fp, ref_fp if jittered else None)
        src = PixelSet(derived_pixels(state.cfg, ident, make, x.shape), ident)
        o = outputs(state.cfg, state.net, src, features=True, label=f"{corruption} {strength}")
        row_seed = state.seeds[0] if s is None else s
        probs = o.probs if state.head else None
        state.add(corruption, strength, row_seed, state.score(probs, o.pool, row_seed))
        if jittered:
            state.contrast(corruption, strength, s, probs, o.pool)
        elif state.efficiency and value == state.last(corruption):
            # a deterministic transform: one set, re-scored on every seed's subsets
            for seed in state.seeds if s is None else [s]:
                state.efficient(corruption, strength, seed, probs, o.pool)


def _run_provenance(state: RunState, base_vals: dict) -> dict:
    """The run's provenance columns (the same on every row)."""
    cfg, ref = state.cfg, state.ref
    # no seed here: the table's ``seed`` is each row's own; the run's seed is ``run_seed``
    prov = provenance_columns(state.net, state.base, state.spec)
    prov.update(
        {
            "run_seed": cfg.seed,
            "classes_from": state.label_source,
            "is_note": None if state.head else NO_HEAD,
            "reference_dataset": ref.provenance()["dataset"],
            "reference_label": dataset_label(ref),
            "reference_fingerprint": ref.fingerprint(),
            "n_reference": len(ref),
            "kid_subsets": int(cfg.kid.subsets),
            "kid_subset_size_setting": str(cfg.kid.subset_size),
            **extra_settings(cfg, base_vals),
        }
    )
    return prov


def _tables(state: RunState, wide: pd.DataFrame, base_vals: dict) -> tuple[dict, pd.DataFrame]:
    """The run's tables by name (long values, detects, cost, properties, and where scored the
    memorization contrast and sample efficiency) and the detects summary."""
    long = _long_table(wide)
    threshold = float(state.cfg.detection.threshold)
    k_recall = int(state.cfg.prdc.k_precision_recall)
    rows = state.contrast_rows
    contrast_long = _contrast_table(pd.DataFrame(rows)) if rows else None
    summary = detects(long, threshold, k_recall, contrast_long)
    efficiency_table = (
        sample_efficiency(pd.DataFrame(state.efficiency_rows), summary, state.n, threshold)
        if state.efficiency_rows
        else None
    )
    if efficiency_table is not None and not len(efficiency_table):
        efficiency_table = None  # only the uncorrupted set was re-scored: nothing to separate
    cost = cost_table(wide, base_vals, state.n, len(state.ref))
    properties = property_table(summary, long, cost, efficiency_table)
    prov = _run_provenance(state, base_vals)
    # the run's provenance on every table of values (detects_detail keeps its verdict columns;
    # provenance.json and the long table hold it for the verdicts)
    for t in (long, contrast_long, efficiency_table, properties):
        if t is not None:
            for k, v in prov.items():
                t[k] = v
    tables = {"table": long, "detects": summary, "cost": cost, "properties": properties}
    if contrast_long is not None:
        tables["memorization_contrast"] = contrast_long
    if efficiency_table is not None:
        tables["sample_efficiency"] = efficiency_table
    return tables, summary


def compute(cfg) -> Result:
    state = _plan(cfg)
    base_vals = _score_uncorrupted(state)
    _score_row_selections(state)
    _score_pixel_sets(state)
    wide = pd.DataFrame(state.rows)
    tables, summary = _tables(state, wide, base_vals)
    return Result(
        tables,
        state.got.random_weights,
        extra={
            "classes_from": state.label_source,
            "baseline": base_vals,
            "is_note": None if state.head else NO_HEAD,
            "metric_notes": metric_set.notes_of(wide),
            "rule_notes": rule_notes(summary, float(state.cfg.detection.threshold)),
        },
    )


def cost_table(wide: pd.DataFrame, base_vals: dict, n: int, n_reference: int) -> pd.DataFrame:
    """Seconds per metric (Xu et al.'s "computational efficiency"): on the uncorrupted set at
    the configured N, and the mean over the table's rows (noise halves and corruptions) of this
    run (one machine's numbers; PRDC's four share one computation and one time)."""
    rows = []
    for m in [m for m in METRICS if f"seconds_{m}" in wide.columns]:
        rows.append(
            {
                "metric": m,
                "seconds_at_n": base_vals.get(f"seconds_{m}"),
                "n": n,
                "n_reference": n_reference,
                "mean_seconds_per_configuration": float(wide[f"seconds_{m}"].mean()),
                "configurations": int(wide[f"seconds_{m}"].notna().sum()),
                "shared_with": "precision, recall, density, coverage"
                if m in ("precision", "recall", "density", "coverage")
                else None,
            }
        )
    return pd.DataFrame(rows)


def extra_settings(cfg, base_vals: dict) -> dict:
    """The extra metrics' settings and fixed definitions (the same on every row)."""
    out = {"extra_metrics": ",".join(cfg.extra_metrics)}
    for section in ("extrapolation", "survey", "data_copying", "detection"):
        for k, v in cfg[section].items():
            out[f"{section}_{k}"] = v
    # the definitions the metric functions recorded (texts, identical on every row)
    fixed = ("_method", "_subsets", "_stderr_kind", "_formula", "_estimator", "_kernel", "_rule")
    fixed += ("_ground_cost", "_weights", "_ties", "_partition", "_keep_rule", "_z_u", "_sign")
    for k, v in base_vals.items():
        if isinstance(v, str) and k.endswith(fixed) and not k.startswith("w1_method"):
            out[k] = v
    if "pot_version" in base_vals:
        out["pot_version"] = base_vals["pot_version"]
    return out


def _detail(metric: str, row: pd.Series):
    """What a row's value of ``metric`` was computed with, where it varies by row."""

    def get(col):
        v = row.get(col)
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    if get(f"{metric}_note"):
        return f"not computed: {row[f'{metric}_note']}"
    if metric == "mmd2" and get("mmd_bandwidth") is not None:
        return f"sigma={row['mmd_bandwidth']:.6g} ({row['mmd_bandwidth_rule']})"
    if metric == "w1" and get("w1_method"):
        return str(row["w1_method"])
    if metric == "one_nn_accuracy" and get("one_nn_accuracy_real") is not None:
        return f"real {row['one_nn_accuracy_real']:.4f}, fake {row['one_nn_accuracy_fake']:.4f}"
    if metric == "ct" and get("ct_cells") is not None:
        return f"{int(row['ct_cells_used'])} of {int(row['ct_cells'])} k-means cells used"
    if metric in ("is_inf", "fid_inf") and get(f"{metric}_size_min") is not None:
        return (
            f"{int(row[f'{metric}_sizes_count'])} sizes {int(row[f'{metric}_size_min'])}.."
            f"{int(row[f'{metric}_size_max'])}, R^2 {row[f'{metric}_r2']:.4f}"
        )
    if metric == "cmmd" and get("cmmd_estimator"):
        return f"estimator={row['cmmd_estimator']}"
    if metric == "mode_score" and get("mode_score_form"):
        return f"form={row['mode_score_form']}"
    return None


def seed_of_halving(seed: int, halving: int, tag: int = 5) -> list[int]:
    """The seed sequence of one halving (``tag`` 999: the base set, kept from the first
    version for halving 0; 5: the reference)."""
    return [int(seed), int(tag)] if halving == 0 else [int(seed), int(tag), int(halving)]


def halves_of(count: int, key) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded halves of ``count`` rows (sorted indices)."""
    perm = np.random.default_rng(key).permutation(int(count))
    return np.sort(perm[: count // 2]), np.sort(perm[count // 2 :])


def duplicate_columns(feats, cfg) -> dict:
    """Exact duplicates among a configuration's feature rows (the k of recall's radii)."""
    return detection.duplicate_stats(feats, int(cfg.prdc.k_precision_recall))


#: per-row columns the long table keeps beside each metric's value
ROW_IDS = [
    "corruption",
    "strength",
    "seed",
    "kid_subset_size",
    "kid_matmul_dtype",
    "prdc_ball",
    "duplicate_fraction",
    "zero_knn_radius_fraction",
]


def _long_table(wide: pd.DataFrame) -> pd.DataFrame:
    metrics = [m for m in METRICS if m in wide.columns]
    out = wide.reset_index(names="_row").melt(
        id_vars=["_row", *ROW_IDS], value_vars=metrics, var_name="metric", value_name="value"
    )
    # IS_inf / FID_inf: the fit's standard error; every extra metric: what it was computed with
    se = {m: wide[f"{m}_se"] for m in ("is_inf", "fid_inf") if f"{m}_se" in wide.columns}
    out["stderr"] = [
        float(se[m].iloc[i]) if m in se else np.nan for m, i in zip(out.metric, out._row)
    ]
    out["detail"] = [_detail(m, wide.iloc[i]) for m, i in zip(out.metric, out._row)]
    out = out.drop(columns="_row")
    # the uncorrupted value: the mean over seeds of the uncorrupted set's rows
    base = out[out.corruption == UNCORRUPTED].groupby("metric").value.mean()
    out["uncorrupted"] = out.metric.map(base)
    out["relative_change"] = out.value / out.uncorrupted - 1
    return out


def _contrast_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Memorization's contrast in long format: each set against the reference half its copies
    came from and against the other half."""
    metrics = [m for m in METRICS if m in rows.columns]
    ids = ["corruption", "strength", "seed", "halving", "against"]
    return rows.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value")


def _halves_differences(long: pd.DataFrame) -> pd.DataFrame:
    """``A - B`` of every halving (columns metric, seed, halving, diff)."""
    h = long[long.corruption == NOISE]
    parts = h.strength.str.split(" #", expand=True)
    h = h.assign(half=parts[0], halving=parts[1])
    wide = h.pivot_table(
        index=["metric", "seed", "halving"], columns="half", values="value", aggfunc="first"
    )
    return (wide["half A"] - wide["half B"]).rename("diff").reset_index()


def _contrast_differences(contrast: pd.DataFrame) -> pd.DataFrame:
    """Per set: its value against the copied half minus against the other half."""
    wide = contrast.pivot_table(
        index=["corruption", "strength", "seed", "halving", "metric"],
        columns="against",
        values="value",
        aggfunc="first",
        sort=False,
    )
    out = (wide["copied half"] - wide["other half"]).rename("diff").reset_index()
    out["copied"] = wide["copied half"].to_numpy()
    out["other"] = wide["other half"].to_numpy()
    return out


def _dof(values) -> int:
    return int(np.isfinite(np.asarray(values, dtype=np.float64)).sum())


#: the memorization corruptions, judged by their contrast (copied half against the other half)
MEMORIZATION = ("memorization", "memorization_jittered")
BASIS_SETS = "corrupted - uncorrupted (means over seeds), against set-to-set noise at N"
BASIS_CONTRAST = (
    "contrast: (against the copied reference half - against the other half) - the same of the "
    "uncorrupted set, against the contrast's noise"
)


def detects(
    long: pd.DataFrame,
    threshold: float = 3.0,
    k_recall: int = 3,
    contrast: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per metric x corruption: the effect at the strongest strength in units of the noise,
    the verdict, its direction, the mildest strength detected and degenerate estimators
    (harness/detection.py)."""
    diffs = _halves_differences(long)
    noise = diffs.groupby("metric")["diff"].apply(detection.set_noise)
    dof = diffs.groupby("metric")["diff"].apply(_dof)
    base = long[long.corruption == UNCORRUPTED].groupby("metric").value.mean()
    c_diff = c_noise = c_dof = c_base = None
    if contrast is not None:
        c_diff = _contrast_differences(contrast)
        at_base = c_diff[c_diff.corruption == UNCORRUPTED]
        c_noise = at_base.groupby("metric")["diff"].apply(detection.contrast_noise)
        c_dof = at_base.groupby("metric")["diff"].apply(_dof)
        c_base = at_base.groupby("metric")["diff"].mean()
    rows = []
    judged = long[~long.corruption.isin([NOISE, UNCORRUPTED])]
    for (corr, metric), g in judged.groupby(["corruption", "metric"], sort=False):
        order = list(dict.fromkeys(g.strength))
        means = g.groupby("strength", sort=False).value.mean().reindex(order)
        b = float(base.get(metric, np.nan))
        by_contrast = corr in MEMORIZATION and c_diff is not None
        if by_contrast:
            sub = c_diff[(c_diff.corruption == corr) & (c_diff.metric == metric)]
            per = sub.groupby("strength", sort=False)["diff"].mean().reindex(order)
            effects = per.to_numpy() - float(c_base.get(metric, np.nan))
            eps, nu = float(c_noise.get(metric, np.nan)), int(c_dof.get(metric, 0))
            spreads = sub.groupby("strength", sort=False)["diff"].std(ddof=1).reindex(order)
            last = sub[sub.strength == order[-1]]
            direction = detection.better_or_worse(
                metric, float(last.other.mean()), float(last.copied.mean())
            )
        else:
            effects = means.to_numpy() - b
            eps, nu = float(noise.get(metric, np.nan)), int(dof.get(metric, 0))
            spreads = g.groupby("strength", sort=False).value.std(ddof=1).reindex(order)
            direction = detection.better_or_worse(metric, b, float(means.iloc[-1]))
        # a random corruption's own spread over its seeds (one draw per seed; none for a
        # deterministic transform): a seed that happens to keep odd images is not an effect
        spreads = np.nan_to_num(spreads.to_numpy(dtype=float), nan=0.0)
        totals = [float(np.hypot(eps, s)) if np.isfinite(eps) else eps for s in spreads]
        z = [detection.effect_in_noise_units(float(e), t) for e, t in zip(effects, totals)]
        defined = not np.isnan(z[-1])  # +-inf: an effect against zero noise
        hit = [bool(np.isfinite(e) and abs(zi) > threshold) for e, zi in zip(effects, z)]
        path = np.array([b, *means.to_numpy()])
        steps = np.diff(path)
        sign = np.sign(path[-1] - path[0])
        tol = 0.0 if not np.isfinite(eps) else eps
        degenerate = _degenerate(g, metric, k_recall)
        rows.append(
            {
                "corruption": corr,
                "metric": metric,
                "detects": (bool(hit[-1]) if defined and np.isfinite(effects[-1]) else None),
                "direction": direction if hit[-1] else None,
                "change_at_strongest": float(effects[-1]),
                "noise_std": totals[-1],
                "set_noise_std": eps,
                "corruption_spread": float(spreads[-1]),
                "effect_in_noise_units": float(z[-1]),
                "noise_dof": nu,
                "threshold": float(threshold),
                "strongest": order[-1],
                "first_detected": next((s for s, h in zip(order, hit) if h), None),
                "monotone": bool(np.all(sign * steps >= -tol)) if sign else False,
                "degenerate": degenerate,
                "basis": BASIS_CONTRAST if by_contrast else BASIS_SETS,
            }
        )
    return pd.DataFrame(rows, columns=DETECT_COLUMNS)


#: the columns of ``detects_detail`` (also when every corruption is switched off)
DETECT_COLUMNS = [
    "corruption",
    "metric",
    "detects",
    "direction",
    "change_at_strongest",
    "noise_std",
    "set_noise_std",
    "corruption_spread",
    "effect_in_noise_units",
    "noise_dof",
    "threshold",
    "strongest",
    "first_detected",
    "monotone",
    "degenerate",
    "basis",
]


def _degenerate(g: pd.DataFrame, metric: str, k_recall: int) -> str | None:
    """The degenerate-estimator reason of the corruption's most duplicated row, if any."""
    stats_ = {
        col: float(g[col].max()) if col in g and g[col].notna().any() else 0.0
        for col in ("zero_knn_radius_fraction", "duplicate_fraction")
    }
    return detection.degenerate_under_duplicates(metric, stats_, k_recall)


def cell(row) -> str:
    """One cell of the ``detects`` grid: yes (better / worse), no, n/a; degenerate flagged."""
    v = row.get("detects")
    if v is None or v != v:
        text = "n/a"
    elif v:
        text = f"yes, {row['direction']}" if row.get("direction") else "yes"
    else:
        text = "no"
    return f"{text} (degenerate)" if isinstance(row.get("degenerate"), str) else text


def rule_notes(summary: pd.DataFrame, threshold: float) -> list[str]:
    """The rule, and its power for each noise basis in the table (degrees of freedom)."""
    out = [RULE]
    for basis, name in ((BASIS_SETS, "corruptions"), (BASIS_CONTRAST, "memorization")):
        dofs = summary.loc[summary.basis == basis, "noise_dof"] if len(summary) else []
        for nu in sorted({int(d) for d in dofs if d > 0}):
            out.append(
                f"{name}, for the set-to-set noise alone: "
                f"{detection.rule_power(threshold, nu).text()} (a random corruption's spread "
                "over seeds, where added, only lowers the false-alarm rate)"
            )
    return out


def sample_efficiency(
    rows: pd.DataFrame, summary: pd.DataFrame, n: int, threshold: float
) -> pd.DataFrame:
    """Per metric x corruption x N: the strongest corruption re-scored on seeded subsets of N
    positions (the same positions of the uncorrupted set: paired), its effect (mean over
    seeds) against the noise at that N (the noise at the full N x sqrt(N_full / N)), and the
    full N from ``summary``; ``smallest_n``: the smallest N from which on (every larger N too)
    it separates."""
    metrics = [m for m in METRICS if m in rows.columns]
    long = rows.melt(
        id_vars=["corruption", "strength", "seed", "size"],
        value_vars=metrics,
        var_name="metric",
        value_name="value",
    )
    base = (
        long[long.corruption == UNCORRUPTED]
        .set_index(["seed", "size", "metric"])
        .value.rename("base")
    )
    judged = long[long.corruption != UNCORRUPTED].join(base, on=["seed", "size", "metric"])
    judged["diff"] = judged.value - judged.base
    full = summary.set_index(["corruption", "metric"])
    out = []
    for (corr, metric), g in judged.groupby(["corruption", "metric"], sort=False):
        if (corr, metric) not in full.index:
            continue
        at_n = full.loc[(corr, metric)]
        noise_n = float(at_n.set_noise_std)
        per_size = g.groupby("size")["diff"].mean().sort_index(ascending=False)
        points = [(n, float(at_n.change_at_strongest))]
        points += [(int(m), float(e)) for m, e in per_size.items()]
        for m, effect in points:
            noise = noise_n * np.sqrt(n / m)
            z = detection.effect_in_noise_units(effect, noise)
            out.append(
                {
                    "corruption": corr,
                    "metric": metric,
                    "strength": at_n.strongest,
                    "n": m,
                    "effect": effect,
                    "noise_std": noise,
                    "effect_in_noise_units": z,
                    "separates": bool(np.isfinite(effect) and abs(z) > threshold),
                }
            )
    table = pd.DataFrame(out)
    if not len(table):
        return table
    smallest = {}
    for key, g in table.groupby(["corruption", "metric"], sort=False):
        g = g.sort_values("n", ascending=False)
        m = None
        for size, sep in zip(g.n, g.separates):
            if not sep:
                break
            m = int(size)
        smallest[key] = m
    table["smallest_n"] = [smallest[(c, m)] for c, m in zip(table.corruption, table.metric)]
    return table


#: Xu et al. 2018 (arXiv:1806.07755), their conclusion as ../shared/paper-notes.md records it:
#: "in a suitable feature space kernel MMD and the 1-NN test do well on all properties; IS and
#: Mode Score do not".  Per metric: (their word, what it implies for our properties: True =
#: detects / is robust; None = no per-property claim to compare).
XU_CITATION = "Xu et al. 2018, arXiv:1806.07755 (abstract and concluding discussion)"
XU_CONCLUSIONS = {
    "mmd2": "does well on all properties (in a suitable feature space)",
    "one_nn_accuracy": "does well on all properties (in a suitable feature space)",
    "is_mean": "does not do well",
    "mode_score": "does not do well",
}
#: the properties their "does well on all" covers, as this table measures them
XU_PROPERTIES = ("mode_collapse", "mode_dropping", "memorization", "small_transforms")


def _verdict(summary: pd.DataFrame, corr: str, metric: str):
    row = summary[(summary.corruption == corr) & (summary.metric == metric)]
    return None if not len(row) else row.iloc[0]


def property_table(
    summary: pd.DataFrame,
    long: pd.DataFrame,
    cost: pd.DataFrame,
    efficiency: pd.DataFrame | None,
) -> pd.DataFrame:
    """One row per metric, Xu et al.'s properties as columns: discriminability (the real set
    against the real reference, its noise, and how many corruptions it detects), mode collapse
    (intra_class_collapse), mode dropping, memorization (exact copies, by the contrast),
    robustness to small transforms (not moved at the mildest shift and rotation), sample
    efficiency (the smallest N separating the strongest collapse / dropping), cost (seconds at
    N); beside their conclusion and where we disagree."""
    base = long[long.corruption == UNCORRUPTED].groupby("metric").value.mean()
    quality = [
        c for c in dict.fromkeys(summary.corruption) if c not in ("sample_size",)
    ]  # every corruption but N itself
    seconds = cost.set_index("metric").seconds_at_n if len(cost) else pd.Series(dtype=float)
    rows = []
    for metric in _metrics_in(long):
        got = {}
        v = summary[(summary.metric == metric) & summary.corruption.isin(quality)]
        judged = v[v.detects.notna()]
        worse = judged.detects.astype(bool) & (judged.direction == "worse")
        row = {
            "metric": metric,
            "real_vs_reference": float(base.get(metric, np.nan)),
            "noise_std": float(v.set_noise_std.iloc[0]) if len(v) else np.nan,
            "discriminability": f"calls {int(worse.sum())} of {len(judged)} corruptions worse",
        }
        for prop, corr in (
            ("mode_collapse", "intra_class_collapse"),
            ("mode_dropping", "mode_dropping"),
            ("memorization", "memorization"),
        ):
            r = _verdict(summary, corr, metric)
            row[prop] = None if r is None else cell(r)
            # a failure the metric calls *better* (rewarding copies) is not a detection
            got[prop] = (
                None
                if r is None or not _known(r.detects)
                else bool(r.detects) and r.direction == "worse"
            )
        moved = []
        for corr in ("shift", "rotate"):
            r = _verdict(summary, corr, metric)
            strengths = list(dict.fromkeys(long[long.corruption == corr].strength))
            if r is not None and strengths and r.first_detected == strengths[0]:
                moved.append(f"{corr} {strengths[0]}")
        tested = [c for c in ("shift", "rotate") if (long.corruption == c).any()]
        if tested:
            row["small_transforms"] = f"moves at {', '.join(moved)}" if moved else "robust"
            got["small_transforms"] = not moved
        else:
            row["small_transforms"] = None
        if efficiency is not None and len(efficiency):
            parts = []
            for corr in ("mode_dropping", "intra_class_collapse"):
                e = efficiency[(efficiency.metric == metric) & (efficiency.corruption == corr)]
                if len(e):
                    m = e.smallest_n.iloc[0]
                    parts.append(
                        f"{corr}: " + ("not at N" if m is None or m != m else f"N>={int(m)}")
                    )
            row["sample_efficiency"] = "; ".join(parts) or None
        row["seconds_at_n"] = float(seconds.get(metric, np.nan))
        xu = XU_CONCLUSIONS.get(metric)
        row["xu_et_al"] = xu
        row["disagrees_with_xu"] = _disagreement(metric, got) if xu else None
        rows.append(row)
    return pd.DataFrame(rows)


def _known(v) -> bool:
    return v is not None and v == v


def _disagreement(metric: str, got: dict) -> str:
    """Where our measurements contradict Xu et al.'s conclusion for ``metric``."""
    measured = {p: got[p] for p in XU_PROPERTIES if got.get(p) is not None}
    if not measured:
        return "not measured here"
    if XU_CONCLUSIONS[metric].startswith("does well"):
        missed = [p for p, ok in measured.items() if not ok]
        return f"fails here: {', '.join(missed)}" if missed else "agrees"
    passed = [p for p, ok in measured.items() if ok]
    if len(passed) == len(measured):
        return f"does well here on every property measured ({', '.join(passed)})"
    return "agrees (fails " + ", ".join(p for p, ok in measured.items() if not ok) + ")"


RULE = (
    "detects = at the strongest corruption, |effect| > detection.threshold x noise; effect = "
    "the mean over seeds of the corrupted value minus the mean over the same seeds of the "
    "uncorrupted one; noise = how far two independent real sets of N samples differ "
    "(sqrt(mean((A - B)^2) / 2) over disjoint random halves A, B of the uncorrupted set, "
    "detection.halvings per seed, spread scaled as 1/sqrt(N)), combined with the corruption's "
    "own spread over its seeds (std, ddof 1; none for deterministic transforms); better / "
    "worse by what the metric calls better. Memorization is judged by its contrast (each set "
    "against the reference half its copies came from, minus against the other half, minus "
    "the same of the "
    "uncorrupted set), so the base set's distance to the reference does not count as "
    "memorization. Small transforms have one deterministic result per strength. degenerate: "
    "exact duplicates made the estimator's value an artefact (k-NN radius 0, 1-NN twins)."
)


def _metrics_in(long: pd.DataFrame) -> list[str]:
    """The metrics a table has, in :data:`METRICS` order (no IS / S(G) without a classifier)."""
    have = set(long.metric)
    return [m for m in METRICS if m in have]


def _no_is_notes(result: Result) -> list[str]:
    note = result.extra.get("is_note")
    return [f"no IS / S(G) rows: {note}; FID, KID and PRDC use its features"] if note else []


def present(result: Result, run) -> None:
    long, det = result.table, result.tables["detects"]
    metric_notes = result.extra.get("metric_notes") or []
    run.table(
        long,
        title="Each metric under controlled corruptions (long format)",
        quiet=True,
        notes=[f"classes: {result.extra['classes_from']}", *_no_is_notes(result), *metric_notes],
    )
    grid = det.assign(cell=[cell(r) for _, r in det.iterrows()]).pivot(
        index="metric", columns="corruption", values="cell"
    )
    grid = grid.reindex(_metrics_in(long)).reset_index()
    rule = result.extra.get("rule_notes") or [RULE]
    run.table(
        grid,
        name="detects",
        title="Which corruption each metric detects (and whether it calls it better or worse)",
        notes=[*rule, "n/a: the metric could not be computed on a set of that size", *metric_notes]
        + _no_is_notes(result),
    )
    run.table(det, name="detects_detail", title="Detection detail", quiet=True)
    if "properties" in result.tables:
        run.table(
            result.tables["properties"],
            name="properties",
            title="Metric x property, beside Xu et al.'s conclusions",
            notes=[
                f"xu_et_al: {XU_CITATION}; their summary names no per-property verdict for the "
                "other metrics",
                "discriminability: the uncorrupted real set against the real reference "
                "(real_vs_reference, noise_std) and the corruptions detected; small_transforms: "
                "robust = not detected at the mildest shift and rotation",
            ],
        )
    for name, title in (
        ("memorization_contrast", "Memorization: each set against both reference halves"),
        ("sample_efficiency", "Sample efficiency: the strongest corruptions on subsets of N"),
    ):
        if name in result.tables:
            run.table(result.tables[name], name=name, title=title, quiet=True)
    if "cost" in result.tables:
        run.table(
            result.tables["cost"],
            name="cost",
            title="Seconds per metric on this machine (the uncorrupted set at the configured N)",
            quiet=True,
        )
    for corr in [c for c in dict.fromkeys(long.corruption) if c not in (NOISE, UNCORRUPTED)]:
        run.figure(figure(long, corr), f"metric_properties_{corr}")


def headline(result: Result) -> str:
    det = result.tables["detects"]
    if not (det.metric == "is_mean").any() and result.extra.get("is_note"):
        fid_det = det[det.metric == "fid"].set_index("corruption").detects
        missed = [c for c, v in fid_det.items() if not v]
        return f"no IS ({result.extra['is_note']}); FID misses: {', '.join(missed) or 'none'}"
    is_det = det[det.metric == "is_mean"].set_index("corruption").detects
    missed = [c for c, v in is_det.items() if not v]
    return f"IS misses: {', '.join(missed) or 'none'}"


def figure(long: pd.DataFrame, corruption: str):
    g = long[long.corruption == corruption]
    order = list(dict.fromkeys(g.strength))
    fig, ax = subplots(figsize=(7, 4.2))
    undefined = []
    for metric in _metrics_in(g):
        m = g[g.metric == metric]
        mean = m.groupby("strength", sort=False).value.mean().reindex(order)
        base = float(m.uncorrupted.iloc[0])
        # a ratio to a base <= 0 or of a negative value (unbiased KID) means nothing: not drawn
        y = defined_ratio([base, *mean.to_numpy()], base)
        if np.isnan(y).any():
            undefined.append(metric)
        if np.isnan(y).all():
            continue
        ax.plot(range(len(order) + 1), y, "o-", label=metric)
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xticks(range(len(order) + 1), ["none", *order], fontsize=8)
    ax.set_xlabel(f"{corruption} strength")
    ax.set_ylabel("metric / its uncorrupted value")
    legend(ax, fontsize=7, ncol=2)
    on = inputs_title(g)
    ref = [str(v) for v in dict.fromkeys(g.get("reference_label", pd.Series(dtype=object)))]
    ax.set_title(
        f"{corruption}: every metric normalised to the uncorrupted set"
        + (f"\n{on}" if on else "")
        + (f" vs reference {', '.join(ref)}" if ref else ""),
        fontsize=9,
    )
    if undefined:
        note_below(
            ax,
            "ratio not defined (a value or its uncorrupted base not positive), not drawn: "
            + ", ".join(undefined),
            y=-0.22,
        )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    long = pd.read_csv(Path(run_dir) / "table.csv")
    return {
        f"metric_properties_{c}": figure(long, c)
        for c in ("intra_class_collapse", "memorization")
        if (long.corruption == c).any()
    }
