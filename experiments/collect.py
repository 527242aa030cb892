"""Experiment ``collect``: one table from a multirun (or from several run dirs).

Every finished job contributes the rows of its ``<table>.csv`` with the job's name, its
overrides (``.hydra/overrides.yaml``) and its run dir; a job that left an ``INCOMPLETE`` marker
is listed in ``jobs`` with its error line, whatever launcher ran it (the marker is on the shared
filesystem).  When all jobs ran one experiment and that experiment's module defines
``collect(table) -> {name: DataFrame}`` (its summary tables, e.g. ``weights_sensitivity``'s
pairwise differences) and optionally ``collect_figures(tables) -> {name: Figure}``, those are
made from the gathered rows exactly as a single-process run makes them.

Nothing is taken on trust.  A multirun dir's own job list (Hydra's ``multirun.yaml``: the
basic sweeper's cartesian product of the swept overrides, in job order) says which jobs there
must be: a job without a dir, or whose dir holds no results, is listed as ``missing``, and a
dir that is no job of that sweep as ``not in sweep``.  Every job's ``provenance.json`` must be a
complete record (valid JSON with the fields :class:`harness.runner.Run` writes) and its table
must be the file the run wrote: the ``sha256`` and ``rows`` that ``provenance.json`` records for
it under ``outputs[<table>]`` when present, and always a strict parse (no short or empty rows,
no cut-off last line).  A job that fails a check is listed as ``damaged`` with the reason.
Missing, damaged and foreign jobs leave the tables written (what there is, with ``jobs.csv``
naming every job) and then end the run with one error line naming them: unlike a failed job
(whose marker the sweep already reported), nothing else would tell.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import inspect
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import settings as S
from harness.errors import ConfigError, MissingInputError
from harness.experiment_registry import experiment
from harness.runner import HYDRA_DIR, INCOMPLETE, Result, read_marker

SETTINGS = S.ExperimentSettings(
    "One table from a multirun dir (or several run dirs): every job's rows and provenance; "
    "failed, missing and damaged jobs with their error.",
    S.Schema(
        [
            S.Setting(
                "runs",
                S.ListOf(S.Path()),
                None,
                "run dirs and/or multirun dirs (their job subdirs are collected), e.g. "
                "runs=[results/x/multirun_...]",
                required=True,
            ),
            S.Setting(
                "table",
                S.Str(),
                "table",
                "which table of each job to gather (table, pairwise, history ...)",
            ),
        ]
    ),
)

PROVENANCE = "provenance.json"
MULTIRUN = "multirun.yaml"
#: what every finished run's provenance.json holds (Run.finish and results.write_provenance)
PROVENANCE_FIELDS = ("experiment", "outputs", "config", "started", "finished")
#: job statuses that nothing but collect detects: they end the run with an error (after writing)
PROBLEMS = ("missing", "damaged", "not in sweep")
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DEFAULT_SUBDIR = "${hydra.job.num}"


class _Damaged(Exception):
    """A job's file fails a check (the message names the file and what is wrong)."""


def _is_run_dir(p: Path) -> bool:
    return (p / PROVENANCE).exists() or (p / INCOMPLETE).exists()


