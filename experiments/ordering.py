"""Experiment ``ordering``: how much of a published IS the order of the samples alone explains.

Splits are contiguous slices.  Class-sorted data (ImageNet val as an ImageFolder yields it) puts
~100 classes in each 5,000-image split, which lowers IS and inflates its std; shuffling first
(seeded) gives each split all classes.  Same cached logits, only the split assignment changes.
A source with an ``arrangement`` (``digits``, ``synthetic``: ``class_sorted`` or the order they
are loaded in) records it in every row (``arrangement``) and in the headline.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from harness import config, inputs, scores
from harness import settings as S
from harness.pipeline import outputs
from harness.plotting import inputs_title, integer_ticks, legend, subplots, suptitle
from harness.rows import dataset_label, provenance_columns
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Order alone: IS with contiguous splits as loaded (class-sorted) vs shuffled with several "
    "seeds.",
    S.Schema(
        [
            S.NodeMap("backbones", "backbone", {"torchvision": "torchvision"}),
            S.NodeMap("datasets", "dataset", {"imagenet_val": "imagenet_val"}),
            config.weights_override(),
            S.Setting(
                "shuffle_seeds",
                S.ListOf(S.Seed(), unique=True),
                list(range(10)),
                "one shuffled IS per seed",
            ),
        ]
    ),
    uses_splits=True,
)


def compute(cfg) -> Result:
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("datasets",))
    ((bname, net),) = got.nets.items()
    ((_, src),) = got.sources.items()
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits)  # before any pass: a count above N, an encoder
    prep = scores.prepare(outputs(cfg, net, src).probs)
    pred = prep.probs.argmax(1)
    seeds = [None] + [int(s) for s in cfg.shuffle_seeds]
    specs = [_order_spec(spec, seed) for seed in seeds]
    rows, per_split = [], []
    for seed, sp in zip(seeds, specs):
        row, split_rows = _order_rows(prep, pred, sp, seed)
        rows.append(row)
        if seed is None or seed == seeds[1]:  # as loaded and the first shuffle
            per_split.extend(split_rows)
    table = pd.DataFrame(rows)
    table["diff_vs_as_loaded_pct"] = (table.is_mean / table.is_mean.iloc[0] - 1) * 100
    summary = _order_summary(table, pred)
    arrangement = _add_provenance((table, summary), net, src, spec, cfg.seed)
    for key in ("split_assignment", "split_shuffle", "split_seed"):
        table[key] = [sp.provenance()[key] for sp in specs]
    return Result(
        {"table": table, "summary": summary, "per_split": pd.DataFrame(per_split)},
        got.random_weights,
        objects={
            "k": spec.n_splits,
            "what": f"{bname} on {dataset_label(src)}"
            + (f", {arrangement}" if arrangement else ""),
        },
    )


def _order_spec(spec, seed: int | None):
    """The split assignment as loaded (``seed=None``) or shuffled with ``seed`` (the configured
    shuffle, ``numpy_rng`` when that is ``none``)."""
    if seed is None:
        return dataclasses.replace(spec, shuffle="none", seed=None)
    shuffle = "numpy_rng" if spec.shuffle == "none" else spec.shuffle
    return dataclasses.replace(spec, shuffle=shuffle, seed=seed)


def _order_rows(prep, pred: np.ndarray, sp, seed: int | None) -> tuple[dict, list[dict]]:
    """IS under one split order: its table row, and one row per split (IS, distinct classes)."""
    r = scores.inception_score(prep, splits=sp)
    perm = sp.permutation(prep.n)
    perm = np.arange(prep.n) if perm is None else perm
    distinct = [len(np.unique(pred[perm[a:b]])) for a, b in sp.bounds(prep.n)]
    order = "as_loaded" if seed is None else f"shuffled(seed={seed})"
    row = {
        "split_order": order,
        "is_mean": r.mean,
        "is_std": r.std,
        "mean_distinct_predicted_classes_per_split": float(np.mean(distinct)),
    }
    split_rows = [
        {"split_order": order, "split": i, "is_split": sc, "distinct_classes": d}
        for i, (sc, d) in enumerate(zip(r.split_scores, distinct))
    ]
    return row, split_rows


def _order_summary(table: pd.DataFrame, pred: np.ndarray) -> pd.DataFrame:
    """One row: IS as loaded against the shuffled IS over seeds (the order effect)."""
    base = table.is_mean.iloc[0]
    shuffled = table.iloc[1:]
    return pd.DataFrame(
        [
            {
                "as_loaded_is": base,
                "as_loaded_std": table.is_std.iloc[0],
                "shuffled_is_mean_over_seeds": shuffled.is_mean.mean(),
                "shuffled_is_sd_over_seeds": shuffled.is_mean.std(ddof=1)
                if len(shuffled) > 1
                else 0.0,
                "shuffled_std_mean": shuffled.is_std.mean(),
                "order_effect_pct": (shuffled.is_mean.mean() / base - 1) * 100,
                "run_length_of_predicted_classes": scores.mean_run_length(pred),
            }
        ]
    )


def _add_provenance(tables, net, src, spec, seed) -> str | None:
    """Add the provenance columns to every table; return the source's arrangement (what "as
    loaded" is for it), or None."""
    prov = provenance_columns(net, src, spec, seed)
    arrangement = getattr(src, "arrangement", None)
    if arrangement is not None:
        prov["arrangement"] = arrangement
    for t in tables:
        for kk, v in prov.items():
            t[kk] = v
    return arrangement


