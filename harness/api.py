"""Run experiments from Python, without the Hydra command line.

>>> from harness.api import compose, run_experiment            # doctest: +SKIP
>>> cfg = compose("toy_gaussian", ["toy.mc_samples=10000"])     # doctest: +SKIP
>>> out = run_experiment("toy_gaussian", ["toy.mc_samples=10000"], run_dir="/tmp/toy")  # doctest: +SKIP
>>> out.table[["generator", "is_exact"]]                        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .experiment_registry import CONF_DIR, experiment_module


def compose(experiment: str, overrides: list[str] | None = None) -> DictConfig:
    """The same config ``python -m harness +experiment=<experiment> <overrides>`` would see."""
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    experiment_module(experiment)  # one-line error for unknown names
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR), job_name="harness"):
        cfg = _compose("config", overrides=[f"+experiment={experiment}", *(overrides or [])])
    return cfg


def run_with_config(cfg: DictConfig, run_dir):
    """Run the experiment named by ``cfg.experiment_name`` into ``run_dir``."""
    name = cfg.get("experiment_name")
    module = experiment_module(name)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return module.run(cfg, run_dir)


def run_experiment(experiment: str, overrides: list[str] | None = None, run_dir=None):
    """Compose the config, pick a run dir (default like the CLI's) and run the experiment."""
    cfg = compose(experiment, overrides)
    if run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        run_dir = Path(cfg.output_root) / experiment / stamp
    return run_with_config(cfg, run_dir)


def to_container(cfg) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)
