"""Experiment ``ordering``: how much of a published IS the order of the samples alone explains.

Splits are contiguous slices.  Class-sorted data (ImageNet val as an ImageFolder yields it) puts
~100 classes in each 5,000-image split, which lowers IS and inflates its std; shuffling first
(seeded) gives each split all classes.  Same cached logits, only the split assignment changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import scores
from harness.pipeline import outputs, preflight
from harness.rows import any_random, provenance_columns
from harness.runner import Run


def run(cfg, run_dir):
    nets, sources = preflight(cfg)
    (bname, net), = nets.items()
    (dkey, src), = sources.items()
    out = outputs(cfg, net, src)
    prep = scores.prepare(out.probs)
    k, ddof = min(int(cfg.n_splits), prep.n), int(cfg.ddof)
    pred = prep.probs.argmax(1)
    rows, per_split = [], []
    for seed in [None] + [int(s) for s in cfg.shuffle_seeds]:
        r = scores.inception_score(prep, k, order=seed, ddof=ddof)
        perm = np.arange(prep.n) if seed is None else np.random.default_rng(seed).permutation(prep.n)
        distinct = [len(np.unique(pred[perm[i * prep.n // k:(i + 1) * prep.n // k]])) for i in range(k)]
        rows.append({"split_order": "as_loaded" if seed is None else f"shuffled(seed={seed})", "is_mean": r.mean,
                     "is_std": r.std, "mean_distinct_predicted_classes_per_split": float(np.mean(distinct))})
        if seed is None or seed == int(cfg.shuffle_seeds[0]):
            for i, (sc, d) in enumerate(zip(r.split_scores, distinct)):
                per_split.append({"split_order": rows[-1]["split_order"], "split": i, "is_split": sc,
                                  "distinct_classes": d})
    table = pd.DataFrame(rows)
    base = table.is_mean.iloc[0]
    table["diff_vs_as_loaded_pct"] = (table.is_mean / base - 1) * 100
    shuffled = table.iloc[1:]
    summary = pd.DataFrame([{
        "as_loaded_is": base, "as_loaded_std": table.is_std.iloc[0],
        "shuffled_is_mean_over_seeds": shuffled.is_mean.mean(), "shuffled_is_sd_over_seeds": shuffled.is_mean.std(ddof=1)
        if len(shuffled) > 1 else 0.0,
        "shuffled_std_mean": shuffled.is_std.mean(),
        "order_effect_pct": (shuffled.is_mean.mean() / base - 1) * 100,
        "run_length_of_predicted_classes": _mean_run_length(pred),
    }])
    prov = provenance_columns(net, src, k, None, ddof, cfg.seed)
    for t in (table, summary):
        for kk, v in prov.items():
            t[kk] = v
    table["split_assignment"] = ["contiguous" if o == "as_loaded" else f"contiguous after {o}" for o in table.split_order]
    run = Run("ordering", cfg, run_dir, random_weights=any_random(nets))
    run.table(table, title=f"IS ({k} contiguous splits) as loaded vs shuffled ({bname} on {dkey})",
              print_columns=["split_order", "is_mean", "is_std", "diff_vs_as_loaded_pct",
                             "mean_distinct_predicted_classes_per_split"])
    run.table(summary, name="summary", title="How much order alone moves the number",
              print_columns=["as_loaded_is", "shuffled_is_mean_over_seeds", "order_effect_pct",
                             "run_length_of_predicted_classes"])
    run.table(pd.DataFrame(per_split), name="per_split", title="Per-split IS and class coverage", quiet=True)
    run.figure(figure(pd.DataFrame(per_split), table), "ordering")
    return run.finish()


def _mean_run_length(pred: np.ndarray) -> float:
    """Mean length of runs of equal predicted class in loaded order (1 for well-mixed data)."""
    changes = np.count_nonzero(pred[1:] != pred[:-1])
    return len(pred) / (changes + 1)


def figure(per_split: pd.DataFrame, table: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for order, sub in per_split.groupby("split_order", sort=False):
        ax.plot(sub.split, sub.is_split, "o-", label=order)
    ax.set_xlabel("split")
    ax.set_ylabel("IS of the split")
    ax.legend(fontsize=8)
    ax2.bar(range(len(table)), table.is_mean, yerr=table.is_std, capsize=3)
    ax2.set_xticks(range(len(table)), table.split_order, rotation=45, ha="right", fontsize=7)
    ax2.set_ylabel("IS (mean +- std over splits)")
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"ordering": figure(pd.read_csv(f"{run_dir}/per_split.csv"), pd.read_csv(f"{run_dir}/table.csv"))}
