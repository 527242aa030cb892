"""Experiment ``weights_sensitivity`` (paper Table 1): one image set, several Inception networks.

Default: tf2015, torchvision, keras (+ tfhub as an extra row) on CIFAR-10 train and ImageNet
val, 10 contiguous splits of 5,000, as-loaded order.  Logits come from the cache, so re-running
with other split/order settings costs seconds.  Offline without weights it stops before any
computation, naming every missing file.
"""

from __future__ import annotations

import itertools

import pandas as pd

from harness.pipeline import outputs, paper_dataset, preflight, top1_accuracy
from harness.rows import any_random, provenance_columns, score_row
from harness.runner import Run

# paper Table 1: (IS mean, std); top-1 accuracies on ImageNet val
PAPER_IS = {
    ("tf2015", "cifar10_train"): (11.237, 0.11), ("torchvision", "cifar10_train"): (9.737, 0.148),
    ("keras", "cifar10_train"): (10.852, 0.181),
    ("tf2015", "imagenet_val"): (63.028, 8.311), ("torchvision", "imagenet_val"): (63.702, 7.869),
    ("keras", "imagenet_val"): (65.938, 8.616),
}
PAPER_TOP1 = {"tf2015": 0.756, "torchvision": 0.772, "keras": 0.777}
PAPER_LABEL = {"tf2015": "IV2 TF", "torchvision": "IV3 Torch", "keras": "IV3 Keras", "tfhub": "(not in paper)"}
# paper's headline: Keras vs Torch differ by 11.5% on CIFAR-10 and 3.5% on ImageNet
PAPER_PAIR_PCT = {("keras", "torchvision", "cifar10_train"): 11.45, ("keras", "torchvision", "imagenet_val"): 3.51}


def compute(cfg):
    nets, sources = preflight(cfg)
    n_splits, ddof, order = int(cfg.n_splits), int(cfg.ddof), cfg.get("order")
    rows = []
    for (bname, net), (dkey, src) in itertools.product(nets.items(), sources.items()):
        out = outputs(cfg, net, src)
        row = {"backbone": bname, "paper_label": PAPER_LABEL.get(bname, ""), "dataset_key": dkey,
               "paper_dataset": paper_dataset(src)}
        row.update(score_row(out.probs, min(n_splits, len(src)), order, ddof))
        pkey = paper_dataset(src)  # paper numbers only beside the paper's own datasets
        paper = PAPER_IS.get((bname, pkey)) if pkey and len(src) == 50_000 else None
        row["paper_is_mean"], row["paper_is_std"] = paper if paper else (None, None)
        row["diff_to_paper_pct"] = (row["is_mean"] / paper[0] - 1) * 100 if paper else None
        row["top1"] = top1_accuracy(net, out.logits, src.labels) if src.kind == "imagenet_val" else None
        row["paper_top1"] = PAPER_TOP1.get(bname) if src.kind == "imagenet_val" else None
        row["logits_from_cache"] = out.from_cache
        row.update(provenance_columns(net, src, min(n_splits, len(src)), order, ddof, cfg.seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    pairs = []
    for dkey in sources:
        sub = table[table.dataset_key == dkey].set_index("backbone")
        pkey = sub.paper_dataset.iloc[0] if sub.paper_is_mean.notna().any() else None
        for x, y in itertools.combinations(sub.index, 2):
            a, b = (y, x) if (y, x, "cifar10_train") in PAPER_PAIR_PCT else (x, y)  # the paper's orientation
            pairs.append({"dataset_key": dkey, "backbone_a": a, "backbone_b": b,
                          "is_a": sub.loc[a, "is_mean"], "is_b": sub.loc[b, "is_mean"],
                          "diff_pct": (sub.loc[a, "is_mean"] / sub.loc[b, "is_mean"] - 1) * 100,
                          "paper_diff_pct": PAPER_PAIR_PCT.get((a, b, pkey))})
    return nets, table, pd.DataFrame(pairs)


def run(cfg, run_dir):
    nets, table, pairs = compute(cfg)
    run = Run("weights_sensitivity", cfg, run_dir, random_weights=any_random(nets))
    run.table(table, title="Inception Score of the same images under different Inception networks (paper Table 1)",
              notes=["diff_to_paper_pct = (ours / paper - 1) x 100.  Paper order of images and resize are not known;"
                     " ImageNet val in class-sorted order matches the paper's ~63 +- 8 (see the ordering experiment)."],
              print_columns=["backbone", "dataset_key", "is_mean", "is_std", "sg_nats", "h_y_given_x_bits",
                             "paper_is_mean", "diff_to_paper_pct", "top1"])
    run.table(pairs, name="pairwise", title="Pairwise IS differences between backbones, % of backbone_b",
              print_columns=["dataset_key", "backbone_a", "backbone_b", "diff_pct", "paper_diff_pct"])
    run.figure(figure(table), "weights_sensitivity")
    return run.finish()


def figure(table: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    dkeys = list(dict.fromkeys(table.dataset_key))
    fig, axes = plt.subplots(1, len(dkeys), figsize=(5 * len(dkeys), 3.8), squeeze=False)
    for ax, dkey in zip(axes[0], dkeys):
        sub = table[table.dataset_key == dkey]
        x = np.arange(len(sub))
        ax.bar(x, sub.is_mean, yerr=sub.is_std, capsize=4, color="tab:blue", label="this harness")
        m = sub.paper_is_mean.notna()
        if m.any():
            ax.errorbar(x[m.values], sub.paper_is_mean[m], yerr=sub.paper_is_std[m], fmt="kx", ms=9, capsize=3,
                        label="paper")
        ax.set_xticks(x, [f"{b}\n{p}" for b, p in zip(sub.backbone, sub.paper_label)], fontsize=8)
        ax.set_title(dkey, fontsize=10)
        ax.set_ylabel("Inception Score (mean +- std over splits)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"table1_weights_sensitivity": figure(pd.read_csv(f"{run_dir}/table.csv"))}
