"""Experiment ``weights_sensitivity`` (paper Table 1): one image set, several Inception networks.

Default: tf2015, torchvision, keras (+ tfhub as an extra row) on CIFAR-10 train and ImageNet
val, 10 contiguous splits of 5,000, as-loaded order.  Logits come from the cache, so re-running
with other split/order settings costs seconds.  Offline without weights it stops before any
computation, naming every missing file.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from harness import config, inputs
from harness import settings as S
from harness.pipeline import outputs
from harness.plotting import dataset_labels, legend, subplots, suptitle
from harness.rows import provenance_columns, score_row
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Paper Table 1: the same images through tf2015, torchvision, Keras (+ TF-Hub) give "
    "different IS.",
    S.Schema(
        [
            S.NodeMap(
                "backbones",
                "backbone",
                {
                    "tf2015": "tf2015",
                    "torchvision": "torchvision",
                    "keras": "keras",
                    "tfhub": "tfhub",
                },
            ),
            S.NodeMap(
                "datasets",
                "dataset",
                {"cifar10_train": "cifar10", "imagenet_val": "imagenet_val"},
            ),
            config.weights_override(
                "overrides every backbone's weights (e.g. random:0: a labelled smoke run)"
            ),
            S.Setting(
                "only_backbone",
                S.Str(),
                None,
                "one key of backbones (a multirun job per backbone: only_backbone=tf2015,keras -m)",
                nullable=True,
            ),
            S.Setting("only_dataset", S.Str(), None, "one key of datasets", nullable=True),
        ],
        checks=[
            config.key_of("only_backbone", "backbones"),
            config.key_of("only_dataset", "datasets"),
        ],
    ),
    uses_splits=True,
    notes="n_splits: 10 contiguous splits of 5,000 (the paper's setting)",
    # only_dataset=<key>: the job reads that one dataset
    sources=lambda v: [f"datasets.{v['only_dataset']}" if v.get("only_dataset") else "datasets"],
)

# paper Table 1, keyed by the paper's network label: (IS mean, std); top-1 on ImageNet val
PAPER_IS = {
    ("IV2 TF", "cifar10_train"): (11.237, 0.11),
    ("IV3 Torch", "cifar10_train"): (9.737, 0.148),
    ("IV3 Keras", "cifar10_train"): (10.852, 0.181),
    ("IV2 TF", "imagenet_val"): (63.028, 8.311),
    ("IV3 Torch", "imagenet_val"): (63.702, 7.869),
    ("IV3 Keras", "imagenet_val"): (65.938, 8.616),
}
PAPER_TOP1 = {"IV2 TF": 0.756, "IV3 Torch": 0.772, "IV3 Keras": 0.777}
NOT_IN_PAPER = "(not in paper)"
# paper's headline: Keras vs Torch differ by 11.5% on CIFAR-10 and 3.5% on ImageNet
PAPER_PAIR_PCT = {
    ("IV3 Keras", "IV3 Torch", "cifar10_train"): 11.45,
    ("IV3 Keras", "IV3 Torch", "imagenet_val"): 3.51,
}


def compute(cfg) -> Result:
    # one job per backbone x dataset in a multirun: only_backbone=a,b only_dataset=x,y -m
    cfg = inputs.restrict(
        cfg, {"backbones": cfg.get("only_backbone"), "datasets": cfg.get("only_dataset")}
    )
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("datasets",))
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits)
    rows = []
    for (bkey, net), (dkey, src) in itertools.product(got.nets.items(), got.sources.items()):
        out = outputs(cfg, net, src, label=f"{bkey} on {dkey}")
        label = net.paper_column
        pkey = src.paper_dataset()  # paper numbers only beside the paper's own datasets
        row = {
            "backbone_key": bkey,
            "paper_label": label or NOT_IN_PAPER,
            "dataset_key": dkey,
            "paper_dataset": pkey,
        }
        row.update(score_row(out.probs, spec))
        paper = PAPER_IS.get((label, pkey)) if pkey and len(src) == 50_000 else None
        row["paper_is_mean"], row["paper_is_std"] = paper if paper else (None, None)
        row["diff_to_paper_pct"] = (row["is_mean"] / paper[0] - 1) * 100 if paper else None
        is_imagenet = pkey == "imagenet_val"
        row["top1"] = top1(net, out.logits, src)
        row["paper_top1"] = PAPER_TOP1.get(label) if is_imagenet else None
        row["logits_from_cache"] = out.from_cache
        row.update(provenance_columns(net, src, spec, cfg.seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    cols = list(table.columns)
    cols.insert(0, cols.pop(cols.index("backbone")))  # the network first, as before
    # what was loaded beside the config key it was loaded under (a folder may sit under any key)
    cols.insert(cols.index("dataset_key") + 1, cols.pop(cols.index("dataset_label")))
    table = table[cols]
    return Result({"table": table, "pairwise": pairwise(table)}, got.random_weights)


def top1(net, logits, src) -> float | None:
    """Top-1 accuracy where the images' labels are in the network's label space: a source that
    declares its ``label_space`` (e.g. digits) is compared through the backbone contract; the
    paper's ImageNet val (its labels are ImageNet's classes) as before; otherwise None."""
    space = getattr(src, "label_space", None)
    if space is not None:
        return net.top1_accuracy(logits, src.labels, space)
    if src.paper_dataset() == "imagenet_val":
        return net.top1_accuracy(logits, src.labels)
    return None


def _paper_networks(table: pd.DataFrame) -> bool:
    """Whether any row's network is one of the paper's (else: an analogue of Table 1)."""
    return bool((table.paper_label != NOT_IN_PAPER).any())


def _table1_tag(table: pd.DataFrame) -> str:
    """Whether a table is the paper's Table 1 (its networks on its images) or an analogue."""
    paper_images = "paper_dataset" in table and table.paper_dataset.notna().any()
    if _paper_networks(table) and paper_images:
        return "(paper Table 1)"
    if _paper_networks(table):
        return "(the paper's networks on other images: an analogue of paper Table 1)"
    return "(not the paper's networks: an analogue of paper Table 1, not the paper's numbers)"


