"""Strict configuration: every value has the type of its default, and no key is invented.

Hydra and YAML are liberal: ``bias=no`` arrives as the string ``"no"`` (and ``bool("no")`` is
True), ``+n_split=10`` adds a key nobody reads.  Before an experiment runs, :func:`validate`
compares the composed config with the defaults of the same experiment and config-group choices
(composed without the user's value overrides):

* a key that is not in the defaults is an error (with the closest valid name), except inside the
  free-form mappings listed in :data:`FREE_FORM`;
* a value must have the type of its default: booleans only ``true``/``false``, integers only
  integers, floats also integers, strings only strings, lists only lists (``n_splits`` also takes
  one integer); where the default is ``null`` the type comes from :data:`NULLABLE`.

:func:`as_bool` is the same rule for library callers of constructors.
"""

from __future__ import annotations

import difflib
import fnmatch

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import ConfigError, HarnessError

#: Mappings whose keys are the user's own (generator kwargs, paper sub-runs, Hydra's node).
FREE_FORM = ("hydra", "*.kwargs", "paper.experiments", "protocol_presets")

#: Types of keys whose default is null (matched on the last path component).
NULLABLE = {
    "weights": str,
    "weights_sha256": str,
    "bias": bool,
    "align_corners": bool,
    "n": int,
    "order_seed": int,
    "value_range": str,
    "key": str,
    "label_file": str,
    "identity": str,
    "n_images": int,
    "n_samples": int,
    "reference": dict,
    "stats": str,
    "protocol": str,
    "labels_key": str,
    "checks": list,
    "reference_stats": str,
    "shard": str,
    "seed": int,
    "handle": str,
    "root": str,
    "path": str,
    "only_backbone": str,
    "only_dataset": str,
    "out": str,
}

#: Keys that take one integer or a list of integers.
INT_OR_LIST = ("n_splits",)
#: Keys that take an integer or "auto" (sanity's kid.subset_size).
INT_OR_AUTO = ("subset_size", "num_workers")


def as_bool(value, name: str) -> bool:
    """``value`` if it is a real boolean; a one-line error for ``"no"``, ``1``, ``"false"`` ..."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def as_optional_bool(value, name: str):
    return None if value is None else as_bool(value, name)


def _plain(node):
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=False)
    return node


def _free_form(path: str) -> bool:
    return any(
        path == pat
        or fnmatch.fnmatch(path, pat)
        or path.startswith(pat + ".")
        or fnmatch.fnmatch(path, pat + ".*")
        for pat in FREE_FORM
    )


def _type_name(t) -> str:
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(t, t.__name__)


def _check_value(path: str, value, default) -> None:
    leaf = path.rsplit(".", 1)[-1]
    if isinstance(value, str) and value.startswith("${"):
        return  # an interpolation: checked where it resolves
    if default is None:
        expected = NULLABLE.get(leaf)
        if expected is None or value is None:
            return
    else:
        expected = type(default)
        if value is None:
            if leaf in NULLABLE:
                return
            raise ConfigError(f"{path} must be {_type_name(expected)}, got null")
    if leaf in INT_OR_LIST and (isinstance(value, int) and not isinstance(value, bool)):
        return
    if leaf in INT_OR_AUTO:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            return
        raise ConfigError(f"{path} must be an integer or auto, got {value!r}")
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }.get(expected, lambda v: True)(value)
    if not ok:
        raise ConfigError(f"{path} must be {_type_name(expected)}, got {value!r}")
    if leaf in INT_OR_LIST and isinstance(value, list):
        bad = [v for v in value if not (isinstance(v, int) and not isinstance(v, bool))]
        if bad or not value:
            raise ConfigError(
                f"{path} must be an integer or a non-empty list of integers, got {value!r}"
            )


def _resolved(cfg) -> dict:
    """The config as plain data with interpolations resolved (``???`` stays as it is)."""
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(f"config does not resolve: {' '.join(str(exc).split())}") from None


def compare(final: dict, defaults: dict, path: str = "") -> None:
    """Raise :class:`ConfigError` for the first unknown key or mistyped value in ``final``."""
    for key, value in final.items():
        p = f"{path}{key}"
        if _free_form(p):
            continue
        if key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = f"; did you mean '{path}{close[0]}'?" if close else ""
            where = f"under '{path[:-1]}'" if path else "at the top level"
            raise ConfigError(f"unknown config key '{p}' (no such key {where}){hint}")
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict):
            compare(value, default, p + ".")
        elif isinstance(default, dict) and value is not None:
            raise ConfigError(f"{p} is a config group/mapping; got {value!r}")
        else:
            _check_value(p, value, default)


def group_overrides(overrides: list[str], conf_dir) -> list[str]:
    """The overrides that choose or delete config groups/keys (not plain values)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    keep = []
    for raw, ov in zip(overrides, parsed):
        group = ov.key_or_group
        if ov.is_delete() or group.startswith("hydra") or (conf_dir / group).is_dir():
            keep.append(raw)
    return keep


def validate(cfg, overrides: list[str], compose_defaults) -> None:
    """Check ``cfg`` (composed with ``overrides``) against the defaults of its config groups.

    ``compose_defaults(group_overrides)`` composes the same experiment with only the overrides
    that choose config groups; the user's value overrides are what is being checked.
    """
    from .experiment_registry import CONF_DIR

    defaults = compose_defaults(group_overrides(overrides, CONF_DIR))
    final = _resolved(cfg)
    base = _resolved(defaults)
    final.pop("hydra", None)
    base.pop("hydra", None)
    compare(final, base)


# ------------------------------------------------------------------------------ split settings
def split_counts(value, name: str = "n_splits") -> list[int]:
    """``n_splits`` as a list, whether the user wrote one integer or a list."""
    value = _plain(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = [int(value)]
    elif isinstance(value, (list, tuple)) and value:
        values = [int(v) for v in value]
    else:
        raise ConfigError(
            f"{name} must be an integer or a non-empty list of integers, got {value!r}"
        )
    if any(v < 1 for v in values):
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return values


def single_split_count(value, name: str = "n_splits") -> int:
    """One split count for experiments that report one IS (a one-element list is fine)."""
    values = split_counts(value, name)
    if len(values) != 1:
        raise ConfigError(
            f"{name}={values}: this experiment reports one IS; give one number "
            "(sweeps over the split count: +experiment=splits)"
        )
    return values[0]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise HarnessError(message)


def split_spec(cfg, n_splits: int | None = None, ddof: int | None = None):
    """The run's :class:`~harness.scores.SplitSpec` from ``splits.*``, ``n_splits`` and ``ddof``."""
    from .scores import SplitSpec

    s = cfg.get("splits") or {}
    k = single_split_count(cfg.get("n_splits", 10)) if n_splits is None else int(n_splits)
    d = int(cfg.get("ddof", 0)) if ddof is None else int(ddof)
    seed = s.get("seed")
    return SplitSpec(
        k,
        str(s.get("assign", "floor")),
        str(s.get("shuffle", "none")),
        None if seed is None else int(seed),
        d,
    )
