"""Experiment ``collect``: one table from a multirun (or from several run dirs).

Every finished job contributes the rows of its ``<table>.csv`` with the job's name, its
overrides (``.hydra/overrides.yaml``) and its run dir; a job that left an ``INCOMPLETE`` marker
is listed in ``jobs`` with its error line, whatever launcher ran it (the marker is on the shared
filesystem).  When all jobs ran one experiment and that experiment's module defines
``collect(table) -> {name: DataFrame}`` (its summary tables, e.g. ``weights_sensitivity``'s
pairwise differences) and optionally ``collect_figures(tables) -> {name: Figure}``, those are
made from the gathered rows exactly as a single-process run makes them.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import ConfigError, MissingInputError
from harness.experiment_registry import experiment_module
from harness.runner import HYDRA_DIR, INCOMPLETE, Result, read_marker

PROVENANCE = "provenance.json"


def _is_run_dir(p: Path) -> bool:
    return (p / PROVENANCE).exists() or (p / INCOMPLETE).exists()


def job_dirs(paths) -> list[Path]:
    """Run dirs named directly, and the job dirs of named multirun dirs, in job order."""
    out, missing = [], []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if not p.is_dir():
            missing.append(f"{p} does not exist or is not a directory")
        elif _is_run_dir(p):
            out.append(p)
        else:
            subs = [d for d in p.iterdir() if d.is_dir() and _is_run_dir(d)]
            if not subs:
                missing.append(
                    f"{p} holds no run dirs (no {PROVENANCE} or {INCOMPLETE} in it "
                    "or its subdirectories)"
                )
            out += sorted(subs, key=lambda d: (len(d.name), d.name))
    if missing:
        raise MissingInputError("; ".join(missing), items=missing)
    return out


def _overrides(d: Path) -> str:
    f = d / HYDRA_DIR / "overrides.yaml"
    if not f.exists():
        return ""
    import yaml

    return " ".join(str(o) for o in (yaml.safe_load(f.read_text()) or []))


def compute(cfg) -> Result:
    if not cfg.runs:
        raise ConfigError("collect: give the runs, e.g. runs=[results/<experiment>/multirun_...]")
    jobs, parts, names, random = [], [], [], False
    for d in job_dirs(cfg.runs):
        marker = read_marker(d)
        job = {"job": d.name, "run_dir": str(d), "overrides": _overrides(d)}
        if marker is not None:
            jobs.append(
                {
                    **job,
                    "status": "failed" if marker.get("status") == "failed" else "unfinished",
                    "experiment": marker.get("experiment"),
                    "error": marker.get("error", ""),
                    "rows": 0,
                }
            )
            continue
        prov = json.loads((d / PROVENANCE).read_text())
        names.append(prov.get("experiment"))
        random = random or "RANDOM" in str(prov.get("weights_note", "")).upper()
        path = d / f"{cfg.table}.csv"
        if not path.exists():
            jobs.append(
                {
                    **job,
                    "status": f"no {cfg.table}.csv",
                    "experiment": names[-1],
                    "error": "",
                    "rows": 0,
                }
            )
            continue
        t = pd.read_csv(path)
        jobs.append({**job, "status": "ok", "experiment": names[-1], "error": "", "rows": len(t)})
        t.insert(0, "job", d.name)
        t["job_overrides"], t["job_run_dir"] = job["overrides"], str(d)
        parts.append(t)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    jobs = pd.DataFrame(jobs)
    # what distinguishes the jobs: the overrides not shared by all of them
    split = [o.split() for o in jobs.overrides] if len(jobs) else []
    common = set.intersection(*map(set, split)) if split else set()
    jobs["sweep"] = [" ".join(o for o in s if o not in common) for s in split]
    if len(table):
        table.insert(1, "job_sweep", table.job.map(dict(zip(jobs.job, jobs.sweep))))
    tables = {"table": table, "jobs": jobs}
    figures, arrays = {}, {}
    if len(set(names)) == 1 and parts and cfg.table == "table":
        module = experiment_module(names[0])
        ok_dirs = [Path(d) for d in jobs.run_dir[jobs.status == "ok"]]
        if hasattr(module, "collect"):
            takes_dirs = "run_dirs" in inspect.signature(module.collect).parameters
            tables.update(
                module.collect(table, run_dirs=ok_dirs) if takes_dirs else module.collect(table)
            )
            if hasattr(module, "collect_figures"):
                figures = module.collect_figures(tables)
        if hasattr(module, "collect_arrays"):
            arrays = module.collect_arrays(ok_dirs)
    return Result(
        tables,
        random,
        extra={"experiments": sorted(set(names)), "n_jobs": len(jobs)},
        objects={"figures": figures, "arrays": arrays},
    )


def present(result: Result, run) -> None:
    jobs = result.tables["jobs"]
    failed = jobs[jobs.status != "ok"] if len(jobs) else jobs
    run.table(result.table, title=f"{len(jobs)} job(s) collected", quiet=True)
    run.table(
        jobs, name="jobs", title="Jobs", print_columns=["job", "status", "rows", "error", "sweep"]
    )
    for name, t in result.tables.items():
        if name not in ("table", "jobs"):
            run.table(t, name=name, title=f"{name} (from the collected rows)")
    for name, fig in result.objects["figures"].items():
        run.figure(fig, name)
    for name, arrs in result.objects["arrays"].items():
        from harness.results import atomic_path

        with atomic_path(run.run_dir / f"{name}.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrs)
        run.outputs[name] = {"npz": str(run.run_dir / f"{name}.npz")}
    if len(failed):
        print(
            f"collect: {len(failed)} job(s) did not finish: "
            + "; ".join(f"{j.job}: {j.error or j.status}" for j in failed.itertuples())
        )


def headline(result: Result) -> str:
    jobs = result.tables["jobs"]
    ok = int((jobs.status == "ok").sum()) if len(jobs) else 0
    return f"{ok}/{len(jobs)} jobs, {len(result.table)} rows"
