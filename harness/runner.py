"""What every experiment does with its run dir: tables, figures, provenance, a printed table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import provenance as prov
from . import results


@dataclass
class ExperimentResult:
    """What an experiment returns: its main table, any extra tables, and the files it wrote."""

    name: str
    run_dir: Path
    table: pd.DataFrame
    tables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class Run:
    """Collects one run's outputs and writes provenance last (so it lists every file)."""

    def __init__(self, name: str, cfg, run_dir, random_weights: bool = False):
        from .api import to_container

        self.name = name
        self.cfg = to_container(cfg) if cfg is not None else {}
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.random_weights = random_weights
        self.started = prov.now_iso()
        self.outputs: dict = {}
        self.tables: dict = {}

    def table(self, df: pd.DataFrame, name: str = "table", title: str = "", notes=None,
              print_columns: list | None = None, quiet: bool = False, keep_columns=None) -> dict:
        paths = results.write_table(df, self.run_dir, name=name, title=title, notes=notes,
                                    random_weights=self.random_weights, keep_columns=keep_columns)
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

    def finish(self, main_table: str = "table", **extra) -> ExperimentResult:
        results.write_provenance(
            self.run_dir, self.cfg, extra={"experiment": self.name, "outputs": self.outputs, **extra},
            started=self.started, random_weights=self.random_weights,
        )
        print(f"\n[{self.name}] outputs in {self.run_dir}")
        table = self.tables.get(main_table, pd.DataFrame())
        return ExperimentResult(self.name, self.run_dir, table, dict(self.tables), dict(self.outputs),
                                dict(extra))