def pairwise(table: pd.DataFrame) -> pd.DataFrame:
    """% IS difference of every pair of networks per dataset (the paper's orientation)."""
    pairs = []
    for dkey in dict.fromkeys(table.dataset_key):
        sub = table[table.dataset_key == dkey].set_index("backbone_key")
        pkey = sub.paper_dataset.iloc[0] if sub.paper_is_mean.notna().any() else None
        for x, y in itertools.combinations(sub.index, 2):
            lx, ly = sub.loc[x, "paper_label"], sub.loc[y, "paper_label"]
            a, b = (y, x) if (ly, lx, "cifar10_train") in PAPER_PAIR_PCT else (x, y)
            la, lb = sub.loc[a, "paper_label"], sub.loc[b, "paper_label"]
            pairs.append(
                {
                    "dataset_key": dkey,
                    "backbone_a": a,
                    "backbone_b": b,
                    "is_a": sub.loc[a, "is_mean"],
                    "is_b": sub.loc[b, "is_mean"],
                    "diff_pct": (sub.loc[a, "is_mean"] / sub.loc[b, "is_mean"] - 1) * 100,
                    "paper_diff_pct": PAPER_PAIR_PCT.get((la, lb, pkey)),
                }
            )
    return pd.DataFrame(
        pairs,
        columns=[
            "dataset_key",
            "backbone_a",
            "backbone_b",
            "is_a",
            "is_b",
            "diff_pct",
            "paper_diff_pct",
        ],
    )


def collect(table: pd.DataFrame) -> dict:
    """Summary tables from rows gathered by ``collect`` (one job per backbone x dataset)."""
    return {"pairwise": pairwise(table)}


def collect_figures(tables: dict) -> dict:
    return {"weights_sensitivity": figure(tables["table"])}


def present(result: Result, run) -> None:
    table = result.table
    paper_nets = _paper_networks(table)
    run.table(
        table,
        title="Inception Score of the same images under different networks "
        f"{_table1_tag(table)}; images: {', '.join(dataset_labels(table))}",
        notes=[
            "diff_to_paper_pct = (ours / paper - 1) x 100.  Paper order of images and "
            "resize are not known; ImageNet val in class-sorted order matches the "
            "paper's ~63 ± 8 (see the ordering experiment)."
            if paper_nets
            else "None of these networks is in the paper: no paper values beside them.",
            "top1: where the images' labels are in the network's label space.",
            "dataset_label: the images actually loaded; dataset_key: the config key "
            "(datasets.<key>) they were loaded under.",
        ],
        print_columns=[
            "backbone_key",
            "dataset_label",
            "is_mean",
            "is_std",
            "sg_nats",
            "h_y_given_x_bits",
            "paper_is_mean",
            "diff_to_paper_pct",
            "top1",
        ],
    )
    run.table(
        result.tables["pairwise"],
        name="pairwise",
        title="Pairwise IS differences between backbones, % of backbone_b",
        print_columns=["dataset_key", "backbone_a", "backbone_b", "diff_pct", "paper_diff_pct"],
    )
    run.figure(figure(table), "weights_sensitivity")