def present(result: Result, run) -> None:
    o = result.objects
    run.table(
        result.table,
        title=f"IS ({o['k']} splits) as loaded vs shuffled ({o['what']})",
        print_columns=[
            "split_order",
            "is_mean",
            "is_std",
            "diff_vs_as_loaded_pct",
            "mean_distinct_predicted_classes_per_split",
        ],
    )
    run.table(
        result.tables["summary"],
        name="summary",
        title="How much order alone moves the number",
        print_columns=[
            "as_loaded_is",
            "shuffled_is_mean_over_seeds",
            "order_effect_pct",
            "run_length_of_predicted_classes",
        ],
    )
    run.table(
        result.tables["per_split"],
        name="per_split",
        title="Per-split IS and class coverage",
        quiet=True,
    )
    run.figure(figure(result.tables["per_split"], result.table), "ordering")


def headline(result: Result) -> str:
    s = result.tables["summary"].iloc[0]
    arrangement = s.get("arrangement")
    loaded = f"as loaded ({arrangement})" if isinstance(arrangement, str) else "as loaded"
    return (
        f"{loaded} {s.as_loaded_is:.4g} ± {s.as_loaded_std:.3g}, shuffled "
        f"{s.shuffled_is_mean_over_seeds:.4g} ({s.order_effect_pct:+.1f}%)"
    )


def figure(per_split: pd.DataFrame, table: pd.DataFrame):
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 3.8))
    for order, sub in per_split.groupby("split_order", sort=False):
        ax.plot(sub.split, sub.is_split, "o-", label=order)
    ax.set_xlabel("split")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("IS of the split")
    legend(ax, fontsize=8)
    ax2.bar(range(len(table)), table.is_mean, yerr=table.is_std, capsize=3)
    ax2.set_xticks(range(len(table)), table.split_order, rotation=45, ha="right", fontsize=7)
    ax2.set_xlabel("split order")
    ax2.set_ylabel("IS (mean ± std over splits)")
    arrangement = table.arrangement.iloc[0] if "arrangement" in table else None
    suptitle(
        fig,
        inputs_title(table, "IS as loaded vs shuffled")
        + (f" ({arrangement})" if isinstance(arrangement, str) else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {
        "ordering": figure(
            pd.read_csv(f"{run_dir}/per_split.csv"), pd.read_csv(f"{run_dir}/table.csv")
        )
    }
