"""Peers' conventions as data: ``conf/protocol/<name>.yaml`` sets every knob of one tool at once.

A protocol is a backbone (composed by Hydra from ``conf/backbone/<network>.yaml`` plus the
protocol's knobs: resize, bias, classes, input range), a split convention
(:class:`~harness.scores.SplitSpec`: ``n_splits``, ``assign``, ``shuffle``, ``seed``, ``ddof``)
and the peer version and file it mirrors (``mirrors``; the YAML's comment says what exactly).
``protocol=<name>`` on the command line applies it to the run (:func:`apply`): the split settings
always, the backbone where the experiment has one ``backbone``.  A key the protocol sets may not
also be given by hand (a one-line error), so a number is never half one tool's convention.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf, open_dict

from . import settings as S
from .errors import ConfigError
from .experiment_registry import CONF_DIR
from .scores import SplitSpec

PROTOCOL_DIR = CONF_DIR / "protocol"
#: keys a protocol sets, besides the backbone node
SPLIT_KEYS = ("n_splits", "ddof", "splits")
#: run-wide backbone settings a protocol leaves to the run
RUN_KEYS = ("device", "batch_size", "cache_dir")


@dataclass(frozen=True)
class Protocol:
    name: str
    mirrors: str
    backbone: dict
    splits: SplitSpec

    def describe(self) -> str:
        return (
            f"{self.name}: {self.splits.label()}, {self.splits.n_splits} splits, "
            f"ddof {self.splits.ddof}; mirrors {self.mirrors}"
        )


def names() -> list[str]:
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


def load_protocol(name: str) -> Protocol:
    """A preset read from its YAML without composing it (its network named, knobs as given)."""
    path = PROTOCOL_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown protocol {name!r}; valid: {', '.join(names())}")
    d = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    net = next(
        (
            str(v)
            for e in d.pop("defaults", [])
            if isinstance(e, dict)
            for k, v in e.items()
            if k.endswith("@backbone")
        ),
        None,
    )
    return from_node({**d, "backbone": {"name": net, **(d.get("backbone") or {})}})


def from_node(node) -> Protocol:
    """A composed protocol node (``cfg.protocol`` or one of ``cfg.protocols``) as a Protocol."""
    d = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    s = d.get("splits") or {}
    seed = s.get("seed")
    return Protocol(
        d["name"],
        d.get("mirrors", ""),
        dict(d.get("backbone") or {}),
        SplitSpec(
            int(d["n_splits"]),
            s.get("assign", "floor"),
            s.get("shuffle", "none"),
            None if seed is None else int(seed),
            int(d.get("ddof", 0)),
        ),
    )


def _overridden(overrides: list[str], key: str) -> bool:
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    return any(k == key or k.startswith(key + ".") for k in keys)


def apply(cfg: DictConfig, overrides: list[str]) -> None:
    """Apply ``cfg.protocol`` (a composed preset, or null) to ``cfg`` in place."""
    node = cfg.get("protocol")
    if node is None:
        return
    p = from_node(node)
    for key in SPLIT_KEYS:
        if _overridden(overrides, key):
            raise ConfigError(
                f"protocol={p.name} sets {key}; drop {key}=... from the command "
                f"or the protocol (it mirrors {p.mirrors})"
            )
    b = cfg.get("backbone")
    single = isinstance(b, DictConfig) and "name" in b
    if single:
        for key in p.backbone:
            if key not in RUN_KEYS and (
                _overridden(overrides, f"backbone.{key}")
                # the network itself is set by backbone=<name> (not by any backbone.<knob>=)
                or (
                    key == "name"
                    and any(o.lstrip("+~").split("=")[0] == "backbone" for o in overrides)
                )
            ):
                what = "backbone" if key == "name" else f"backbone.{key}"
                raise ConfigError(
                    f"protocol={p.name} sets {what}={p.backbone[key]}; drop {what}=... from the "
                    "command or the protocol"
                )
    with open_dict(cfg):
        cfg.n_splits = p.splits.n_splits
        cfg.ddof = p.splits.ddof
        cfg.splits = {"assign": p.splits.assign, "shuffle": p.splits.shuffle, "seed": p.splits.seed}
        if single:
            keep = {k: b[k] for k in RUN_KEYS if k in b and _overridden(overrides, f"backbone.{k}")}
            cfg.backbone = {**p.backbone, **keep}


# ---------------------------------------------------------------------------------- schema
def _schema() -> S.Schema:
    """A composed protocol node: a preset file plus the backbone's own YAML."""
    from .config import split_schema

    splits = split_schema()
    return S.Schema(
        [
            S.Setting("name", S.Choice(tuple(names())), None, "the preset (conf/protocol/)"),
            S.Setting("mirrors", S.Str(), "", "the peer version and file it mirrors"),
            S.Node("backbone", "backbone", None, doc="the tool's network and knobs"),
            *splits.entries.values(),
        ],
        checks=[check_unmodified],
    )


def check_unmodified(values: dict, prefix: str) -> None:
    """A preset is a tool's convention: a value that differs from its file (or, for knobs the
    file leaves to the backbone, from the backbone's default) would name rows after a tool
    that does not compute them that way.  Run-wide keys (device, batch size) and where the
    weights come from (weights, their pin, allow_download) are free.
    """
    preset = load_protocol(values["name"])
    got = from_node(values)
    for key in ("n_splits", "ddof"):
        if getattr(got.splits, key) != getattr(preset.splits, key):
            _changed(prefix, key, getattr(got.splits, key), getattr(preset.splits, key), preset)
    for key in ("assign", "shuffle", "seed"):
        if getattr(got.splits, key) != getattr(preset.splits, key):
            _changed(
                prefix,
                f"splits.{key}",
                getattr(got.splits, key),
                getattr(preset.splits, key),
                preset,
            )
    b = values.get("backbone") or {}
    if b.get("name") != preset.backbone.get("name"):
        _changed(prefix, "backbone", b.get("name"), preset.backbone.get("name"), preset)
    from .backbones import backbone_class

    defaults = backbone_class(b["name"]).settings().defaults()
    for key, value in b.items():
        if key in (*RUN_KEYS, "weights", "weights_sha256", "allow_download", "name"):
            continue
        expected = preset.backbone.get(key, defaults.get(key))
        if value != expected or type(value) is not type(expected):
            _changed(prefix, f"backbone.{key}", value, expected, preset)


def _changed(prefix: str, key: str, value, expected, preset: Protocol) -> None:
    raise ConfigError(
        f"{prefix}{key}={S._show_bare(value)}: protocol {preset.name} is {preset.mirrors}'s "
        f"convention ({key}={S._show_bare(expected)}); a preset cannot be changed; set the run's "
        "own keys in an experiment without the preset instead"
    )


S.register_group("protocol", lambda name: _schema(), names)


#: library names renamed in issue 28: the old name is an error naming the new one
RENAMED = {"load": "harness.protocols.load_protocol"}


def __getattr__(name: str):
    if name in RENAMED:
        raise AttributeError(f"{__name__}.{name} was renamed: use {RENAMED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