def headline(result: Result) -> str:
    """Per dataset: each network's IS and the spread (max / min - 1) across networks."""
    t = result.table
    parts = []
    for dkey in dict.fromkeys(t.dataset_key):
        sub = t[t.dataset_key == dkey]
        vals = ", ".join(f"{b} {v:.4g}" for b, v in zip(sub.backbone_key, sub.is_mean))
        spread = (sub.is_mean.max() / sub.is_mean.min() - 1) * 100
        what = ", ".join(dataset_labels(sub)) or dkey
        parts.append(f"{what}: {vals}" + (f" (spread {spread:.1f}%)" if len(sub) > 1 else ""))
    return "; ".join(parts)


def figure(table: pd.DataFrame):
    """One panel per image set, titled by the images actually loaded (not the config key); a
    bar per network, the paper's value beside it where there is one."""
    dkeys = list(dict.fromkeys(table.dataset_key))
    fig, axes = subplots(1, len(dkeys), figsize=(5 * len(dkeys), 4.2), squeeze=False)
    for ax, dkey in zip(axes[0], dkeys):
        sub = table[table.dataset_key == dkey]
        x = np.arange(len(sub))
        ax.bar(x, sub.is_mean, yerr=sub.is_std, capsize=4, color="tab:blue", label="measured")
        m = sub.paper_is_mean.notna()
        if m.any():
            ax.errorbar(
                x[m.values],
                sub.paper_is_mean[m],
                yerr=sub.paper_is_std[m],
                fmt="kx",
                ms=9,
                capsize=3,
                label="paper",
            )
        ax.set_xticks(
            x, [f"{b}\n{p}" for b, p in zip(sub.backbone_key, sub.paper_label)], fontsize=8
        )
        ax.set_title(", ".join(dataset_labels(sub)) or dkey, fontsize=10)
        ax.set_xlabel("network (key, paper label)")
        ax.set_ylabel("Inception Score (mean ± std over splits)")
        legend(ax, fontsize=8)
    suptitle(
        fig,
        f"Inception Score of the same images under each network {_table1_tag(table)}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"table1_weights_sensitivity": figure(pd.read_csv(f"{run_dir}/table.csv"))}


def paper_tables(run_dir) -> dict:
    """Table 1 beside the paper: IS (mean ± std) and top-1 per network and dataset, and the
    paper's headline differences; ``run_dir=None`` gives the paper's numbers alone."""
    t = pd.read_csv(f"{run_dir}/table.csv") if run_dir else pd.DataFrame()
    rows = []
    for (label, pkey), (mean, std) in PAPER_IS.items():
        m = t[(t.paper_label == label) & (t.paper_dataset == pkey)] if len(t) else t
        r = m.iloc[0] if len(m) else None
        rows.append(
            {
                "network": label,
                "dataset": pkey,
                "is_measured": None if r is None else f"{r.is_mean:.3f} ± {r.is_std:.3f}",
                "is_paper": f"{mean:.3f} ± {std:.3f}",
                "top1_measured": None if r is None or pd.isna(r.get("top1")) else round(r.top1, 3),
                "top1_paper": PAPER_TOP1.get(label) if pkey == "imagenet_val" else None,
            }
        )
    pairs = []
    pw = pd.read_csv(f"{run_dir}/pairwise.csv") if run_dir else pd.DataFrame()
    for (a, b, pkey), pct in PAPER_PAIR_PCT.items():
        got = None
        if len(t) and len(pw):
            key = {lab: k for k, lab in zip(t.backbone_key, t.paper_label)}
            ka, kb = key.get(a), key.get(b)
            dk = t[t.paper_dataset == pkey].dataset_key
            m = pw[(pw.backbone_a == ka) & (pw.backbone_b == kb) & pw.dataset_key.isin(dk)]
            got = round(float(m.diff_pct.iloc[0]), 2) if len(m) else None
        pairs.append(
            {
                "pair": f"{a} vs {b}",
                "dataset": pkey,
                "diff_pct_measured": got,
                "diff_pct_paper": pct,
            }
        )
    return {"table1_is_per_network": pd.DataFrame(rows), "table1_differences": pd.DataFrame(pairs)}
