"""Experiment ``compare_protocols``: one image set under every peer's conventions.

Users compare their IS with numbers other tools produced.  For each preset in ``protocols``
(``conf/protocol/*.yaml``: the original OpenAI code, torch-fidelity, torchmetrics, sbarratt's
code, TF-GAN) this computes the IS exactly as that tool would (its network, resize, bias, class
count, split assignment, shuffle and ddof) on the same images, plus S(G), which has no split
convention (it still depends on the network).  The spread is max/min - 1 over the presets.
"""

from __future__ import annotations

import pandas as pd

from harness import config, inputs, protocols, scores
from harness import settings as S
from harness.pipeline import outputs
from harness.plotting import dataset_labels, subplots
from harness.rows import provenance_columns
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Your images' IS under every peer's convention at once (openai, torch-fidelity, "
    "torchmetrics, sbarratt, TF-GAN).",
    S.Schema(
        [
            S.Node("dataset", "dataset", "folder"),
            S.NodeMap(
                "protocols",
                "protocol",
                {
                    "openai": "openai",
                    "torch_fidelity": "torch_fidelity",
                    "torchmetrics": "torchmetrics",
                    "sbarratt": "sbarratt",
                    "tfgan": "tfgan",
                },
            ),
            config.weights_override(
                "overrides every protocol's weights (random:<seed> to try it out; labelled)"
            ),
        ]
    ),
)


def compute(cfg) -> Result:
    presets = {key: protocols.from_node(node) for key, node in cfg.protocols.items()}
    # every preset's network and the images through the one input path (all missing at once)
    got = inputs.load_inputs(_as_inputs(cfg, presets), nets=("backbones",), sources=("dataset",))
    src = got.source()
    got.require_splits(max(p.splits.n_splits for p in presets.values()))
    rows = []
    for key, p in presets.items():
        net = got.nets[key]
        out = outputs(cfg, net, src, label=f"protocol {key}")
        prep = scores.prepare(out.probs)
        r = scores.inception_score(prep, splits=p.splits)
        sg = scores.improved_score(prep)
        rows.append(
            {
                "protocol": key,
                "mirrors": p.mirrors,
                "is_mean": r.mean,
                "is_std": r.std,
                "n_splits_used": r.n_splits,
                "split_sizes": " ".join(map(str, sorted(set(r.split_sizes)))),
                "sg_nats": sg.nats,
                "sg_bits": sg.bits,
                **provenance_columns(net, src, p.splits, cfg.seed),
            }
        )
    table = pd.DataFrame(rows)
    lo, hi = table.is_mean.min(), table.is_mean.max()
    table["diff_vs_min_pct"] = (table.is_mean / lo - 1) * 100
    summary = pd.DataFrame(
        [
            {
                "is_min": lo,
                "is_max": hi,
                "spread_pct": (hi / lo - 1) * 100,
                "n_samples": len(src),
                "dataset_fingerprint": src.fingerprint(),
            }
        ]
    )
    return Result({"table": table, "summary": summary}, got.random_weights)


def _as_inputs(cfg, presets: dict):
    """The run's config with one backbone per preset, for :func:`harness.inputs.load_inputs`."""
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "backbones": {k: p.backbone for k, p in presets.items()},
            "dataset": OmegaConf.to_container(cfg.dataset, resolve=True),
            "weights": cfg.get("weights"),
            "cache": OmegaConf.to_container(cfg.cache, resolve=True),
        }
    )


def present(result: Result, run) -> None:
    s = result.tables["summary"].iloc[0]
    run.table(
        result.table,
        title="The same images under each tool's IS convention "
        f"({', '.join(dataset_labels(result.table))})",
        notes=[
            f"Spread over the presets: {s.spread_pct:.2f}% (max / min - 1). S(G) has no "
            "split convention; it differs between presets only through the network."
        ],
        print_columns=[
            "protocol",
            "is_mean",
            "is_std",
            "n_splits_used",
            "split_assignment",
            "std_ddof",
            "sg_nats",
            "diff_vs_min_pct",
        ],
    )
    run.table(
        result.tables["summary"], name="summary", title="Spread across conventions", quiet=True
    )
    run.figure(figure(result.table), "compare_protocols")


def headline(result: Result) -> str:
    s = result.tables["summary"].iloc[0]
    return f"IS {s.is_min:.4g} .. {s.is_max:.4g} across protocols ({s.spread_pct:.2f}%)"


def figure(table: pd.DataFrame):
    fig, ax = subplots(figsize=(7, 3.6))
    x = range(len(table))
    ax.errorbar(list(x), table.is_mean, yerr=table.is_std, fmt="o", capsize=4)
    for i, (v, d) in enumerate(zip(table.is_mean, table.diff_vs_min_pct)):
        ax.annotate(
            f"{v:.3f} (+{d:.2f}%)", (i, v), textcoords="offset points", xytext=(6, 4), fontsize=7
        )
    ax.set_xticks(list(x), table.protocol, fontsize=8)
    ax.set_ylabel("Inception Score (mean ± std over splits)")
    ax.set_xlabel("protocol (tool whose conventions are reproduced)")
    images = ", ".join(dataset_labels(table)) or "the same images"
    ax.set_title(
        f"{images} under each tool's IS convention (axis not from 0: the spread is annotated)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
