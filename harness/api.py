"""Run experiments from Python, without the Hydra command line.

>>> from harness.api import compose, run_experiment            # doctest: +SKIP
>>> cfg = compose("toy_gaussian", ["toy.mc_samples=10000"])     # doctest: +SKIP
>>> out = run_experiment("toy_gaussian", ["toy.mc_samples=10000"], "/tmp/toy")  # doctest: +SKIP
>>> out.table[["generator", "is_exact"]]                        # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from . import config as config_rules
from . import protocols, runner
from .experiment_registry import CONF_DIR, experiment, experiment_module


def _compose_raw(overrides: list[str]) -> DictConfig:
    """Compose ``config`` with ``overrides`` in a Hydra of our own; a running Hydra app (the CLI)
    gets its global state back afterwards."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(
            version_base="1.3", config_dir=str(CONF_DIR), job_name="harness"
        ):
            return hydra_compose("config", overrides=overrides)
    finally:
        restore_gh_from_backup(backup)


def compose(experiment: str, overrides: list[str] | None = None) -> DictConfig:
    """The (validated) config ``python -m harness +experiment=<experiment> <overrides>`` sees."""
    experiment_module(experiment)  # one-line error for unknown names
    overrides = config_rules.expand_shorthands(experiment, list(overrides or []))
    try:
        cfg = _compose_raw([f"+experiment={experiment}", *overrides])
    except Exception as exc:
        _explain_unknown_option(overrides, exc)
        _explain_unknown_key(experiment, overrides, exc)
        raise
    prepare(cfg, overrides, experiment)
    return cfg


def _explain_unknown_option(overrides: list[str], exc: Exception) -> None:
    """Hydra refuses an unknown option of a config group (``protocol=torch_fidelty``) with its
    option list and its config search path on many lines: say it in one line, with the valid
    options and the closest one."""
    import difflib

    from .errors import ConfigError

    m = re.search(r"Could not find '/?([^']+)/([^'/]+)'", str(exc))
    if m is None:
        return
    group, option = m.group(1), m.group(2)
    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    if not options:
        return
    given = [o for o in overrides if "=" in o and o.split("=", 1)[1].strip() == option]
    key = given[-1].split("=", 1)[0] if given else group  # as typed: +dataset@reference
    close = difflib.get_close_matches(option, options, n=1)
    raise ConfigError(
        f"{key}={option}: no {group} named {option!r}; valid: {', '.join(options)}"
        + (f"; did you mean {key}={close[0]}?" if close else "")
    ) from None


def _explain_unknown_key(experiment: str, overrides: list[str], exc: Exception) -> None:
    """Hydra refuses a key that is not in the config ("Could not override 'dataset.rot'. To
    append to your config use +dataset.rot=..."): say instead which key is meant, from the
    schemas (adding the key with + would only fail later with the same question)."""
    refused, rest = [], list(overrides)
    # every key Hydra refuses (dataset.rot= and reference.rot= together): one at a time
    while len(refused) <= len(overrides):
        m = re.search(r"Could not (?:override|append to) '([^']+)'", str(exc))
        if m is None:
            return
        refused.append(m.group(1))
        rest = [o for o in rest if o.lstrip("+~").split("=", 1)[0] != refused[-1]]
        try:
            values = config_rules.resolved(_compose_raw([f"+experiment={experiment}", *rest]))
            break
        except Exception as again:
            exc = again
    else:
        return
    from . import settings as S
    from .experiment_registry import experiment_settings

    for key in refused:
        S.check_path(config_rules.full_schema(experiment_settings(experiment)), values, key)


def explain_composition(experiment: str, overrides: list[str]) -> None:
    """The one-line errors for what Hydra refuses while composing (an unknown key or group
    option), for a multirun before its jobs start: each sweep (``a,b``, ``range(...)``) at its
    first value; Hydra's own settings left out.  Anything else is left to the jobs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    first: list[str] = []
    try:
        parsed = OverridesParser.create().parse_overrides(
            [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        )
        first = [
            f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}"
            if o.is_sweep_override()
            else o.input_line
            for o in parsed
        ]
        _compose_raw([f"+experiment={experiment}", *first])
    except Exception as exc:  # an override Hydra cannot parse: Hydra says so itself
        if first:
            _explain_unknown_option(first, exc)
            _explain_unknown_key(experiment, first, exc)


def prepare(cfg: DictConfig, overrides: list[str], experiment: str) -> None:
    """Validate a composed config against its schemas and apply its ``protocol`` (in place)."""
    config_rules.validate(cfg, overrides, experiment)
    protocols.apply(cfg, overrides)


def run_with_config(cfg: DictConfig, run_dir):
    """Run the experiment named by ``cfg.experiment_name`` (a validated config) into ``run_dir``."""
    name = cfg.get("experiment_name")
    return runner.execute(experiment(name), name, cfg, Path(run_dir))


def new_run_dir(cfg) -> Path:
    """A fresh, exclusively created ``<output_root>/<experiment>/<timestamp>`` directory."""
    return runner.claim_new_dir(Path(cfg.output_root) / cfg.experiment_name, runner.timestamp())


def run_experiment(experiment: str, overrides: list[str] | None = None, run_dir=None):
    """Compose and validate the config, pick a run dir (like the CLI's) and run the experiment."""
    cfg = compose(experiment, overrides)
    config_rules.check_sources_exist(cfg, experiment)  # before any framework is imported
    return run_with_config(cfg, new_run_dir(cfg) if run_dir is None else run_dir)


def to_container(cfg) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)