# --------------------------------------------------------------------------- a multirun's jobs
@functools.lru_cache(maxsize=1)
def _parser():
    """Hydra's override parser, able to expand ``glob(...)`` over the harness's config groups."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.utils import create_config_search_path

        from harness.experiment_registry import CONF_DIR

        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    except Exception:  # Hydra's internals moved: no glob expansion (other sweeps still exact)
        loader = None
    return OverridesParser.create(config_loader=loader)


#: overrides that steer a run but do not change what it computes (a rerun of a damaged job
#: adds ``overwrite=true`` and ``hydra.run.dir``): not part of a job's identity
RUN_CONTROL = ("overwrite", "progress", "verbose", "hydra")


def _normal(overrides) -> frozenset | None:
    """An override list as Hydra reads it (``x=false`` and ``x=False`` alike), order-free,
    without run-control keys."""
    try:
        parsed = _parser().parse_overrides([str(o) for o in overrides])
        return frozenset(
            f"{o.get_key_element()}={o.get_value_element_as_str()}"
            for o in parsed
            if o.key_or_group.split(".")[0] not in RUN_CONTROL
        )
    except Exception:  # not parseable here: no comparison
        return None


def sweep_jobs(sweep: Path) -> tuple[list[list[str]] | None, bool]:
    """The overrides of every job of the multirun in ``sweep``, in job order, from its
    ``multirun.yaml`` (as Hydra's basic sweeper made them: ``hydra.sweeper.params`` then the
    command line's ``hydra.overrides.task``, cartesian product), and whether job ``i`` lives in
    ``sweep/i``.  ``None`` when there is no ``multirun.yaml`` or another sweeper ran."""
    f = sweep / MULTIRUN
    if not f.exists():
        return None, True
    from omegaconf import OmegaConf

    try:
        conf = OmegaConf.to_container(OmegaConf.load(f), resolve=False)
        hydra = conf["hydra"]
        subdir = str(hydra.get("sweep", {}).get("subdir", DEFAULT_SUBDIR)).strip()
        sweeper = hydra.get("sweeper") or {}
        task = [str(o) for o in hydra["overrides"]["task"] or []]
    except Exception as exc:
        raise MissingInputError(
            f"collect: {f} cannot be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}), so the sweep's job list is unknown; restore "
            f"it, or name the job dirs themselves in runs=[...]"
        ) from None
    default_layout = subdir == DEFAULT_SUBDIR
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None, default_layout
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        batches = BasicSweeper.split_arguments(_parser().parse_overrides(params + task), None)
    except Exception:  # e.g. a glob over a config group from another search path
        return None, default_layout
    return [list(job) for batch in batches for job in batch], default_layout


def _job_num(d: Path, default_layout: bool) -> int | None:
    if default_layout:
        return int(d.name) if d.name.isdigit() else None
    try:
        import yaml

        num = yaml.safe_load((d / HYDRA_DIR / "hydra.yaml").read_text())["hydra"]["job"]["num"]
        return int(num)
    except Exception:  # no readable hydra.yaml: not identifiable as a job of this sweep
        return None


def _job(d: Path | None, name: str, status: str | None = None, error: str = "", overrides=None):
    return {"dir": d, "job": name, "status": status, "error": error, "expected": overrides}


def _job_subdirs(p: Path) -> list[Path]:
    """The subdirs of ``p`` that are (or were meant to be) job dirs; an error when none holds a
    run."""
    subs = [
        d
        for d in p.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and (_is_run_dir(d) or (d / HYDRA_DIR).is_dir())
    ]
    if not any(_is_run_dir(d) for d in subs):
        raise MissingInputError(
            f"{p} holds no run dirs (no {PROVENANCE} or {INCOMPLETE} in it or its subdirectories)"
        )
    return subs


def _number_jobs(subs: list[Path], expected, default_layout: bool) -> tuple[dict, list[Path]]:
    """``subs`` by the job number of the sweep each holds, and those that are no job of it."""
    by_num, foreign, unnumbered = {}, [], []
    for d in sorted(subs, key=lambda d: (len(d.name), d.name)):
        num = _job_num(d, default_layout)
        if num is None and not default_layout and expected is not None:
            unnumbered.append(d)  # e.g. a job rerun as a single run (hydra.job.num: ???)
        elif num is None or num in by_num or (expected is not None and num >= len(expected)):
            foreign.append(d)
        else:
            by_num[num] = d
    for d in unnumbered:  # matched to a job of the sweep by its overrides
        mine = _normal(_overrides(d) or [])
        match = next(
            (i for i, want in enumerate(expected) if i not in by_num and _normal(want) == mine),
            None,
        )
        if mine is not None and match is not None:
            by_num[match] = d
        else:
            foreign.append(d)
    return by_num, foreign


def _sweep_info(p: Path, expected, n: int) -> dict:
    """What the job list of multirun dir ``p`` is (printed when not the basic sweeper's)."""
    info = {
        "sweep": str(p),
        "jobs": n,
        "job_list": f"{MULTIRUN} (the basic sweeper's cartesian product)"
        if expected is not None
        else f"job numbers 0..{n - 1} of the dirs ({MULTIRUN} names no basic-sweeper job "
        "list: missing jobs after the last dir cannot be seen)",
    }
    if expected is None:
        print(f"collect: {p}: {info['job_list']}")
    return info


def _numbered_entries(p: Path, n: int, expected, by_num: dict, default_layout: bool) -> list:
    """Jobs 0..n-1 of the sweep in ``p``: each its dir, or missing."""
    out = []
    for i in range(n):
        want = expected[i] if expected is not None else None
        d = by_num.get(i)
        if d is None:
            where = f"{p / str(i)}" if default_layout else f"job {i}'s dir under {p}"
            out.append(_job(None, str(i), "missing", f"no job dir ({where} does not exist)", want))
            if default_layout:
                out[-1]["dir_expected"] = p / str(i)
        elif not _is_run_dir(d):
            out.append(
                _job(
                    d,
                    d.name,
                    "missing",
                    f"{d} holds no results (no {PROVENANCE}, no {INCOMPLETE} marker): the job "
                    "stopped before its run began",
                    want,
                )
            )
        else:
            out.append(_job(d, d.name, overrides=want))
    return out


def _foreign_entries(p: Path, n: int, foreign: list[Path]) -> list:
    """The run dirs in ``p`` that are no job of its sweep."""
    return [
        _job(
            d,
            d.name,
            "not in sweep",
            f"{d} is no job of the sweep {p / MULTIRUN} describes ({n} jobs)",
        )
        for d in foreign
        if _is_run_dir(d)
    ]


def _sweep_entries(p: Path) -> tuple[list[dict], dict | None]:
    """The jobs of multirun dir ``p`` (its job list, when known, against its job dirs), and
    what that job list is (None for a folder of run dirs without ``multirun.yaml``)."""
    subs = _job_subdirs(p)
    expected, default_layout = sweep_jobs(p)
    if not (p / MULTIRUN).exists():  # several run dirs in one folder: no job list to check
        runs = sorted((d for d in subs if _is_run_dir(d)), key=lambda d: (len(d.name), d.name))
        return [_job(d, d.name) for d in runs], None
    by_num, foreign = _number_jobs(subs, expected, default_layout)
    n = len(expected) if expected is not None else max(by_num, default=-1) + 1
    info = _sweep_info(p, expected, n)
    out = _numbered_entries(p, n, expected, by_num, default_layout)
    return out + _foreign_entries(p, n, foreign), info


def job_dirs(paths) -> tuple[list[dict], list[dict]]:
    """Every job to collect: run dirs named directly, and the jobs of named multirun dirs in
    job order (missing ones included, see :func:`sweep_jobs`).  Each is a dict with ``dir``
    (None when missing), ``job``, ``status`` (None, ``missing`` or ``not in sweep``), ``error``
    and ``expected`` (the job's overrides per the sweep, or None).  Also, per multirun dir, how
    many jobs it has and where that count comes from."""
    out, missing, sweeps = [], [], []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if not p.is_dir():
            missing.append(f"{p} does not exist or is not a directory")
        elif _is_run_dir(p):
            out.append(_job(p, p.name))
        else:
            try:
                entries, info = _sweep_entries(p)
            except MissingInputError as exc:
                missing += exc.items
                continue
            out += entries
            sweeps += [info] if info else []
    if missing:
        raise MissingInputError("; ".join(missing), items=missing)
    return out, sweeps


def _overrides(d: Path) -> list[str] | None:
    f = d / HYDRA_DIR / "overrides.yaml"
    if not f.exists():
        return None
    import yaml

    try:
        got = yaml.safe_load(f.read_text())
    except Exception as exc:
        raise _Damaged(f"{f} is not valid YAML ({type(exc).__name__})") from None
    if got is not None and not isinstance(got, list):
        raise _Damaged(f"{f} is not a list of overrides")
    return [str(o) for o in got or []]


# --------------------------------------------------------------------------- a job's files
def read_provenance(d: Path) -> dict:
    """A finished run's ``provenance.json``: valid JSON with every field the runner writes."""
    f = d / PROVENANCE
    try:
        text = f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Damaged(f"{f} cannot be read ({type(exc).__name__})") from None
    if not text.strip():
        raise _Damaged(f"{f} is empty")
    try:
        prov = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Damaged(
            f"{f} is not valid JSON ({exc.msg} at line {exc.lineno}): half-written or damaged"
        ) from None
    if not isinstance(prov, dict):
        raise _Damaged(f"{f} is not a JSON object")
    lacking = [k for k in PROVENANCE_FIELDS if k not in prov]
    if lacking:
        raise _Damaged(f"{f} lacks {', '.join(lacking)}: not a complete provenance record")
    if not isinstance(prov["outputs"], dict):
        raise _Damaged(f"{f}: its outputs field is not an object")
    return prov


def read_table(path: Path, recorded: dict) -> pd.DataFrame:
    """``path`` parsed strictly, and checked against what provenance recorded for it:
    ``recorded["sha256"]`` (of the CSV's bytes) and ``recorded["rows"]`` when present."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Damaged(f"{path} cannot be read ({type(exc).__name__})") from None
    if not data:
        raise _Damaged(f"{path} is empty (0 bytes)")
    sha, rows = recorded.get("sha256"), recorded.get("rows")
    if sha is not None and hashlib.sha256(data).hexdigest() != str(sha):
        raise _Damaged(
            f"{path} is not the file its run wrote (its sha256 differs from the one in "
            f"{PROVENANCE}{'' if rows is None else f', which recorded {rows} rows'})"
        )
    if not data.endswith(b"\n"):
        raise _Damaged(f"{path} ends in the middle of a line: truncated")
    if data == b"\n":  # what pandas writes for a table without columns
        t = pd.DataFrame()
    elif sha is not None:  # the very bytes its run wrote: no heuristics (an all-NaN row is data)
        try:
            t = pd.read_csv(io.BytesIO(data))
        except Exception as exc:
            raise _Damaged(f"{path} is not a readable CSV ({type(exc).__name__})") from None
    else:
        try:
            text = data.decode("utf-8")
            records = list(csv.reader(io.StringIO(text)))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _Damaged(f"{path} is not a readable CSV ({type(exc).__name__})") from None
        header = records[0]
        for i, r in enumerate(records[1:], start=1):
            if len(r) != len(header):
                raise _Damaged(
                    f"{path}: row {i} has {len(r)} fields, the header {len(header)}: "
                    "truncated or damaged"
                )
        try:
            t = pd.read_csv(io.StringIO(text))
        except Exception as exc:  # pandas' parser errors: a damaged file, not a bug
            raise _Damaged(f"{path} is not a readable CSV ({type(exc).__name__})") from None
        if len(t) != len(records) - 1:
            raise _Damaged(f"{path} holds blank lines: truncated or damaged")
        empty = np.flatnonzero(t.isna().all(axis=1).to_numpy()) if t.shape[1] > 1 else []
        if len(empty):
            raise _Damaged(f"{path}: row {empty[0] + 1} has no values: truncated or damaged")
    if rows is not None and len(t) != int(rows):
        raise _Damaged(f"{path} has {len(t)} rows, {PROVENANCE} recorded {rows}")
    return t


def _damaged(job: dict, error: str, experiment=None) -> dict:
    return {**job, "status": "damaged", "experiment": experiment, "error": error, "rows": 0}


#: the columns of ``jobs.csv`` (then ``sweep``: what distinguishes each job)
JOB_COLUMNS = ["job", "run_dir", "overrides", "status", "experiment", "error", "rows"]


def _job_row(job: dict, status: str, experiment=None, error: str = "", rows: int = 0) -> dict:
    return {**job, "status": status, "experiment": experiment, "error": error, "rows": rows}


def _listed_job(e: dict, job: dict) -> dict:
    """The row of a job whose status the job list already gave (missing, or no job of the
    sweep): a foreign dir shows the overrides it ran."""
    d, want = e["dir"], job["overrides"]
    if d is not None and e["status"] != "missing":
        try:
            got = _overrides(d)
        except _Damaged:
            got = None
        job["overrides"] = " ".join(got) if got is not None else want
    return _job_row(job, e["status"], error=e["error"])


def _other_sweep_error(e: dict, got: list[str]) -> str | None:
    """Why the job in ``e["dir"]``, which ran overrides ``got``, is not the sweep's job
    ``e["job"]`` (None when it is, or when that cannot be told)."""
    ran, want_n = _normal(got), _normal(e["expected"] or [])
    if e["expected"] is not None and None not in (ran, want_n) and ran != want_n:
        want = " ".join(e["expected"])
        return (
            f"{e['dir']} ran {' '.join(got)}, but the sweep's job {e['job']} is {want}: a job of "
            "another sweep"
        )
    return None


def _job_table(job: dict, d: Path, prov: dict, name: str) -> tuple[dict, pd.DataFrame | None]:
    """A finished job's row and its table ``name`` (None when it has none or it is damaged),
    labelled with the job."""
    exp_name = prov.get("experiment")
    path = d / f"{name}.csv"
    recorded = prov["outputs"].get(name)
    recorded = recorded if isinstance(recorded, dict) else {}
    if not path.exists():
        if recorded.get("csv"):
            return _damaged(job, f"{path} is gone ({PROVENANCE} lists it)", exp_name), None
        return _job_row(job, f"no {name}.csv", exp_name), None
    try:
        t = read_table(path, recorded)
    except _Damaged as exc:
        return _damaged(job, str(exc), exp_name), None
    row = _job_row(job, "ok", exp_name, rows=len(t))
    t.insert(0, "job", d.name)
    t["job_overrides"], t["job_run_dir"] = job["overrides"], str(d)
    return row, t


def _collect_job(e: dict, name: str) -> tuple[dict, pd.DataFrame | None, bool]:
    """One job of :func:`job_dirs`: its row in ``jobs``, its rows of table ``name`` (None unless
    collected) and whether its provenance notes random weights."""
    d = e["dir"]
    want = " ".join(e["expected"]) if e["expected"] is not None else ""
    job = {"job": e["job"], "run_dir": str(d or e.get("dir_expected") or ""), "overrides": want}
    if e["status"] is not None:  # missing, or no job of the sweep
        return _listed_job(e, job), None, False
    try:
        got = _overrides(d)
    except _Damaged as exc:
        return _damaged(job, str(exc)), None, False
    if got is not None:
        job["overrides"] = " ".join(got)
        error = _other_sweep_error(e, got)
        if error is not None:
            return _job_row(job, "not in sweep", error=error), None, False
    marker = read_marker(d)
    if marker is not None:
        status = "failed" if marker.get("status") == "failed" else "unfinished"
        return _job_row(job, status, marker.get("experiment"), marker.get("error", "")), None, False
    try:
        prov = read_provenance(d)
    except _Damaged as exc:
        return _damaged(job, str(exc)), None, False
    random = "RANDOM" in str(prov.get("weights_note", "")).upper()
    return (*_job_table(job, d, prov, name), random)


def _finished_experiments(rows: list[dict], name: str) -> list:
    """The experiments of the jobs that finished (table ``name`` collected, or none made)."""
    return [r["experiment"] for r in rows if r["status"] in ("ok", f"no {name}.csv")]


def _jobs_frame(rows: list[dict]) -> pd.DataFrame:
    """``jobs.csv``: every job's row, and what distinguishes it (``sweep``: its overrides not
    shared by all jobs)."""
    jobs = pd.DataFrame([{c: j.get(c) for c in JOB_COLUMNS} for j in rows], columns=JOB_COLUMNS)
    split = [str(o or "").split() for o in jobs.overrides] if len(jobs) else []
    common = set.intersection(*map(set, split)) if split else set()
    jobs["sweep"] = [" ".join(o for o in s if o not in common) for s in split]
    return jobs


def _gathered_table(parts: list[pd.DataFrame], jobs: pd.DataFrame) -> pd.DataFrame:
    """The collected rows of every job, each labelled with its job's ``sweep`` (``job_sweep``)."""
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(table):
        table.insert(1, "job_sweep", table.job.map(dict(zip(jobs.job, jobs.sweep))))
    return table


def _summaries(name: str, tables: dict, jobs: pd.DataFrame) -> tuple[dict, dict]:
    """Experiment ``name``'s own summary tables of the collected rows (added to ``tables``), and
    its figures and arrays, as a single-process run makes them."""
    exp = experiment(name)
    ok_dirs = [Path(d) for d in jobs.run_dir[jobs.status == "ok"]]
    figures, arrays = {}, {}
    if exp.collect is not None:
        table = tables["table"]
        takes_dirs = "run_dirs" in inspect.signature(exp.collect).parameters
        tables.update(exp.collect(table, run_dirs=ok_dirs) if takes_dirs else exp.collect(table))
        if exp.collect_figures is not None:
            figures = exp.collect_figures(tables)
    if exp.collect_arrays is not None:
        arrays = exp.collect_arrays(ok_dirs)
    return figures, arrays


def _extra(jobs: pd.DataFrame, names: list, sweeps: list[dict]) -> dict:
    """What provenance records of the collection."""
    not_ok = jobs[jobs.status != "ok"]
    return {
        "experiments": sorted({n for n in names if n is not None}),
        "n_jobs": len(jobs),
        "n_jobs_ok": int((jobs.status == "ok").sum()),
        "complete": not len(not_ok),
        "sweeps": sweeps,
        "jobs_not_ok": {str(j.job): str(j.status) for j in not_ok.itertuples()},
    }


# --------------------------------------------------------------------------- the experiment
def compute(cfg) -> Result:
    if not cfg.runs:
        raise ConfigError("collect: give the runs, e.g. runs=[results/<experiment>/multirun_...]")
    entries, sweeps = job_dirs(cfg.runs)
    rows, parts, random = [], [], False
    for e in entries:
        row, part, job_random = _collect_job(e, cfg.table)
        rows.append(row)
        parts += [] if part is None else [part]
        random = random or job_random
    names = _finished_experiments(rows, cfg.table)
    jobs = _jobs_frame(rows)
    tables = {"table": _gathered_table(parts, jobs), "jobs": jobs}
    figures, arrays = {}, {}
    if len(set(names)) == 1 and parts and cfg.table == "table":
        figures, arrays = _summaries(names[0], tables, jobs)
    return Result(
        tables,
        random,
        extra=_extra(jobs, names, sweeps),
        objects={"figures": figures, "arrays": arrays},
    )


def problems_error(jobs: pd.DataFrame, run_dir) -> MissingInputError | None:
    """One error line naming the missing, damaged and foreign jobs (None when there are none)."""
    bad = jobs[jobs.status.isin(PROBLEMS)] if len(jobs) else jobs
    if not len(bad):
        return None
    items = [f"job {j.job} {j.status}: {j.error}" for j in bad.itertuples()]
    shown = "; ".join(items[:5]) + (f"; ... and {len(items) - 5} more" if len(items) > 5 else "")
    first = next((j for j in bad.itertuples() if j.status != "not in sweep"), None)
    if first is not None and first.overrides and first.run_dir:
        again = " overwrite=true" if first.status == "damaged" else ""
        fix = f"python -m harness {first.overrides} hydra.run.dir={first.run_dir}{again}"
    else:
        fix = "python -m harness <its overrides> hydra.run.dir=<its job dir>"
    return MissingInputError(
        f"collect: {len(bad)} of {len(jobs)} job(s) missing, damaged or foreign, so the tables in "
        f"{run_dir} leave them out (jobs.csv lists every job): {shown}; rerun each (e.g. {fix}) "
        "and collect again",
        items=items,
    )


def present(result: Result, run) -> None:
    jobs = result.tables["jobs"]
    ok = int((jobs.status == "ok").sum()) if len(jobs) else 0
    run.table(result.table, title=f"{ok} of {len(jobs)} job(s) collected", quiet=True)
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
    failed = jobs[(jobs.status != "ok") & ~jobs.status.isin(PROBLEMS)] if len(jobs) else jobs
    if len(failed):
        print(
            f"collect: {len(failed)} job(s) did not finish: "
            + "; ".join(f"{j.job}: {j.error or j.status}" for j in failed.itertuples())
        )
    # raised after the tables and provenance are written (the runner's pending error)
    run.pending_error = problems_error(jobs, run.run_dir)


def headline(result: Result) -> str:
    jobs = result.tables["jobs"]
    ok = int((jobs.status == "ok").sum()) if len(jobs) else 0
    return f"{ok}/{len(jobs)} jobs, {len(result.table)} rows"
