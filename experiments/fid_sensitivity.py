"""Experiment ``fid_sensitivity``: how much FID (and KID, precision/recall, density/coverage)
moves across the frameworks' Inception V3 and resize methods, beside IS.

The paper measured IS differing by 11.5% between Keras and PyTorch weights on CIFAR-10; this asks
the same of the feature-space metrics.  One sample set (``dataset``) and one reference set
(``reference``) go through every backbone (``backbones``) under its native resize and each method
in ``resizes``; pool features and logits come from the logits cache, so a repeated resize or a
re-run costs nothing.  Metrics: :mod:`harness.feature_metrics` (float64) and :mod:`harness.scores`.

``kid.subset_size``: an integer larger than the smaller set is an error; ``auto`` is
min(1000, N samples, N reference), as in ``sanity``.  The size used is in every row
(``kid_subset_size``), the setting in ``kid_subset_size_setting``.  ``kid.seed`` must lie in
[0, 2**32) (numpy's RandomState draws the subsets); both are checked before any network pass.

Any backbone with features takes part, also a features-only encoder (``torch_model`` /
``keras_model`` with ``head=features``): its FID/KID/PRDC come from its features, its IS / S(G)
columns are empty (NaN) with the reason in ``is_note``, and the pairwise table and the figure
leave its IS out.  ``n_splits`` is checked against the samples only when some backbone has IS.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from harness import config, inputs, metric_set
from harness import feature_metrics as fm
from harness import resize as rs
from harness import settings as S
from harness.errors import ConfigError
from harness.pipeline import outputs
from harness.plotting import (
    dataset_labels,
    defined_ratio,
    legend,
    note_below,
    subplots,
    suptitle,
)
from harness.resize import BY_SHORT_NAME
from harness.rows import dataset_label, provenance_columns, score_row
from harness.runner import Result

#: the extra metrics this table can give (harness/metric_set.py); C_T and authenticity need a
#: held-out real set: ``memorization`` and ``metric_properties`` report them
EXTRA_METRICS = ("is_inf", "fid_inf", "mode_score", "mmd2", "w1", "one_nn_accuracy", "cmmd")
#: computed unless ``extra_metrics`` says otherwise (CMMD by name: made for CLIP embeddings)
DEFAULT_EXTRA = tuple(m for m in EXTRA_METRICS if m != "cmmd")

#: the smallest subset of ``sample_sizes`` (PRDC's k-NN needs more than k = 5 neighbours)
MIN_SUBSET = 10
#: the columns of the native row that ``moves`` carries (what the numbers were made with)
MOVES_PROVENANCE = (
    "backbone",
    "weights_sha256",
    "weights_status",
    "resize",
    "resize_operation",
    "dataset_label",
    "reference_label",
    "n_reference",
)
#: the metrics whose moves with resize and N the ``moves`` table shows (where a backbone has them)
MOVES_METRICS = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "cmmd", "is_mean")

SETTINGS = S.ExperimentSettings(
    "FID/KID/precision/recall/density/coverage and IS of one sample set vs one reference set "
    "through every Inception V3 and resize.",
    S.Schema(
        [
            S.NodeMap(
                "backbones",
                "backbone",
                {
                    "tf2015": "tf2015",
                    "tf2015_torch": "tf2015_torch",
                    "torchvision": "torchvision",
                    "keras": "keras",
                    "tfhub": "tfhub",
                },
            ),
            S.Node(
                "dataset", "dataset", "cifar10", doc="the samples (a generator's output in use)"
            ),
            S.Node(
                "reference", "dataset", "cifar10_test", doc="the reference set FID/KID/PRDC use"
            ),
            config.weights_override(),
            S.Setting(
                "resizes",
                S.ListOf(S.Choice(tuple(BY_SHORT_NAME)), min_len=0, unique=True),
                [
                    "tf1_bilinear",
                    "tf2_bilinear",
                    "torch_bilinear_align_corners",
                    "antialias",
                    "pil_bicubic",
                ],
                "each backbone under its own native resize and under each of these (identical "
                "operations share one network pass through the cache)",
            ),
            S.Setting(
                "sample_sizes",
                S.ListOf(S.Int(lo=MIN_SUBSET), min_len=0, unique=True),
                [],
                "subset sizes n for how each metric moves with N (table by_n, columns of moves): "
                "samples and reference each cut to n seeded images, the same for every backbone "
                "([] for none)",
            ),
            config.kid_section(),
            config.prdc_section(),
            S.Setting(
                "extra_metrics",
                S.ListOf(S.Choice(EXTRA_METRICS), min_len=0, unique=True),
                list(DEFAULT_EXTRA),
                "beside FID, KID, PRDC and IS: IS_inf/FID_inf and Xu et al.'s metrics; cmmd by "
                "name ([] for none: FID_inf, MMD and 1-NN cost the most)",
            ),
            config.extrapolation_section(),
            config.survey_section(),
        ]
    ),
    uses_splits=True,
)

#: ``kid.subset_size=auto``: the largest subset, as in ``sanity``
KID_AUTO_MAX = 1000
#: numpy's RandomState takes seeds in [0, 2**32)
SEED_LIMIT = 2**32


#: why a backbone's IS / S(G) columns are empty (``is_note``)
NO_HEAD = "no classifier head (features only)"
#: the score columns of :func:`harness.rows.score_row`, empty for a features-only backbone
NO_SCORES = {
    k: np.nan
    for k in (
        "is_mean",
        "is_std",
        "sg_nats",
        "sg_bits",
        "sg_sem_nats",
        "h_y_given_x_bits",
        "h_y_bits",
        "underflow_rows",
    )
}


def kid_subset_size(setting, n: int, n_reference: int) -> int:
    """The KID subset size for ``n`` samples against ``n_reference``: ``auto`` is
    min(1000, n, n_reference) (as ``sanity``); an integer must fit in both sets (one-line error
    otherwise)."""
    if setting == "auto":
        return min(KID_AUTO_MAX, int(n), int(n_reference))
    if isinstance(setting, bool) or not isinstance(setting, (int, np.integer)) or setting < 2:
        raise ConfigError(
            f"kid.subset_size={setting!r}; set an integer >= 2 or auto "
            "(min(1000, N samples, N reference))"
        )
    fm.check_kid_subset(int(setting), min(int(n), int(n_reference)))
    return int(setting)


def check_kid_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"kid.seed={seed!r}; set an integer in [0, {SEED_LIMIT - 1}]")
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"kid.seed={seed}; set an integer in [0, {SEED_LIMIT - 1}]")


def feature_metric_row(samples, reference, kid_cfg, prdc_cfg) -> dict:
    """FID, KID and PRDC of two pool-feature arrays, with their settings (one table row)."""
    with warnings.catch_warnings():  # recorded per row (fid_rank_deficient) and in the notes
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        f = fm.fid(samples, reference)
    k = fm.kid(
        samples,
        reference,
        int(kid_cfg.subsets),
        kid_subset_size(kid_cfg.subset_size, len(samples), len(reference)),
        int(kid_cfg.seed),
        matmul_dtype=kid_cfg.matmul_dtype,
    )
    p = fm.prdc(
        reference,
        samples,
        int(prdc_cfg.k_precision_recall),
        int(prdc_cfg.k_density_coverage),
        ball=prdc_cfg.ball,
    )
    return {
        "fid": f.value,
        "kid_mean": k.mean,
        "kid_std": k.std,
        "precision": p.precision,
        "recall": p.recall,
        "density": p.density,
        "coverage": p.coverage,
        **f.provenance(),
        **k.provenance(),
        "kid_subset_size_setting": str(kid_cfg.subset_size),
        **p.provenance(),
    }


def extra_metric_row(s, r, cfg, w1_sliced: bool, head: bool) -> dict:
    """The ``extra_metrics`` of samples ``s`` against reference ``r`` (pipeline outputs);
    ``head``: the network has a classifier (IS_inf and the Mode Score need probabilities)."""
    want, out = set(cfg.extra_metrics), {}
    if "is_inf" in want and head:
        out.update(metric_set.is_inf_columns(s.probs, cfg.extrapolation))
    if "fid_inf" in want:
        out.update(metric_set.fid_inf_columns(s.pool, r.pool, cfg.extrapolation))
    if "mode_score" in want and head:
        out.update(metric_set.mode_score_columns(s.probs, r.probs, cfg.survey))
    if "mmd2" in want:
        out.update(metric_set.mmd_columns(s.pool, r.pool, cfg.survey))
    if "w1" in want:
        out.update(metric_set.wasserstein_columns(s.pool, r.pool, cfg.survey, w1_sliced))
    if "one_nn_accuracy" in want:
        out.update(metric_set.one_nn_columns(s.pool, r.pool))
    if "cmmd" in want:
        out.update(metric_set.cmmd_columns(s.pool, r.pool, cfg.survey))
    return out


def subset_indices(n_samples: int, n_reference: int, n: int, seed: int):
    """The rows of the samples and of the reference at subset size ``n``: ``n`` of each without
    replacement, sorted, from ``numpy.random.default_rng([seed, n])`` (samples drawn first)."""
    rng = np.random.default_rng([int(seed), int(n)])
    s = np.sort(rng.choice(int(n_samples), int(n), replace=False))
    return s, np.sort(rng.choice(int(n_reference), int(n), replace=False))


def check_sample_sizes(sizes, n_samples: int, n_reference: int, prdc) -> list[int]:
    """``sample_sizes`` that fit both sets and PRDC's k (one-line error before any pass)."""
    sizes = sorted(int(n) for n in sizes or ())
    k = max(int(prdc.k_precision_recall), int(prdc.k_density_coverage))
    if sizes and sizes[0] <= k:
        raise ConfigError(
            f"sample_sizes={sizes}: {sizes[0]} is too few for PRDC's k-NN with k = {k} "
            f"(prdc.k_*); choose sizes > {k}"
        )
    too_big = [n for n in sizes if n > min(n_samples, n_reference)]
    if too_big:
        raise ConfigError(
            f"sample_sizes={sizes}: {too_big} exceed the smaller set ({n_samples:,} samples, "
            f"{n_reference:,} reference images); choose sizes <= {min(n_samples, n_reference):,}"
        )
    return sizes


