"""The experiments that exist: one ``conf/experiment/<name>.yaml`` and one
``experiments/<name>.py``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import HarnessError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


EXPERIMENTS_DIR = CONF_DIR.parent / "experiments"


def available_experiments() -> list[str]:
    """Every module of ``experiments/`` (each has a generated ``conf/experiment/<name>.yaml``)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.py") if not p.stem.startswith("_"))


def describe(name: str) -> str:
    """The experiment's one-line description (the first comment line of its generated YAML)."""
    path = CONF_DIR / "experiment" / f"{name}.yaml"
    for line in path.read_text().splitlines()[1:]:
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def unknown_experiment(name: str) -> str:
    """One line: the valid experiments and the closest one to ``name``."""
    valid = available_experiments()
    close = difflib.get_close_matches(str(name), valid, n=1)
    return f"unknown experiment '{name}'; valid experiments: {', '.join(valid)}" + (
        f"; did you mean +experiment={close[0]}?" if close else ""
    )


def experiment_module(name: str):
    if name not in available_experiments():
        raise HarnessError(unknown_experiment(name))
    return importlib.import_module(f"experiments.{name}")


def experiment_settings(name: str):
    """The experiment's :class:`~harness.settings.ExperimentSettings` (its module's SETTINGS)."""
    return experiment_module(name).SETTINGS


@dataclass(frozen=True)
class Experiment:
    """An experiment's whole contract, read once from its module.

    Required: ``SETTINGS``, ``compute(cfg) -> Result`` (numbers only) and ``present(result,
    run)`` (tables, figures).  Optional (None when the module has none): ``headline(result) ->
    str`` (one line in ``paper``'s summary), ``collect(table[, run_dirs]) -> dict`` /
    ``collect_figures(tables)`` / ``collect_arrays(run_dirs)`` (merging a sweep's jobs), and
    ``paper_tables(run_dir)``, ``paper_figures(run_dir)``, ``paper_placeholders(runs,
    command)`` (``paper_figs``).  A module function named almost like a hook is an error, so a
    misspelt hook is not silently skipped.
    """

    name: str
    settings: Any
    compute: Callable
    present: Callable
    headline: Callable | None = None
    collect: Callable | None = None
    collect_figures: Callable | None = None
    collect_arrays: Callable | None = None
    paper_tables: Callable | None = None
    paper_figures: Callable | None = None
    paper_placeholders: Callable | None = None


#: the optional hooks of :class:`Experiment`
OPTIONAL_HOOKS = tuple(f.name for f in fields(Experiment) if f.default is None)


def experiment(name: str) -> Experiment:
    """The experiment ``name`` as a typed :class:`Experiment` (unknown name: one-line error)."""
    module = experiment_module(name)
    missing = [a for a in ("SETTINGS", "compute", "present") if not hasattr(module, a)]
    if missing:
        raise HarnessError(f"experiments/{name}.py lacks {', '.join(missing)}")
    hooks = set(OPTIONAL_HOOKS) | {"compute", "present"}
    for attr in vars(module):
        close = difflib.get_close_matches(attr, sorted(hooks), n=1, cutoff=0.85)
        if close and close[0] != attr and callable(getattr(module, attr)):
            raise HarnessError(f"experiments/{name}.py: {attr}() looks like hook {close[0]}()")
    return Experiment(
        name,
        module.SETTINGS,
        module.compute,
        module.present,
        **{h: getattr(module, h, None) for h in OPTIONAL_HOOKS},
    )
