"""Experiment ``beyond_imagenet`` (paper 4.2.1, Table 3): IS outside ImageNet.

Mean conditional entropy H(y|x) per backbone on CIFAR-10 train, noise and ImageNet val (paper:
4.664, 6.512, 1.97 bits; maximum log2(1000) = 9.97), and the top-10 ImageNet classes of the
marginal p_hat(y) on CIFAR-10, which do not match CIFAR-10's ten classes.

Any classifier works (e.g. the digits CNN on digits, 8x8 noise and photo tiles): the paper's
values and its Table 3 names stand beside a network only when its classes are ImageNet's (its
``label_space``, :data:`PAPER_LABEL_SPACE`); the top classes are named by the network's own
``class_names``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness import config, imagenet, inputs, scores
from harness import settings as S
from harness.pipeline import outputs
from harness.plotting import dataset_labels, legend, subplots
from harness.rows import provenance_columns, score_row
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Paper 4.2.1 / Table 3: H(y|x) on CIFAR-10, noise and ImageNet; top-10 ImageNet classes on "
    "CIFAR-10.",
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
                {"cifar10_train": "cifar10", "noise": "noise", "imagenet_val": "imagenet_val"},
            ),
            config.weights_override(),
            S.Setting(
                "top_classes_dataset",
                S.Str(),
                "cifar10_train",
                "whose marginal's top classes to list (a key of datasets)",
            ),
            S.Setting("top_k", S.Int(lo=1), 10, "classes listed"),
        ],
        checks=[config.key_of("top_classes_dataset", "datasets")],
    ),
    uses_splits=True,
)

PAPER_H_BITS = {"cifar10_train": 4.664, "noise": 6.512, "imagenet_val": 1.97}  # by paper dataset
# the paper's Table 3 lists six of its top-10 classes on CIFAR-10 (the rest are not known)
PAPER_TOP_CIFAR = (
    "moving van",
    "sorrel",
    "container ship",
    "thresher",
    "hartebeest",
    "fox squirrel",
)
NOISE_ASSUMPTION = "noise: uniform uint8 pixels at 32x32 (an assumption; the paper does not say)"
#: the label space of the paper's networks: its H(y|x) values and Table 3 names are theirs
PAPER_LABEL_SPACE = "imagenet1000"


def noise_note(sources) -> str:
    """The noise assumption, at the sizes of the noise sources actually used."""
    sizes = sorted({s.size for s in sources if s.paper_dataset() == "noise" and hasattr(s, "size")})
    if not sizes:
        return NOISE_ASSUMPTION
    at = ", ".join(f"{v}x{v}" for v in sizes)
    return f"noise: uniform uint8 pixels at {at} (an assumption; the paper does not say)"


def compute(cfg) -> Result:
    got = inputs.load_inputs(cfg, nets=("backbones",), sources=("datasets",))
    spec = config.split_spec(cfg)
    got.require_splits(spec.n_splits)
    rows, tops = [], []
    for (bkey, net), (dkey, src) in itertools.product(got.nets.items(), got.sources.items()):
        out = outputs(cfg, net, src, label=f"{bkey} on {dkey}")
        r = {"backbone": bkey, "dataset_key": dkey}
        r.update(score_row(out.probs, spec))
        r["max_bits"] = math.log2(net.num_classes)
        pkey = src.paper_dataset()  # paper numbers only beside the paper's own datasets
        r["paper_dataset"] = pkey
        # ... and only for networks whose classes are the paper's (ImageNet's)
        paper_h = PAPER_H_BITS.get(pkey) if net.label_space == PAPER_LABEL_SPACE else None
        r["paper_h_y_given_x_bits"] = paper_h
        r["diff_to_paper_bits"] = r["h_y_given_x_bits"] - paper_h if paper_h else None
        r.update(provenance_columns(net, src, spec, cfg.seed))
        r["backbone_key"] = bkey
        rows.append(r)
        if dkey == cfg.top_classes_dataset:
            names = net.class_names
            imagenet_classes = net.label_space == PAPER_LABEL_SPACE
            top = scores.top_marginal_classes(out.probs, int(cfg.top_k))
            for rank, (idx, p) in enumerate(top, 1):
                nm = names[idx]
                tops.append(
                    {
                        "backbone": bkey,
                        "dataset_key": dkey,
                        "rank": rank,
                        "class_index": idx,
                        "class_name": nm,
                        "marginal_prob": p,
                        "in_paper_table3": any(pn in nm.lower() for pn in PAPER_TOP_CIFAR)
                        if imagenet_classes
                        else None,
                        "cifar10_classes": (
                            ", ".join(imagenet.CIFAR10_CLASSES)
                            if rank == 1 and imagenet_classes
                            else ""
                        ),
                        "label_space": net.label_space,
                        "weights": net.provenance()["weights"],
                        "dataset_fingerprint": src.fingerprint(),
                    }
                )
    tables = {"table": pd.DataFrame(rows)}
    if tops:
        tables["top_classes"] = pd.DataFrame(tops)
    return Result(
        tables,
        got.random_weights,
        objects={
            "top_k": cfg.top_k,
            "top_dataset": cfg.top_classes_dataset,
            "noise_note": noise_note(got.sources.values()),
            "imagenet_nets": any(n.label_space == PAPER_LABEL_SPACE for n in got.nets.values()),
        },
    )


def _label(table: pd.DataFrame, dkey) -> str:
    """The images loaded under ``datasets.<dkey>``, in words (the key when a table predates
    ``dataset_label``)."""
    return ", ".join(dataset_labels(table[table.dataset_key == dkey])) or str(dkey)


def present(result: Result, run) -> None:
    o = result.objects
    top_images = _label(result.table, o["top_dataset"])
    run.table(
        result.table,
        title="Conditional entropy H(y|x) beyond ImageNet (paper 4.2.1)",
        notes=[
            o.get("noise_note", NOISE_ASSUMPTION),
            "paper (Inception V3, 1000 ImageNet classes): CIFAR-10 4.664, noise 6.512, ImageNet "
            "val 1.97 bits (max 9.97); shown beside ImageNet classifiers only (max_bits: "
            "log2 of each network's classes).",
        ],
        print_columns=[
            "backbone_key",
            "dataset_label",
            "h_y_given_x_bits",
            "paper_h_y_given_x_bits",
            "h_y_bits",
            "is_mean",
        ],
    )
    if "top_classes" in result.tables:
        imagenet_nets = o.get("imagenet_nets", True)
        run.table(
            result.tables["top_classes"],
            name="top_classes",
            title=f"Top-{o['top_k']} ImageNet classes of p_hat(y) on {top_images} "
            "(paper Table 3: Moving Van, Sorrel, Container Ship, Threshing Machine, "
            "Hartebeest, Fox Squirrel, ...)"
            if imagenet_nets
            else f"Top-{o['top_k']} classes of p_hat(y) on {top_images} (each network's "
            "own classes; the analogue of paper Table 3)",
            print_columns=["backbone", "rank", "class_name", "marginal_prob"]
            + (["in_paper_table3"] if imagenet_nets else []),
        )
    run.figure(figure(result.table), "conditional_entropy")


def headline(result: Result) -> str:
    """H(y|x) in bits per dataset and network, with the maximum log2(classes)."""
    t = result.table
    parts = []
    for dkey in dict.fromkeys(t.dataset_key):
        sub = t[t.dataset_key == dkey]
        vals = ", ".join(f"{b} {v:.3g}" for b, v in zip(sub.backbone_key, sub.h_y_given_x_bits))
        parts.append(f"{_label(t, dkey)}: {vals}")
    maxes = "/".join(f"{m:.3g}" for m in dict.fromkeys(t.max_bits))
    return f"H(y|x) bits (max {maxes}): " + "; ".join(parts)


def figure(table: pd.DataFrame):
    dkeys = list(dict.fromkeys(table.dataset_key))
    # one bar per network key (two keys may run the same backbone, e.g. two seeds)
    col = "backbone_key" if "backbone_key" in table else "backbone"
    bnames = list(dict.fromkeys(table[col]))
    fig, ax = subplots(figsize=(7, 3.8))
    w = 0.8 / max(1, len(bnames))
    for i, b in enumerate(bnames):
        sub = table[table[col] == b].set_index("dataset_key").reindex(dkeys)
        ax.bar(np.arange(len(dkeys)) + i * w, sub.h_y_given_x_bits, width=w, label=b)
    paper = (
        table.drop_duplicates("dataset_key")
        .set_index("dataset_key")
        .paper_h_y_given_x_bits.reindex(dkeys)
    )
    if paper.notna().any():  # beside ImageNet classifiers on the paper's own image sets only
        ax.plot(
            np.arange(len(dkeys)) + 0.4 - w / 2,
            paper.to_numpy(dtype=float),
            "kx",
            ms=10,
            label="paper",
        )
    ax.axhline(table.max_bits.max(), color="gray", ls="--", lw=1, label="maximum log2 C")
    ax.set_xticks(
        np.arange(len(dkeys)) + 0.4 - w / 2,
        [_label(table, d).replace(" (", "\n(") for d in dkeys],
        fontsize=8,
    )
    ax.set_xlabel("images")
    ax.set_ylabel("mean H(y|x), bits")
    ax.set_title(f"Conditional entropy H(y|x) beyond ImageNet: {', '.join(bnames)}", fontsize=10)
    legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def paper_figures(run_dir):
    return {"table3_conditional_entropy": figure(pd.read_csv(f"{run_dir}/table.csv"))}


def paper_tables(run_dir) -> dict:
    """Section 4.2.1 (H(y|x) per dataset) and Table 3 (top classes on CIFAR-10) beside the
    paper."""
    t = pd.read_csv(f"{run_dir}/table.csv") if run_dir else pd.DataFrame()
    rows = []
    for pkey, bits in PAPER_H_BITS.items():
        m = t[t.paper_dataset == pkey] if len(t) else t
        rows.append(
            {
                "dataset": pkey,
                "h_y_given_x_bits_measured": "; ".join(
                    f"{b}: {v:.3f}" for b, v in zip(m.backbone, m.h_y_given_x_bits)
                )
                if len(m)
                else None,
                "h_y_given_x_bits_paper": bits,
            }
        )
    out = {"sec421_conditional_entropy": pd.DataFrame(rows)}
    top_path = Path(f"{run_dir}/top_classes.csv") if run_dir else None
    top = pd.read_csv(top_path) if top_path is not None and top_path.exists() else pd.DataFrame()
    names = top.class_name.tolist()[:10] if len(top) else []
    out["table3_top_classes_cifar10"] = pd.DataFrame(
        {
            "rank": range(1, 11),
            "class_measured": names + [None] * (10 - len(names)),
            "in_paper_table3": [
                any(p in str(n).lower() for p in PAPER_TOP_CIFAR) if n else None
                for n in names + [None] * (10 - len(names))
            ],
            "paper_table3_names": [", ".join(PAPER_TOP_CIFAR)] + [None] * 9,
        }
    )
    return out
