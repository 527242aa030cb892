"""Experiment ``paper_figs``: every table and figure of Barratt & Sharma beside the paper's
values, from real runs only, reproducibly.

For each item (:data:`ITEMS`) the newest finished run of its experiment under ``output_root``
that *qualifies* is used: real (not random) weights and the paper's datasets and sizes
(:func:`qualifies`).  Without one, the item is drawn as a placeholder naming the command that
makes it; ``allow_smoke=true`` uses the newest smoke run instead, watermarked.  No logits are
recomputed: figures come from each experiment's ``paper_figures(run_dir)`` and tables from its
``paper_tables(run_dir)`` (measured values beside the paper's).  Outputs carry no timestamps, so
regenerating from the same runs leaves the bytes unchanged.  ``paper_figs/README.md`` gives, per
item, the exact command line of its source run (from provenance), the weights sha256 and the
run dir.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import results
from harness import settings as S
from harness.config import as_bool
from harness.runner import Result, read_marker

SETTINGS = S.ExperimentSettings(
    "Every table and figure of the paper beside the paper's values, from real runs only (no "
    "logits recomputed).",
    S.Schema(
        [
            S.Section(
                "paper_figs",
                S.Schema(
                    [
                        S.Setting("out_dir", S.Path(), "paper_figs", "where the figures go"),
                        S.Setting(
                            "allow_smoke",
                            S.Bool(),
                            False,
                            "true: draw items from random-weight/small runs (watermarked) "
                            "instead of placeholders",
                        ),
                    ]
                ),
            )
        ]
    ),
)

PAPER_N = 50_000


@dataclass(frozen=True)
class Item:
    experiment: str
    paper: str  # what it is in the paper
    command: str  # the run that qualifies
    needs: dict  # requirements checked by qualifies(): weights, datasets, n, source
    section: str = "paper"  # paper | additions


ITEMS = [
    Item(
        "weights_sensitivity",
        "Table 1: IS per network, CIFAR-10 train and ImageNet val",
        "python -m harness +experiment=weights_sensitivity",
        {"real_weights": True, "datasets": ["cifar10_train", "imagenet_val"], "n": PAPER_N},
    ),
    Item(
        "splits",
        "Table 2: IS against the number of splits",
        "python -m harness +experiment=splits source=network",
        {"real_weights": True, "datasets": ["cifar10_train"], "n": PAPER_N, "source": "network"},
    ),
    Item(
        "beyond_imagenet",
        "Table 3 and Section 4.2.1: top classes on CIFAR-10, H(y|x)",
        "python -m harness +experiment=beyond_imagenet",
        {"real_weights": True, "datasets": ["cifar10_train", "imagenet_val"], "n": PAPER_N},
    ),
    Item(
        "toy_gaussian",
        "Section 4.1.1: the 1-D two-Gaussian example",
        "python -m harness +experiment=toy_gaussian",
        {},
    ),
    Item(
        "adversarial",
        "Section 4.2.2: FGSM drives IS towards its maximum",
        "python -m harness +experiment=adversarial attack.n_images=50000 device=cuda",
        {"real_weights": True, "n_images": PAPER_N},
    ),
    Item(
        "memorization",
        "Section 4.2.3: IS rewards memorization",
        "python -m harness +experiment=memorization",
        {"real_weights": True, "datasets": ["cifar10_train"]},
    ),
    Item(
        "implementation_vs_weights",
        "implementation vs weights vs resize",
        "python -m harness +experiment=implementation_vs_weights",
        {"real_weights": True},
        "additions",
    ),
    Item(
        "fid_sensitivity",
        "FID/KID/PRDC across the frameworks' Inception V3",
        "python -m harness +experiment=fid_sensitivity",
        {"real_weights": True},
        "additions",
    ),
    Item(
        "metric_properties",
        "which generator failure each metric detects",
        "python -m harness +experiment=metric_properties",
        {"real_weights": True},
        "additions",
    ),
]
FIGURES = {i.experiment: (i.paper, i.command) for i in ITEMS}  # (kept for callers)


def finished_runs(root: Path) -> dict:
    """experiment -> [(run dir, provenance)] of finished runs, newest first."""
    runs: dict = {}
    for prov in root.rglob("provenance.json"):
        if read_marker(prov.parent) is not None:
            continue
        try:
            rec = json.loads(prov.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("experiment") in FIGURES:
            key = (rec.get("finished") or "", str(prov.parent))
            runs.setdefault(rec["experiment"], []).append((key, prov.parent, rec))
    return {
        e: [(d, r) for _, d, r in sorted(v, key=lambda t: t[0], reverse=True)]
        for e, v in runs.items()
    }


def _table(run_dir: Path) -> pd.DataFrame:
    p = Path(run_dir) / "table.csv"
    return pd.read_csv(p) if p.exists() else pd.DataFrame()


def is_smoke(rec: dict, table: pd.DataFrame) -> bool:
    if rec.get("weights_note"):
        return True
    w = table.get("weights")
    return w is not None and w.astype(str).str.startswith("random").any()


def qualifies(item: Item, run_dir: Path, rec: dict) -> str | None:
    """None if the run is a real, paper-sized run of ``item``; else why not (one phrase)."""
    t = _table(run_dir)
    needs = item.needs
    if needs.get("real_weights") and is_smoke(rec, t):
        return "random weights (a smoke run)"
    cfg = rec.get("config") or {}
    if "source" in needs and cfg.get("source") != needs["source"]:
        return f"source={cfg.get('source')} (the paper's item needs source={needs['source']})"
    for ds in needs.get("datasets", []):
        col = "paper_dataset" if "paper_dataset" in t else None
        if col is None or ds not in set(t[col].dropna().astype(str)):
            return f"no rows on the paper's {ds}"
        if "n" in needs and "n_samples" in t:
            n = t[t[col] == ds].n_samples.max()
            if n < needs["n"]:
                return f"{ds} with {int(n):,} samples (the paper used {needs['n']:,})"
    if "n_images" in needs and "n_samples" in t and t.n_samples.max() < needs["n_images"]:
        return f"{int(t.n_samples.max()):,} images (the paper used {needs['n_images']:,})"
    return None


def choose(item: Item, runs: list, allow_smoke: bool):
    """(run dir, provenance, kind, why) with kind real | smoke | none."""
    reasons = []
    for d, rec in runs:
        why = qualifies(item, d, rec)
        if why is None:
            return d, rec, "real", ""
        reasons.append(why)
    if allow_smoke and runs:
        d, rec = runs[0]
        return d, rec, "smoke", reasons[0]
    return None, None, "none", reasons[0] if reasons else "no finished run"


def placeholder_figure(item: Item, why: str):
    from harness.plotting import subplots

    fig, ax = subplots(figsize=(7, 2.6))
    ax.axis("off")
    ax.text(0.02, 0.85, item.paper, fontsize=10, weight="bold", va="top")
    ax.text(0.02, 0.6, f"No qualifying run ({why}).", fontsize=9, va="top")
    ax.text(0.02, 0.4, "Make it with:", fontsize=9, va="top")
    ax.text(0.02, 0.25, item.command, fontsize=9, family="monospace", va="top")
    return fig


def watermark(fig, text: str) -> None:
    fig.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        fontsize=22,
        color="crimson",
        alpha=0.25,
        rotation=20,
        weight="bold",
    )


def _argv(rec: dict, item: Item) -> str:
    """The source run's command line from provenance; for runs made inside another command
    (``paper``) or through the Python API, the item's command and where it ran."""
    argv = ((rec.get("host") or {}).get("argv")) or []
    if not argv or not any(k in str(argv[0]) for k in ("harness", "inception-note")):
        return f"{item.command} (run through the Python API; overrides in provenance.json)"
    words = [a for a in argv[1:] if not a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    cli = "python -m harness " + " ".join(words)
    if f"experiment={item.experiment}" in words or f"+experiment={item.experiment}" in words:
        return cli
    return f"{item.command} (run inside {cli})"


def _shown(p) -> str:
    """A run dir as the README shows it: relative to the working directory when inside it."""
    if p is None:
        return ""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _sha(run_dir: Path) -> str:
    t = _table(run_dir)
    if "weights_sha256" not in t:
        return "-"
    vals = sorted({str(v) for v in t.weights_sha256.dropna()})
    return ", ".join(v[:16] for v in vals) or "-"


def compute(cfg) -> Result:
    root = Path(cfg.output_root)
    runs = finished_runs(root) if root.exists() else {}
    allow = as_bool(cfg.paper_figs.allow_smoke, "paper_figs.allow_smoke")
    chosen = {i.experiment: choose(i, runs.get(i.experiment, []), allow) for i in ITEMS}
    rows = [
        {
            "experiment": i.experiment,
            "paper": i.paper,
            "source": chosen[i.experiment][2],
            "why_not_real": chosen[i.experiment][3],
            "source_run": str(chosen[i.experiment][0] or ""),
        }
        for i in ITEMS
    ]
    return Result(
        {"table": pd.DataFrame(rows)},
        objects={
            "chosen": chosen,
            "runs": runs,
            "out_dir": Path(cfg.paper_figs.out_dir),
            "root": root,
        },
    )


def present(result: Result, run) -> None:
    from harness.plotting import paper_style

    chosen, out_dir, runs = (result.objects[k] for k in ("chosen", "out_dir", "runs"))
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = {"paper": [], "additions": []}
    for item in ITEMS:
        rdir, rec, kind, why = chosen[item.experiment]
        mod = importlib.import_module(f"experiments.{item.experiment}")
        figs, tables = {}, {}
        if kind == "none":
            figs = {item.experiment: placeholder_figure(item, why)}
            if hasattr(mod, "paper_tables"):
                tables = mod.paper_tables(None)  # the paper's numbers, measured left empty
        else:
            with paper_style():
                figs = mod.paper_figures(rdir)
            tables = mod.paper_tables(rdir) if hasattr(mod, "paper_tables") else {}
            if kind == "smoke":
                for fig in figs.values():
                    watermark(fig, "SMOKE RUN - not a result")
        extra = getattr(mod, "paper_placeholders", None)
        if kind != "real" and extra is not None:  # e.g. the simulated splits beside Table 2
            figs.update(extra(runs.get(item.experiment, []), item.command))
        for name, fig in figs.items():
            results.save_figure(fig, out_dir, name)
        for name, df in tables.items():
            note = {
                "real": "",
                "smoke": " (SMOKE RUN: not a result)",
                "none": f" (no qualifying run: {item.command})",
            }[kind]
            results.atomic_write_text(
                out_dir / f"{name}.md", f"{item.paper}{note}\n\n" + results.to_markdown(df) + "\n"
            )
            results.atomic_write_text(
                out_dir / f"{name}.tex", results.to_latex(df, caption=item.paper + note) + "\n"
            )
        files = ", ".join(f"`{n}`" for n in [*figs, *tables])
        src = {
            "real": f"`{rdir}`",
            "smoke": f"`{rdir}` (smoke run: {why})",
            "none": f"none: {why}",
        }[kind]
        cmd = f"`{_argv(rec, item)}`" if rec else f"`{item.command}` (to make it)"
        sha = _sha(rdir) if rdir else "-"
        lines[item.section].append(f"| {item.paper} | {files} | {cmd} | {sha} | {src} |")
    head = [
        "| item | files (.png/.pdf, .md/.tex) | command of the source run | weights sha256 "
        "| source run |",
        "|---|---|---|---|---|",
    ]
    readme = [
        "# paper_figs/",
        "",
        "Every table and figure of Barratt & Sharma (2018) beside the paper's values, from real",
        "runs only: `python -m harness +experiment=paper_figs`. An item without a qualifying",
        "run (real weights, the paper's datasets and sizes) is a placeholder naming its command;",
        "`paper_figs.allow_smoke=true` draws smoke runs instead, watermarked. Regenerating from",
        "the same runs leaves these files byte-identical.",
        "",
        "## The paper",
        "",
        *head,
        *lines["paper"],
        "",
        "## The harness's additions",
        "",
        *head,
        *lines["additions"],
        "",
    ]
    results.atomic_write_text(out_dir / "README.md", "\n".join(readme))
    run.table(
        result.table,
        title=f"paper_figs regenerated into {out_dir}",
        print_columns=["experiment", "source", "why_not_real"],
    )