def by_n_rows(s, r, sizes, cfg) -> list[dict]:
    """FID, KID, PRDC (and CMMD when asked for) on seeded subsets of n samples and n reference
    images (:func:`subset_indices`).  KID's subset size is min(the setting, n); when that is n
    every subset is the whole set, so one subset is drawn and ``kid_std`` is empty.  IS is not
    here: how IS moves with N is the ``splits`` experiment's sample-size sweep."""
    rows = []
    for n in sizes:
        si, ri = subset_indices(len(s.pool), len(r.pool), n, cfg.seed)
        kid = OmegaConf.to_container(cfg.kid, resolve=True)
        size = min(KID_AUTO_MAX, n) if kid["subset_size"] == "auto" else int(kid["subset_size"])
        whole = size >= n
        kid.update(subset_size=min(size, n), subsets=1 if whole else kid["subsets"])
        row = feature_metric_row(s.pool[si], r.pool[ri], OmegaConf.create(kid), cfg.prdc)
        if whole:
            row.update(kid_std=np.nan, kid_note=f"subset size capped at n = {n}: one subset")
        if "cmmd" in cfg.extra_metrics:
            row.update(metric_set.cmmd_columns(s.pool[si], r.pool[ri], cfg.survey))
        row.update(
            n_subset=n,
            n_samples=n,
            n_reference=n,
            kid_subset_size_setting=str(cfg.kid.subset_size),
            subset_seed=int(cfg.seed),
        )
        rows.append(row)
    return rows


