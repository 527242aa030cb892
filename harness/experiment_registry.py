"""The experiments that exist: one ``conf/experiment/<name>.yaml`` and one
``experiments/<name>.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

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
    import difflib

    valid = available_experiments()
    close = difflib.get_close_matches(str(name), valid, n=1)
    return f"unknown experiment '{name}'; valid experiments: {', '.join(valid)}" + (
        f"; did you mean +experiment={close[0]}?" if close else ""
    )


def experiment_module(name: str):
    from .errors import HarnessError

    if name not in available_experiments():
        raise HarnessError(unknown_experiment(name))
    return importlib.import_module(f"experiments.{name}")


def experiment_settings(name: str):
    """The experiment's :class:`~harness.settings.ExperimentSettings` (its module's SETTINGS)."""
    return experiment_module(name).SETTINGS
