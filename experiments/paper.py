"""Experiment ``paper``: every experiment whose inputs are available, and what is missing for the rest.

Each sub-experiment runs into ``<run dir>/<label>/`` with its own tables, figures and provenance.
A missing weights file or dataset marks it *skipped* with the exact message (file, hash, where
to put it); any other error marks it *failed*.  ``weights=``, ``device=`` and ``seed=`` given to
``paper`` are passed on to every sub-experiment.
"""

from __future__ import annotations

import time
import traceback

import pandas as pd

from harness.api import compose, run_with_config
from harness.errors import HarnessError, MissingInputError
from harness.runner import Run


def _passthrough(cfg) -> list[str]:
    out = [f"seed={cfg.seed}", f"device={cfg.device}", f"progress={str(bool(cfg.get('progress', True))).lower()}"]
    if cfg.get("weights"):
        out.append(f"weights={cfg.weights}")
    return out


def run(cfg, run_dir):
    run = Run("paper", cfg, run_dir)
    rows = []
    for item in cfg.paper.experiments:
        name, label = item.name, item.get("label") or item.name
        overrides = list(item.get("overrides") or [])
        overrides += _passthrough(cfg) if name != "toy_gaussian" else [f"seed={cfg.seed}"]
        t0 = time.perf_counter()
        status, detail, sub_dir = "ran", "", run.run_dir / label
        print(f"\n=== {label} ===", flush=True)
        try:
            sub_cfg = compose(name, overrides)
            res = run_with_config(sub_cfg, sub_dir)
            detail = headline(name, res)
        except MissingInputError as exc:
            status, detail = "skipped", str(exc)
            print(f"skipped: {detail}", flush=True)
        except (HarnessError, ValueError) as exc:
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
            print(f"failed: {detail}", flush=True)
        except Exception as exc:  # a bug: say so, keep going, keep the traceback
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
            (run.run_dir / f"{label}_traceback.txt").write_text(traceback.format_exc())
            print(f"failed (traceback in {label}_traceback.txt): {detail}", flush=True)
        rows.append({"experiment": label, "status": status, "seconds": round(time.perf_counter() - t0, 1),
                     "run_dir": str(sub_dir) if status == "ran" else "", "detail": detail,
                     "overrides": " ".join(overrides)})
    table = pd.DataFrame(rows)
    run.table(table, title="paper: what ran, and exactly what is missing for the rest", quiet=True)
    print_summary(table)
    return run.finish()


def print_summary(table: pd.DataFrame) -> None:
    import textwrap

    print("\n" + "=" * 100 + "\npaper: what ran, and exactly what is missing for the rest\n" + "=" * 100)
    import re

    for r in table.itertuples(index=False):
        head = f"{r.experiment:<26} {r.status:<8} {r.seconds:>7.1f} s  "
        print(head.rstrip() if not r.detail else head, end="")
        # one bullet per missing input ("... | [name] ..." joins them in the error message)
        parts = [p for p in re.split(r" \|\| | \| (?=\[)| \| (?=or run)", str(r.detail)) if p]
        indent = " " * len(head)
        for i, part in enumerate(parts):
            lines = textwrap.wrap(part, width=100 - len(head) - 2) or [""]
            print(("" if i == 0 else indent) + ("- " if len(parts) > 1 else "") + lines[0])
            for line in lines[1:]:
                print(indent + ("  " if len(parts) > 1 else "") + line)
        if not parts:
            print()


def headline(name: str, res) -> str:
    """One line summarising a finished sub-experiment's main result."""
    t = res.table
    try:
        if name == "toy_gaussian":
            return "IS exact: " + ", ".join(f"{g} {v:.4f}" for g, v in zip(t.generator, t.is_exact))
        if name == "splits":
            r = t.set_index("n_splits")
            s = f"IS at 1/10/200 splits: {r.is_mean.get(1, float('nan')):.4f} / {r.is_mean.get(10, float('nan')):.4f} / {r.is_mean.get(200, float('nan')):.4f}"
            if "true_is" in t:
                s += f"; true IS {t.true_is.iloc[0]:.4f}; exp S(G) {t.exp_sg.iloc[0]:.4f}"
            return s
        if name in ("weights_sensitivity", "beyond_imagenet"):
            col = "is_mean" if name == "weights_sensitivity" else "h_y_given_x_bits"
            return "; ".join(f"{b}/{d}: {v:.4g}" for b, d, v in zip(t.backbone, t.dataset_key, t[col]))
        if name == "adversarial":
            return f"IS after attack (uint8): {t.is_mean.iloc[-1]:.2f} (10 splits), {t.is_1split.iloc[-1]:.2f} (1 split)"
    except Exception:  # a headline is a courtesy; never fail the run over it
        pass
    return f"{len(t)} rows"
