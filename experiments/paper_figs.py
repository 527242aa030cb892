"""Experiment ``paper_figs``: regenerate every figure of ``paper_figs/`` from the latest results.

No logits are recomputed: each experiment module's ``paper_figures(run_dir)`` redraws from the
CSV tables (and provenance) of the newest finished run of that experiment under
``output_root`` (including runs made inside a ``paper`` run).  ``paper_figs/README.md`` says
which run and command produced each figure and which part of the paper it corresponds to.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd

from harness import results
from harness.runner import Result, read_marker

FIGURES = {
    # experiment: (paper reference, command)
    "toy_gaussian": (
        "Section 4.1.1, the 1-D example",
        "python -m harness +experiment=toy_gaussian",
    ),
    "splits": (
        "Table 2 (and the sample-size bias)",
        "python -m harness +experiment=splits [source=simulated]",
    ),
    "weights_sensitivity": ("Table 1", "python -m harness +experiment=weights_sensitivity"),
    "beyond_imagenet": ("Section 4.2.1, Table 3", "python -m harness +experiment=beyond_imagenet"),
    "ordering": (
        "Section 4.1.2 (order of samples; not a paper figure)",
        "python -m harness +experiment=ordering",
    ),
    "memorization": ("Section 4.2.3", "python -m harness +experiment=memorization"),
    "adversarial": ("Section 4.2.2", "python -m harness +experiment=adversarial"),
    "implementation_vs_weights": (
        "beyond the paper: implementation vs weights",
        "python -m harness +experiment=implementation_vs_weights",
    ),
    "fid_sensitivity": (
        "beyond the paper: FID/KID/PRDC across the frameworks' Inception V3",
        "python -m harness +experiment=fid_sensitivity",
    ),
    "metric_properties": (
        "beyond the paper: which failure each metric detects",
        "python -m harness +experiment=metric_properties",
    ),
}


def latest_runs(root: Path) -> dict:
    """experiment -> newest run dir (by provenance.json mtime) that finished."""
    best: dict = {}
    for prov in root.rglob("provenance.json"):
        if read_marker(prov.parent) is not None:  # an unfinished run
            continue
        try:
            rec = json.loads(prov.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        exp = rec.get("experiment")
        if exp in FIGURES:
            t = prov.stat().st_mtime
            if exp not in best or t > best[exp][0]:
                best[exp] = (t, prov.parent, rec)
    return {k: (v[1], v[2]) for k, v in best.items()}


def compute(cfg) -> Result:
    root = Path(cfg.output_root)
    runs = latest_runs(root) if root.exists() else {}
    return Result({}, objects={"runs": runs, "out_dir": Path(cfg.paper_figs.out_dir), "root": root})


def present(result: Result, run) -> None:
    from harness.plotting import paper_style

    runs, out_dir, root = (result.objects[k] for k in ("runs", "out_dir", "root"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, lines = [], []
    for exp, (ref, cmd) in FIGURES.items():
        if exp not in runs:
            rows.append(
                {
                    "experiment": exp,
                    "status": "no results yet",
                    "figures": "",
                    "source_run": "",
                    "random_weights": None,
                }
            )
            continue
        rdir, rec = runs[exp]
        random_w = bool(rec.get("weights_note"))
        mod = importlib.import_module(f"experiments.{exp}")
        with paper_style():
            figs = mod.paper_figures(rdir)
        names = []
        for fname, fig in figs.items():
            results.save_figure(fig, out_dir, fname, random_weights=random_w)
            names.append(fname)
        rows.append(
            {
                "experiment": exp,
                "status": "regenerated",
                "figures": ", ".join(names),
                "source_run": str(rdir),
                "random_weights": random_w,
            }
        )
        for fname in names:
            lines.append(
                f"| `{fname}.png` / `.pdf` | {ref} | `{cmd}` | `{rdir}` | "
                f"{'yes (smoke run, not a result)' if random_w else 'no'} |"
            )
    table = pd.DataFrame(rows)
    readme = [
        "# paper_figs/",
        "",
        "Figures regenerated from the latest results by `python -m harness +experiment=paper_figs`",
        "(no logits are recomputed; each figure is redrawn from its run's CSV tables). Figures "
        "from",
        "random-weight runs carry a red banner and are not results.",
        "",
        "| figure | paper | command that produced the results | source run | random weights |",
        "|---|---|---|---|---|",
        *lines,
        "",
        "Not generated (no finished run found under `"
        + str(root)
        + "`): "
        + (", ".join(r["experiment"] for r in rows if r["status"] != "regenerated") or "none")
        + ".",
        "",
    ]
    results.atomic_write_text(out_dir / "README.md", "\n".join(readme))
    run.table(
        table,
        title=f"paper_figs regenerated into {out_dir}",
        print_columns=["experiment", "status", "figures", "random_weights"],
    )
