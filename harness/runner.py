"""One way in and one way out for every experiment: run dir, INCOMPLETE marker, provenance.

:func:`execute` is the only caller of an experiment module.  It

1. prepares the run dir: a fresh directory, or an existing one that holds nothing but Hydra's
   ``.hydra/`` (a dir with results is refused unless ``overwrite=true``, which removes them);
2. writes ``INCOMPLETE`` (pid, host, start time, command line) and records the start time, so
   provenance timestamps cover the whole computation;
3. calls ``module.compute(cfg)`` (numbers only) and ``module.present(result, run)`` (tables,
   figures, JSON through :class:`Run`, each file written atomically);
4. writes ``provenance.json`` last and only then removes ``INCOMPLETE``.

A run that fails keeps ``INCOMPLETE`` with the error line in it (what ``collect`` reports); a
dir that :func:`execute` created and in which nothing was written yet is removed again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import provenance as prov
from . import results
from .errors import ConfigError, HarnessError

INCOMPLETE = "INCOMPLETE"
HYDRA_DIR = ".hydra"


@dataclass
class Result:
    """What an experiment's ``compute`` returns: its tables and what presentation needs."""

    tables: dict
    random_weights: bool = False
    extra: dict = field(default_factory=dict)  # JSON-able; goes into provenance.json
    objects: dict = field(default_factory=dict)  # anything else ``present`` needs (images ...)

    @property
    def table(self) -> pd.DataFrame:
        return self.tables.get("table", pd.DataFrame())


@dataclass
class ExperimentResult:
    """What :func:`execute` returns: the main table, all tables, the files written."""

    name: str
    run_dir: Path
    table: pd.DataFrame
    tables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    result: Result | None = None


def timestamp() -> str:
    """Run-dir names: local time to the microsecond (a counter suffix settles the rest)."""
    return _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")


def claim_new_dir(parent, stem: str) -> Path:
    """Create ``parent/stem`` (or ``stem-1``, ``stem-2`` ...) exclusively: no two runs share it."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        cand = parent / (stem if i == 0 else f"{stem}-{i}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            continue
    raise HarnessError(f"cannot create a new run dir under {parent}")


def result_entries(run_dir: Path) -> list[Path]:
    """What a run dir holds besides Hydra's own ``.hydra/`` for this run."""
    if not run_dir.exists():
        return []
    return [p for p in run_dir.iterdir() if p.name != HYDRA_DIR]


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse a run dir that already holds results unless ``overwrite=true``."""
    held = result_entries(Path(run_dir))
    if held and not overwrite:
        names = ", ".join(sorted(p.name for p in held)[:4])
        raise ConfigError(
            f"run dir {run_dir} already holds results ({names}{', ...' if len(held) > 4 else ''}); "
            "choose another hydra.run.dir, or pass overwrite=true to replace them"
        )


class Run:
    """Collects one run's outputs; ``finish`` writes provenance last and clears ``INCOMPLETE``."""

    def __init__(self, name: str, cfg, run_dir, overwrite: bool = False):
        from omegaconf import DictConfig, OmegaConf

        self.name = name
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        self.cfg = dict(cfg or {})
        self.run_dir = Path(run_dir)
        self.created = not self.run_dir.exists()
        check_run_dir(self.run_dir, overwrite)
        for p in result_entries(self.run_dir):  # overwrite=true: the old results go first
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.random_weights = False
        self.pending_error: HarnessError | None = None  # raised after provenance (strict mode)
        self.started = prov.now_iso()
        self.outputs: dict = {}
        self.tables: dict = {}
        self._marker({"status": "running"})

    # ------------------------------------------------------------------ marker
    def _marker(self, extra: dict) -> None:
        results.write_json(
            self.run_dir / INCOMPLETE,
            {
                "experiment": self.name,
                "started": self.started,
                "pid": os.getpid(),
                "host": prov.host_info()["hostname"],
                "argv": prov.host_info()["argv"],
                **extra,
            },
        )

    def fail(self, exc: BaseException) -> None:
        """Leave the marker with the error line; remove a dir this run created and never used."""
        wrote = [p for p in result_entries(self.run_dir) if p.name != INCOMPLETE]
        if self.created and not wrote and not (self.run_dir / HYDRA_DIR).exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return
        line = " ".join(str(exc).split()) or type(exc).__name__
        self._marker(
            {
                "status": "failed",
                "error_type": type(exc).__name__,
                "error": line,
                "failed": prov.now_iso(),
            }
        )

    # ------------------------------------------------------------------ outputs
    def table(
        self,
        df: pd.DataFrame,
        name: str = "table",
        title: str = "",
        notes=None,
        print_columns: list | None = None,
        quiet: bool = False,
        keep_columns=None,
    ) -> dict:
        paths = results.write_table(
            df,
            self.run_dir,
            name=name,
            title=title,
            notes=notes,
            random_weights=self.random_weights,
            keep_columns=keep_columns,
        )
        self.outputs[name] = {k: str(v) for k, v in paths.items()}
        self.tables[name] = df
        if not quiet:
            shown = f"[{results.RANDOM_WEIGHTS_BANNER}] {title}" if self.random_weights else title
            results.print_table(df, shown, columns=print_columns)
        return paths

    def figure(self, fig, name: str) -> dict:
        paths = results.save_figure(fig, self.run_dir, name, random_weights=self.random_weights)
        self.outputs[name] = {k: str(v) for k, v in paths.items()}
        return paths

    def json(self, obj, name: str) -> Path:
        path = results.write_json(self.run_dir / f"{name}.json", obj)
        self.outputs[name] = {"json": str(path)}
        return path

    def text(self, text: str, filename: str, key: str | None = None) -> Path:
        path = results.atomic_write_text(self.run_dir / filename, text)
        self.outputs[key or filename] = {Path(filename).suffix.lstrip("."): str(path)}
        return path

    def finish(self, result: Result | None = None, **extra) -> ExperimentResult:
        extra = {**(result.extra if result else {}), **extra}
        results.write_provenance(
            self.run_dir,
            self.cfg,
            extra={"experiment": self.name, "outputs": self.outputs, **extra},
            started=self.started,
            random_weights=self.random_weights,
        )
        (self.run_dir / INCOMPLETE).unlink(missing_ok=True)
        print(f"\n[{self.name}] outputs in {self.run_dir}")
        tables = dict(result.tables) if result else {}
        tables.update(self.tables)
        table = tables.get("table", pd.DataFrame())
        return ExperimentResult(
            self.name, self.run_dir, table, tables, dict(self.outputs), dict(extra), result
        )


