"""One way in and one way out for every experiment: run dir, INCOMPLETE marker, provenance.

:func:`execute` is the only caller of an experiment module.  It

1. prepares the run dir: a fresh directory, or an existing one that holds nothing but Hydra's
   ``.hydra/`` (a dir with results is refused unless ``overwrite=true``; overwrite replaces only
   a dir this harness made, and keeps the old results aside in ``.overwritten/`` until the new
   run has finished: a failed run puts them back);
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
PROVENANCE = "provenance.json"
#: where ``overwrite=true`` keeps the old results while the new run computes
STASH = ".overwritten"
#: the replaced run's ``.hydra/``, moved aside by the command line before Hydra writes the new
#: one (stashed with the results; a failed run puts it back)
PREVIOUS_HYDRA = ".hydra.previous"


@dataclass
class Result:
    """What an experiment's ``compute`` returns: its tables and what presentation needs."""

    tables: dict
    random_weights: bool = False
    extra: dict = field(default_factory=dict)  # JSON-able; goes into provenance.json
    objects: dict = field(default_factory=dict)  # anything else ``present`` needs (images ...)
    #: what the networks' weights are (random | unverified | verified | trained here | user
    #: network); None: the runner derives it from the networks the experiment loaded
    weights_status: str | None = None

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
    fix = "choose a writable output_root=<dir>"
    parent = results.ensure_dir(Path(parent), fix=fix)
    for i in range(10_000):
        cand = parent / (stem if i == 0 else f"{stem}-{i}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            continue
        except OSError as exc:
            if results.is_write_error(exc):
                raise results.write_error(cand, exc, fix) from None
            raise
    raise HarnessError(f"cannot create a new run dir under {parent}")


def result_entries(run_dir: Path) -> list[Path]:
    """What a run dir holds besides Hydra's own ``.hydra/`` for this run."""
    if not run_dir.is_dir():
        return []
    return [p for p in run_dir.iterdir() if p.name not in (HYDRA_DIR, STASH)]


def made_by_harness(run_dir: Path) -> bool:
    """A run dir this harness made: every run writes its INCOMPLETE marker first and its
    provenance last (Hydra's ``.hydra/`` is no proof: Hydra makes it in any dir it is given)."""
    return any((Path(run_dir) / m).is_file() for m in (PROVENANCE, INCOMPLETE))


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse a run dir that holds results unless ``overwrite=true``, and refuse to overwrite
    a directory this harness did not make (``hydra.run.dir=<your images>``)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"hydra.run.dir={run_dir} is a file; choose a directory for the results")
    for parent in run_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"hydra.run.dir={run_dir}: {parent} is a file; choose a directory for the "
                    "results"
                )
            break
    if (run_dir / STASH).exists():
        raise ConfigError(
            f"a previous overwrite of {run_dir} did not finish: its old results are in "
            f"{run_dir / STASH}; move them back (or delete that folder), then run again"
        )
    held = result_entries(run_dir)
    names = ", ".join(sorted(p.name for p in held)[:4]) + (", ..." if len(held) > 4 else "")
    if held and not overwrite:
        raise ConfigError(
            f"run dir {run_dir} already holds results ({names}); choose another hydra.run.dir, "
            "or pass overwrite=true to replace them"
        )
    if held and not made_by_harness(run_dir):
        raise ConfigError(
            f"overwrite=true replaces only a run dir made by inception-note (with "
            f"{PROVENANCE} or {INCOMPLETE}); {run_dir} holds other files ({names}): choose "
            "another hydra.run.dir"
        )


def check_inputs_outside(run_dir: Path, values) -> None:
    """With overwrite=true, no input of the run (a dataset root, an npz, reference stats ...)
    may lie inside the run dir whose old contents are replaced."""
    run_dir = Path(run_dir).expanduser().resolve()
    for path, value in _strings(values):
        if not value or value.startswith(("${", "random:", "pretrained")):
            continue
        candidate = value.split(":", 1)[1] if value.startswith(("file:", "ported:")) else value
        candidate = candidate.rsplit(":", 1)[0] if path.endswith("callable") else candidate
        try:
            p = Path(candidate).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if p.exists() and (p == run_dir or run_dir in p.parents):
            raise ConfigError(
                f"{path}={value} lies inside hydra.run.dir={run_dir}, whose results "
                "overwrite=true replaces; choose another hydra.run.dir"
            )