def moves(table: pd.DataFrame, by_n: pd.DataFrame) -> pd.DataFrame:
    """Per backbone and metric: the value (native resize, all images), its range over the
    resize variants and the spread in % (max / min - 1, empty where a ratio means nothing), and
    its value and % change at each subset size n."""
    rows = []
    for bkey, t in table.groupby("backbone_key", sort=False):
        native = t[t.resize_variant == "native"].iloc[0]
        for m in MOVES_METRICS:
            if m not in t.columns or pd.isna(native[m]):
                continue
            vals = t[m].astype(float)
            row = {
                "backbone_key": bkey,
                **{c: native[c] for c in MOVES_PROVENANCE if c in native},
                "metric": m,
                "value": float(native[m]),
                "n_samples": int(native["n_samples"]),
                "resize_variants": len(vals),
                "resize_min": vals.min(),
                "resize_max": vals.max(),
                "resize_spread_pct": (float(defined_ratio(vals.max(), vals.min())) - 1) * 100,
            }
            sub = by_n[by_n.backbone_key == bkey] if len(by_n) and m in by_n else by_n[:0]
            for _, b in sub.iterrows():
                n = int(b["n_subset"])
                row[f"at_n{n}"] = float(b[m])
                row[f"at_n{n}_pct"] = (float(defined_ratio(b[m], native[m])) - 1) * 100
            rows.append(row)
    return pd.DataFrame(rows)


