"""The experiments that exist: one ``conf/experiment/<name>.yaml`` and one
``experiments/<name>.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def available_experiments() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def describe(name: str) -> str:
    """The first comment line after ``# @package _global_`` in the experiment's YAML."""
    path = CONF_DIR / "experiment" / f"{name}.yaml"
    for line in path.read_text().splitlines()[1:]:
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def experiment_module(name: str):
    from .errors import HarnessError

    if name not in available_experiments():
        raise HarnessError(
            f"unknown experiment '{name}'; valid experiments: {', '.join(available_experiments())}"
        )
    return importlib.import_module(f"experiments.{name}")