def _strings(values, path: str = ""):
    if isinstance(values, dict):
        for k, v in values.items():
            if k != "hydra":
                yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(values, str):
        yield path, values


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
        if overwrite:
            check_inputs_outside(self.run_dir, self.cfg)
        results.ensure_dir(self.run_dir, fix="choose a writable hydra.run.dir= or output_root=")
        # overwrite=true: the old results wait aside until the new run has finished
        self.stash: Path | None = None
        held = result_entries(self.run_dir)
        if held:
            self.stash = self.run_dir / STASH
            self.stash.mkdir()
            for p in held:
                p.rename(self.stash / p.name)
        self.random_weights = False
        #: the run's weights status (:func:`derive_weights_status`): "unverified" puts
        #: UNVERIFIED WEIGHTS on every output as random_weights puts RANDOM WEIGHTS
        self.weights_status: str | None = None
        self.networks: list = []  # what each network the run loaded is (provenance.json)
        self.pending_error: HarnessError | None = None  # raised after provenance (strict mode)
        self.started = prov.now_iso()
        self.outputs: dict = {}
        self.tables: dict = {}
        try:
            self._marker({"status": "running"})
        except BaseException:  # e.g. a full disk: the replaced results go back at once
            self._restore()
            raise

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
        """Leave the marker with the error line; remove a dir this run created and never used;
        with overwrite=true, put the old results back (the new run left nothing usable)."""
        if self.stash is not None:
            self._restore()
            return
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

    def _restore(self) -> None:
        """Put the results this run was to replace back (and their ``.hydra/``)."""
        if self.stash is None:
            return
        for p in result_entries(self.run_dir):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        for p in self.stash.iterdir():
            p.rename(self.run_dir / p.name)
        self.stash.rmdir()
        self.stash = None
        previous = self.run_dir / PREVIOUS_HYDRA
        if previous.is_dir():
            shutil.rmtree(self.run_dir / HYDRA_DIR, ignore_errors=True)
            previous.rename(self.run_dir / HYDRA_DIR)

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
            weights_status=self.weights_status,
        )
        self.outputs[name] = {k: str(v) for k, v in paths.items()}
        if "csv" in paths:  # what collect checks a job's table against
            self.outputs[name]["rows"] = int(len(df))
            self.outputs[name]["sha256"] = prov.sha256_file(paths["csv"])
        self.tables[name] = df
        if not quiet:
            banner = results.weights_banner(self.random_weights, self.weights_status)
            shown = f"[{banner}] {title}" if banner else title
            results.print_table(df, shown, columns=print_columns)
        return paths

    def figure(self, fig, name: str) -> dict:
        paths = results.save_figure(
            fig,
            self.run_dir,
            name,
            random_weights=self.random_weights,
            weights_status=self.weights_status,
        )
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
        if self.networks:
            extra.setdefault("networks", self.networks)
        results.write_provenance(
            self.run_dir,
            self.cfg,
            extra={"experiment": self.name, "outputs": self.outputs, **extra},
            started=self.started,
            random_weights=self.random_weights,
            weights_status=self.weights_status,
        )
        (self.run_dir / INCOMPLETE).unlink(missing_ok=True)
        if self.stash is not None:  # the replaced results, kept until now
            shutil.rmtree(self.stash, ignore_errors=True)
            self.stash = None
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
    from .inputs import recording_networks, recording_sources, sources_provenance

    try:
        with recording_sources() as loaded, recording_networks() as nets:
            result = module.compute(cfg)
        run.random_weights = bool(result.random_weights)
        run.networks = nets
        run.weights_status = derive_weights_status(result, nets)
        module.present(result, run)
        strict_unverified(run, cfg)
        extra = {"image_sources": sources_provenance(loaded)} if loaded else {}
        finished = run.finish(result, **extra)
    except BaseException as exc:
        run.fail(exc)
        raise
    if run.pending_error is not None:  # the run is complete; its verdict is an exit code
        raise run.pending_error
    return finished


def derive_weights_status(result: Result, networks: list) -> str | None:
    """The run's weights status: the experiment's own (``Result.weights_status``), random when
    it says ``random_weights``, else the most alarming status of the networks it loaded (the
    optional comparisons of ``inputs.load_available`` excepted, as for random weights)."""
    from .backbones import weights as W

    if result.random_weights:
        return W.RANDOM
    if result.weights_status:
        return result.weights_status
    return W.worst_status(n["weights_status"] for n in networks if n.get("counts", True))


class UnverifiedWeightsFailure(HarnessError):
    """``strict=true`` and the weights match no published file (the outputs are written first)."""

    exit_code = 3


def strict_unverified(run: Run, cfg) -> None:
    """``strict=true`` turns UNVERIFIED WEIGHTS into a failure (exit code 3, like a FAILed
    check), after every output is written."""
    from .backbones import weights as W
    from .config import as_bool

    if cfg.get("strict") is None or not as_bool(cfg.get("strict"), "strict"):
        return
    if run.random_weights or run.weights_status != W.UNVERIFIED:
        return
    which = "; ".join(
        f"{n['backbone']} ({n['weights']}, sha256 {str(n.get('weights_sha256') or '?')[:12]}…)"
        for n in run.networks
        if n["weights_status"] == W.UNVERIFIED and n.get("counts", True)
    )
    line = (
        f"FAIL weights: UNVERIFIED WEIGHTS ({which}) match no published file (README: 'Known "
        "weights files'); strict=true accepts only weights with a published hash: use one of "
        "those files (the 2015 network: backbone=tf2015_torch "
        "weights=file:<...-inception-2015-12-05-6726825d.pth>)"
    )
    print(f"\n{line}")
    previous = run.pending_error
    run.pending_error = (
        type(previous)(f"{previous}; and {line}")
        if previous is not None
        else UnverifiedWeightsFailure(line)
    )


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