def _variants(cfg) -> dict:
    unknown = [r for r in cfg.resizes if r not in rs.BY_SHORT_NAME]
    if unknown:
        raise ConfigError(f"resizes: unknown {unknown}; choose from {sorted(rs.BY_SHORT_NAME)}")
    return {"native": {}, **{str(r): rs.BY_SHORT_NAME[r] for r in cfg.resizes}}


def variant_row(cfg, net, keys, samples, reference, spec, w1_sliced: bool) -> dict:
    """One row of the table: backbone ``keys`` = (key, resize variant) over ``samples`` and
    ``reference`` (each (source, pass outputs)), every metric and its provenance."""
    (bkey, vname), (src, s), (ref, r) = keys, samples, reference
    prov = net.provenance()
    return {
        "backbone_key": bkey,
        "resize_variant": vname,
        "resize_operation": rs.canonical(prov["resize"], prov.get("align_corners")),
        **feature_metric_row(s.pool, r.pool, cfg.kid, cfg.prdc),
        **(score_row(s.probs, spec) if net.has_logits else NO_SCORES),
        **extra_metric_row(s, r, cfg, w1_sliced, net.has_logits),
        "is_note": None if net.has_logits else NO_HEAD,
        "n_reference": len(ref),
        "reference_dataset": ref.provenance()["dataset"],
        "reference_label": dataset_label(ref),
        "reference_fingerprint": ref.fingerprint(),
        "features_from_cache": bool(s.from_cache and r.from_cache),
        **provenance_columns(net, src, spec, cfg.seed),
    }


def n_rows_of(cfg, net, row: dict, src, outs, sizes) -> list[dict]:
    """``by_n``'s rows of one backbone at its native resize: the subsets' metrics, with the
    row's identity and reference columns and the network's provenance."""
    keep = ("backbone_key", "resize_variant", "resize_operation", "features_from_cache")
    keep += tuple(k for k in row if k.startswith("reference_"))
    return [
        {**{k: row[k] for k in keep}, **provenance_columns(net, src, None, cfg.seed), **nr}
        for nr in by_n_rows(*outs, sizes, cfg)
    ]


