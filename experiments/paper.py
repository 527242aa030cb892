"""Experiment ``paper``: every experiment whose inputs are available, and what is missing for the
rest.

Each sub-experiment runs into ``<run dir>/<label>/`` with its own tables, figures and provenance.
A missing weights file or dataset marks it *skipped* (its directory is not left behind) with the
exact messages (file, hash, where to put it); a user-fixable error marks it *failed* with its
line; anything else is a bug: *failed*, with the traceback in ``<label>_traceback.txt``.
``weights=``, ``device=`` and ``seed=`` given to ``paper`` are passed on to every
sub-experiment.  The summary prints each missing file once, in full.
"""

from __future__ import annotations

import time
import traceback

import pandas as pd

from harness import config
from harness import settings as S
from harness.api import compose, run_with_config
from harness.errors import HarnessError, MissingInputError
from harness.experiment_registry import experiment_module
from harness.runner import Result

SETTINGS = S.ExperimentSettings(
    "Everything: runs each experiment whose inputs are available and explains exactly what is "
    "missing.",
    S.Schema(
        [
            config.weights_override(
                "passed to every network experiment (e.g. random:0: all run on random weights, "
                "labelled)"
            ),
            S.Section(
                "paper",
                S.Schema(
                    [
                        S.Setting(
                            "experiments",
                            S.AnyList(),
                            [
                                {"name": "toy_gaussian"},
                                {
                                    "name": "splits",
                                    "label": "splits_simulated",
                                    "overrides": ["source=simulated"],
                                },
                                {"name": "splits", "label": "splits_network"},
                                {"name": "weights_sensitivity"},
                                {"name": "beyond_imagenet"},
                                {"name": "ordering"},
                                {"name": "memorization"},
                                {"name": "implementation_vs_weights"},
                                {"name": "adversarial"},
                            ],
                            "the runs: name, label, overrides",
                        )
                    ]
                ),
            ),
        ]
    ),
)


def _passthrough(cfg) -> list[str]:
    out = [
        f"seed={cfg.seed}",
        f"device={cfg.device}",
        f"progress={str(bool(cfg.get('progress', True))).lower()}",
    ]
    if cfg.get("weights"):
        out.append(f"weights={cfg.weights}")
    return out


def compute(cfg) -> Result:
    return Result({}, objects={"cfg": cfg})


def present(result: Result, run) -> None:
    """Sub-runs write into this run's directory, so they happen here, in order."""
    cfg = result.objects["cfg"]
    rows, missing = [], {}
    for item in cfg.paper.experiments:
        name, label = item.name, item.get("label") or item.name
        overrides = list(item.get("overrides") or [])
        overrides += _passthrough(cfg) if name != "toy_gaussian" else [f"seed={cfg.seed}"]
        t0 = time.perf_counter()
        status, detail, sub_dir, needs = "ran", "", run.run_dir / label, []
        print(f"\n=== {label} ===", flush=True)
        try:
            sub = run_with_config(compose(name, overrides), sub_dir)
            module = experiment_module(name)
            detail = (
                module.headline(sub.result)
                if hasattr(module, "headline")
                else f"{len(sub.table)} rows"
            )
        except MissingInputError as exc:
            status = "skipped"
            for item_msg in exc.items:
                missing.setdefault(item_msg, []).append(label)
                needs.append(list(missing).index(item_msg) + 1)
            detail = "needs " + ", ".join(f"[{i}]" for i in needs)
            print(f"skipped: {detail}", flush=True)
        except HarnessError as exc:
            status, detail = "failed", str(exc)
            print(f"failed: {detail}", flush=True)
        except Exception as exc:  # a bug: say so, keep going, keep the traceback
            status, detail = "failed", f"{type(exc).__name__}: {exc} (a bug)"
            run.text(traceback.format_exc(), f"{label}_traceback.txt")
            print(f"failed (traceback in {label}_traceback.txt): {detail}", flush=True)
        rows.append(
            {
                "experiment": label,
                "status": status,
                "seconds": round(time.perf_counter() - t0, 1),
                "run_dir": str(sub_dir) if status == "ran" else "",
                "detail": detail,
                "overrides": " ".join(overrides),
            }
        )
    table = pd.DataFrame(rows)
    run.table(table, title="paper: what ran, and exactly what is missing for the rest", quiet=True)
    if missing:
        miss = pd.DataFrame(
            [
                {"item": i, "missing": m, "needed_by": ", ".join(labels)}
                for i, (m, labels) in enumerate(missing.items(), 1)
            ]
        )
        run.table(miss, name="missing", title="Missing inputs (each once)", quiet=True)
    print_summary(table, missing)


def print_summary(table: pd.DataFrame, missing: dict) -> None:
    """One line per experiment, then every missing input once, unbroken (URLs stay whole)."""
    print(
        "\n" + "=" * 80 + "\npaper: what ran, and exactly what is missing for the rest\n" + "=" * 80
    )
    for r in table.itertuples(index=False):
        print(f"{r.experiment:<26} {r.status:<8} {r.seconds:>7.1f} s  {r.detail}")
    if missing:
        print("\nMissing inputs (each needed by the experiments named):")
        for i, (msg, labels) in enumerate(missing.items(), 1):
            print(f"[{i}] ({', '.join(labels)}) {msg}")