def execute(module, name: str, cfg, run_dir) -> ExperimentResult:
    """Run experiment ``module`` (already validated ``cfg``) into ``run_dir``; see module doc."""
    run = Run(name, cfg, run_dir, overwrite=bool(cfg.get("overwrite", False)))
    try:
        result = module.compute(cfg)
        run.random_weights = bool(result.random_weights)
        module.present(result, run)
        finished = run.finish(result)
    except BaseException as exc:
        run.fail(exc)
        raise
    if run.pending_error is not None:  # the run is complete; its verdict is an exit code
        raise run.pending_error
    return finished


def mark_failed(run_dir, experiment: str, error_type: str, error: str) -> None:
    """An ``INCOMPLETE`` marker for a job that failed before its run started (e.g. a bad value
    in one point of a sweep), so ``collect`` and the multirun summary see it."""
    run_dir = Path(run_dir)
    if (run_dir / INCOMPLETE).exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    results.write_json(
        run_dir / INCOMPLETE,
        {
            "experiment": experiment,
            "pid": os.getpid(),
            "host": prov.host_info()["hostname"],
            "argv": prov.host_info()["argv"],
            "status": "failed",
            "error_type": error_type,
            "error": " ".join(error.split()),
            "failed": prov.now_iso(),
        },
    )


def failed_jobs(sweep_dir) -> list[tuple[Path, dict]]:
    """(job dir, marker) of every job under a multirun dir that did not finish."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    out = []
    for d in sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: (len(p.name), p.name),
    ):
        m = read_marker(d)
        if m is not None:
            out.append((d, m))
    return out


def read_marker(run_dir) -> dict | None:
    """The ``INCOMPLETE`` record of a run dir, or None for a finished run."""
    p = Path(run_dir) / INCOMPLETE
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {"status": "unknown", "error": "unreadable INCOMPLETE marker"}