def compute(cfg) -> Result:
    variants = _variants(cfg)
    fm.check_kid_matmul_dtype(cfg.kid.matmul_dtype)
    check_kid_seed(cfg.kid.seed)
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("dataset", "reference"))
    src, ref = got.source("dataset"), got.source("reference")
    kid_subset_size(cfg.kid.subset_size, len(src), len(ref))  # checked before any pass
    sizes = check_sample_sizes(cfg.sample_sizes, len(src), len(ref), cfg.prdc)
    spec = config.split_spec(cfg)
    nets = {k: v for k, v in got.nets.items() if v.has_features}
    # an encoder (no classifier head) gets FID/KID/PRDC and no IS: splits matter only for IS
    with_is = [k for k, v in nets.items() if v.has_logits]
    got.require_splits(spec.n_splits, keys=["dataset"] if with_is else [], need_logits=False)
    # e.g. TF-Hub's classification model: logits only, so no FID/KID/PRDC (said, not hidden)
    without = {
        k: f"{v.name} exposes no pool features (logits only)"
        for k, v in got.nets.items()
        if not v.has_features
    }
    rows, n_rows = [], []
    # one W1 method for the whole table (exact and sliced values are never compared)
    w1_sliced = max(len(src), len(ref)) > int(cfg.survey.wasserstein_exact_max)
    for (bkey, base), (vname, knobs) in itertools.product(nets.items(), variants.items()):
        net = (
            base
            if not knobs
            else inputs.build_backbone(got.specs[bkey], **{"align_corners": None, **knobs})
        )
        s = outputs(cfg, net, src, features=True, label=f"{bkey} {vname}: samples")
        r = outputs(cfg, net, ref, features=True, label=f"{bkey} {vname}: reference")
        row = variant_row(cfg, net, (bkey, vname), (src, s), (ref, r), spec, w1_sliced)
        rows.append(row)
        if not knobs and sizes:  # N moves at the backbone's native resize
            n_rows += n_rows_of(cfg, net, row, src, (s, r), sizes)
    table = pd.DataFrame(rows)
    by_n = pd.DataFrame(n_rows)
    table["extra_metrics"] = ",".join(cfg.extra_metrics)
    for section in ("extrapolation", "survey"):
        for k, v in cfg[section].items():
            table[f"{section}_{k}"] = v
    return Result(
        {"table": table, "pairwise": pairwise(table), "by_n": by_n, "moves": moves(table, by_n)},
        got.random_weights,
        extra={"backbones_without_features": without, "metric_notes": metric_set.notes_of(table)},
    )


def pairwise(table: pd.DataFrame) -> pd.DataFrame:
    """% difference of each metric between every pair of backbones at their native resize."""
    nat = table[table.resize_variant == "native"].set_index("backbone_key")
    rows = []
    for a, b in itertools.combinations(nat.index, 2):
        row = {"backbone_a": a, "backbone_b": b}
        for m in ("fid", "kid_mean", "is_mean"):
            va, vb = nat.loc[a, m], nat.loc[b, m]
            row[f"{m}_a"], row[f"{m}_b"] = va, vb
            # a ratio with a negative value or a base <= 0 (unbiased KID can be < 0) means nothing
            row[f"{m}_diff_pct"] = (float(defined_ratio(va, vb)) - 1) * 100
        rows.append(row)
    return pd.DataFrame(rows)


def _table_notes(t: pd.DataFrame, result: Result) -> list[str]:
    """The notes under the main table: the metrics' definitions, what was left out and why."""
    return [
        "FID: float64, np.cov (ddof 1), trace of sqrt(S1^1/2 S2 S1^1/2) from eigenvalues; "
        "KID: unbiased MMD^2, cubic kernel, RandomState subsets as torch-fidelity; "
        "precision/recall k=3, density/coverage k=5, exact k-NN.",
        "resize_operation names what the resize does: variants with the same operation "
        "share one network pass.",
        *(
            [
                "fid_rank_deficient: fewer samples than feature dimensions, so the "
                "covariances are singular and FID is biased upwards (use >= 2,048 samples)."
            ]
            if t.fid_rank_deficient.any()
            else []
        ),
        *[
            f"not in the table: {k}: {why}"
            for k, why in result.extra.get("backbones_without_features", {}).items()
        ],
        *[
            f"no IS / S(G) for {k} (is_mean ... underflow_rows empty): {why}"
            for k, why in _is_notes(t).items()
        ],
        *_extra_notes(t),
        *(result.extra.get("metric_notes") or []),
    ]


def present(result: Result, run) -> None:
    t = result.table
    run.table(
        t,
        title="FID, KID, precision/recall, density/coverage and IS of the same samples under "
        f"each backbone and resize (samples {', '.join(dataset_labels(t))}; reference "
        f"{', '.join(_reference_labels(t))})",
        notes=_table_notes(t, result),
        print_columns=[
            "backbone_key",
            "resize_variant",
            "fid",
            "kid_mean",
            "precision",
            "recall",
            "density",
            "coverage",
            "is_mean",
            *[c for c in PRINTED_EXTRAS if c in t.columns],
        ],
    )
    notes = _is_notes(t)
    run.table(
        result.tables["pairwise"],
        name="pairwise",
        title="Pairwise % differences between backbones (native resize), % of backbone_b",
        notes=[
            "*_diff_pct: empty where a ratio means nothing (a negative value or a base <= 0: "
            "unbiased KID can be negative).",
            *([f"is_*: empty where a backbone has no IS ({', '.join(notes)})"] if notes else []),
        ],
        print_columns=[
            "backbone_a",
            "backbone_b",
            "fid_diff_pct",
            "kid_mean_diff_pct",
            "is_mean_diff_pct",
        ],
    )
    run.table(
        result.tables["moves"],
        name="moves",
        title="How far each metric moves with the resize and with N, per backbone",
        notes=[
            "value: native resize, all images; resize_*: over the resize variants (all "
            "images); at_n<n>: on n seeded samples and n reference images (by_n.csv; "
            "dataset_label and reference_label name the sets they are drawn from), "
            "*_pct: % change from value (100 x (x / value - 1)), empty where a ratio means "
            "nothing (KID can be < 0).",
            "IS: resize only (how IS moves with N: +experiment=splits, its sample-size "
            "sweep); KID at n: subset size min(setting, n), one subset when that is n.",
        ],
        print_columns=["backbone_key", "metric", "value", "resize_spread_pct"]
        + [c for c in result.tables["moves"].columns if c.endswith("_pct") and "at_n" in c],
    )
    if len(result.tables["by_n"]):
        run.table(
            result.tables["by_n"],
            name="by_n",
            title="The metrics at each subset size n",
            quiet=True,
        )
    run.figure(figure(t), "fid_sensitivity")


#: the extra metrics' columns printed with the table (all are in table.csv)
PRINTED_EXTRAS = ("is_inf", "fid_inf", "fid_inf_se", "mode_score", "mmd2", "w1", "one_nn_accuracy")


def _extra_notes(table: pd.DataFrame) -> list[str]:
    """What the extra metrics are, for those in the table."""
    have = [c for c in metric_set.FAMILIES if c in table.columns]
    out = [f"{c}: {metric_set.FAMILIES[c]}" for c in have]
    if "w1_method" in table.columns:
        out.append(
            f"w1 method: {table.w1_method.dropna().iloc[0]}"
            if table.w1_method.notna().any()
            else ""
        )
    return [o for o in out if o]


def _is_notes(table: pd.DataFrame) -> dict:
    """backbone key -> why it has no IS (features-only networks)."""
    if "is_note" not in table.columns:
        return {}
    noted = table[table.is_note.notna() & (table.is_note != "")]
    return dict(zip(noted.backbone_key, noted.is_note, strict=False))


def headline(result: Result) -> str:
    nat = result.table[result.table.resize_variant == "native"]
    lo, hi = nat.fid.min(), nat.fid.max()
    return (
        f"FID {lo:.4g} .. {hi:.4g} across backbones at native resize ({(hi / lo - 1) * 100:.1f}%)"
    )


#: the metrics of the right-hand panel, each relative to its value under one backbone
RATIO_METRICS = ("fid", "kid_mean", "is_mean")


def ratios(values: pd.Series) -> tuple[pd.Series, str | None, list]:
    """Each value over the first positive one (its backbone named); where the ratio means
    nothing (:func:`harness.plotting.defined_ratio`: unbiased KID can be negative) it is NaN.

    Returns (ratios, the base's key or None, the keys whose ratio is not defined)."""
    v = values.dropna().astype(float)
    positive = v[v > 0]
    base_key = positive.index[0] if len(positive) else None
    out = pd.Series(
        defined_ratio(v, v[base_key] if base_key is not None else np.nan), index=v.index
    )
    return out, base_key, [k for k in v.index if np.isnan(out[k])]


def _reference_labels(table: pd.DataFrame) -> list[str]:
    """The reference images in words (the kind alone in tables written before
    ``reference_label``)."""
    for col in ("reference_label", "reference_dataset"):
        if col in table:
            return [str(v) for v in dict.fromkeys(table[col].dropna())]
    return []


def figure(table: pd.DataFrame):
    fig, (a1, a2) = subplots(1, 2, figsize=(11, 4.4))
    keys = list(dict.fromkeys(table.backbone_key))
    variants = list(dict.fromkeys(table.resize_variant))
    width = 0.8 / max(len(variants), 1)
    for j, v in enumerate(variants):
        sub = table[table.resize_variant == v].set_index("backbone_key")
        xs = [i + (j - (len(variants) - 1) / 2) * width for i in range(len(keys))]
        a1.bar(xs, [sub.fid.get(k, np.nan) for k in keys], width, label=v)
    a1.set_xticks(range(len(keys)), keys, fontsize=8)
    only = "" if len(variants) > 1 else f" ({variants[0]} resize)" if variants else ""
    a1.set_ylabel(f"FID{only} (lower = closer to the reference)")
    a1.set_xlabel("backbone")
    legend(a1, fontsize=7, title="resize", title_fontsize=7)
    nat = table[table.resize_variant == "native"].set_index("backbone_key")
    # each metric over the backbones that have it (no IS point for a features-only one),
    # relative to its value under the first backbone where it is positive; markers only: the
    # backbones are categories, not points on a scale
    undefined = []
    present = [m for m in RATIO_METRICS if m in nat and nat[m].notna().any()]
    step = 0.8 / max(len(present), 1)
    for j, m in enumerate(present):
        r, base, bad = ratios(nat[m])
        if bad:
            undefined.append(f"{m} for {', '.join(map(str, bad))}")
        xs = [list(nat.index).index(k) + (j - (len(present) - 1) / 2) * step for k in r.index]
        if r.isna().all():  # nothing to draw: the note says why
            continue
        shown = m if base == nat.index[0] else f"{m} (/ {base})"
        a2.plot(xs, r.to_numpy(), "o", ls="none", label=shown)
    a2.axhline(1, color="0.6", lw=0.8)
    a2.set_xticks(range(len(nat)), nat.index, fontsize=8)
    a2.set_ylabel(f"metric / its value under {nat.index[0]} (native resize)")
    a2.set_xlabel("backbone")
    legend(a2, fontsize=7)
    if undefined:  # said on the figure, not plotted as a number
        note_below(
            a2,
            "ratio not defined (a value or its base not positive), not shown: "
            + "; ".join(undefined),
        )
    samples = ", ".join(dataset_labels(table))
    refs = _reference_labels(table)
    suptitle(
        fig,
        "FID, KID and IS under each backbone and resize"
        + (f": samples {samples}" if samples else "")
        + (f" vs reference {', '.join(refs)}" if refs else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"fid_sensitivity": figure(pd.read_csv(f"{run_dir}/table.csv"))}
