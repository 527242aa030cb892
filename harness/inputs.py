"""The one way experiments get their networks and images.

An experiment's config names its inputs as nodes: ``backbone`` (one network) or ``backbones``
(name -> network), ``other_backbones`` (the sanity report's spread), ``dataset`` and
``reference`` (one image source each) or ``datasets`` (key -> source).  :func:`load` builds the
ones an experiment asks for, in one pass, and

* applies the global ``weights=`` override to every network, here and only here (with
  ``distinct_random_weights=true`` network number i gets ``random:<seed + i>``);
* passes ``cache.dir`` to every network (random and ported weights are cached there);
* reports every missing weights file and dataset in one message before anything is computed.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from . import backbones, data
from .backbones import weights as W
from .config import as_bool
from .errors import ConfigError, HarnessError, MissingInputError

#: the image sources built during a run (key, source), for provenance.json
_RECORDING: contextvars.ContextVar = contextvars.ContextVar("recorded_sources", default=None)
#: what each network built during a run is (its weights status), for the runner's banner
_NETWORKS: contextvars.ContextVar = contextvars.ContextVar("recorded_networks", default=None)


@contextlib.contextmanager
def recording_networks():
    """Collect, for every network :func:`build_backbone` makes inside the block, its backbone,
    weights, sha256 and weights status (the runner derives the run's banner from them; networks
    of :func:`load_available`, optional comparisons, are recorded with ``counts: False``)."""
    recorded: list = []
    token = _NETWORKS.set(recorded)
    try:
        yield recorded
    finally:
        _NETWORKS.reset(token)


def _record_network(net, counts: bool = True) -> None:
    recorded = _NETWORKS.get()
    if recorded is None:
        return
    entry = {
        "backbone": net.name,
        "weights": str(net.weights_spec),
        "weights_sha256": net.weights_info.get("weights_sha256"),
        "weights_status": net.weights_status,
        "weights_name": net.weights_name,
        "counts": counts,
    }
    if entry not in recorded:
        recorded.append(entry)


@contextlib.contextmanager
def recording_sources():
    """Collect every image source :func:`load` builds inside the block (the runner records
    their full provenance: skipped files, decode handling, fingerprints)."""
    recorded: list = []
    token = _RECORDING.set(recorded)
    try:
        yield recorded
    finally:
        _RECORDING.reset(token)


def sources_provenance(recorded) -> dict:
    """key -> the source's provenance (a list when a key was built more than once)."""
    out: dict = {}
    for key, src in recorded:
        try:
            p = src.provenance()
        except HarnessError as exc:
            p = {"dataset": src.kind, "error": str(exc)}
        if key in out:
            out[key] = [*(out[key] if isinstance(out[key], list) else [out[key]]), p]
        else:
            out[key] = p
    return out


BACKBONE_NODES = ("backbone", "backbones", "other_backbones")
DATASET_NODES = ("dataset", "reference", "datasets")


@dataclass
class Inputs:
    nets: dict = field(default_factory=dict)  # key -> Backbone
    sources: dict = field(default_factory=dict)  # key -> ImageSource
    specs: dict = field(default_factory=dict)  # key -> the backbone spec it was built from

    @property
    def random_weights(self) -> bool:
        return any(n.random_weights for n in self.nets.values())

    @property
    def weights_status(self) -> str | None:
        """The most alarming weights status of the networks (random > unverified > ...)."""
        return W.worst_status(n.weights_status for n in self.nets.values())

    def require_splits(self, n_splits: int, keys=None, need_logits: bool = True) -> None:
        """Refuse, before any logits are computed, a split count above a source's size (and,
        with ``need_logits``, a network without a classifier head: IS needs class
        probabilities)."""
        if need_logits:
            for net in self.nets.values():
                net.require_logits()
        for key, src in self.sources.items():
            if (keys is None or key in keys) and len(src) < n_splits:
                raise ConfigError(
                    f"n_splits={n_splits} is more than the N={len(src)} samples of "
                    f"{key}; use at most {len(src)} splits (or more samples)"
                )

    def net(self, key: str = "backbone"):
        return self.nets[key]

    def source(self, key: str = "dataset"):
        return self.sources[key]


def _container(node) -> dict:
    return (
        OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    )


def _nodes(cfg, name: str) -> dict:
    """key -> config dict of one named input node (a single node or a mapping of nodes)."""
    node = cfg.get(name)
    if node is None:
        return {}
    d = _container(node)
    if "name" in d and not isinstance(d["name"], dict):
        return {name: d}
    return {k: v for k, v in d.items() if isinstance(v, dict)}


def cache_dir_of(cfg):
    """Where derived files (random/ported weights, extracted npz members) go: ``cache.dir``, or
    nowhere on disk with ``cache.enabled=false`` (built in memory / temporary files)."""
    c = cfg.get("cache") or {}
    if not as_bool(c.get("enabled", True), "cache.enabled"):
        return W.NO_DISK_CACHE
    return c.get("dir")


def backbone_specs(cfg, nodes=BACKBONE_NODES) -> dict:
    """key -> backbone spec with the run-wide settings applied (weights override, cache dir)."""
    specs = {}
    for name in nodes:
        specs.update(_nodes(cfg, name))
    weights = cfg.get("weights")
    distinct = bool(cfg.get("distinct_random_weights", False))
    cache_dir = cache_dir_of(cfg)
    out = {}
    for i, (key, spec) in enumerate(specs.items()):
        spec = dict(spec)
        if weights:
            w = str(weights)
            if distinct and w.startswith("random:"):
                w = f"random:{int(w.split(':', 1)[1]) + i}"
            spec["weights"] = w
        if cache_dir is not None:
            spec["cache_dir"] = cache_dir
        out[key] = spec
    return out


def restrict(cfg, keep: dict):
    """A copy of ``cfg`` whose input nodes hold only the chosen key (``{node: key or None}``);
    an unknown key is a one-line error naming the valid ones."""
    from omegaconf import OmegaConf, open_dict

    chosen = {n: k for n, k in keep.items() if k is not None}
    if not chosen:
        return cfg
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    for node, key in chosen.items():
        valid = list((cfg.get(node) or {}).keys())
        if key not in valid:
            raise ConfigError(f"{node}: no key {key!r}; valid: {', '.join(map(str, valid))}")
        with open_dict(out):
            out[node] = {key: cfg[node][key]}
    return out


def build_backbone(spec: dict, **overrides):
    """One network from a spec (plus knob overrides, e.g. another resize for the same net)."""
    net = backbones.from_config({**spec, **overrides})
    _record_network(net)
    return net


def load_inputs(cfg, nets=BACKBONE_NODES, sources=DATASET_NODES, source_overrides=None) -> Inputs:
    """Build the networks and image sources an experiment asks for; all missing at once.

    ``nets``/``sources``: which input nodes to build (names from :data:`BACKBONE_NODES` and
    :data:`DATASET_NODES`); ``source_overrides``: key -> parameters replacing the config's.
    """
    for name in (*nets, *sources):
        if name not in BACKBONE_NODES + DATASET_NODES:
            raise ConfigError(f"unknown input node {name!r}")
    missing, out = [], Inputs()
    out.specs = backbone_specs(cfg, nets)
    for key, spec in out.specs.items():
        try:
            out.nets[key] = build_backbone(spec)
        except MissingInputError as exc:
            missing.extend(exc.items)
    cache_dir = cache_dir_of(cfg)
    for name in sources:
        for key, params in _nodes(cfg, name).items():
            params = {**params, **(source_overrides or {}).get(key, {})}
            if (
                cache_dir is not None
                and "cache_dir" in data.source_class(params["name"]).settings()
            ):
                params.setdefault("cache_dir", cache_dir)
            try:
                out.sources[key] = data.from_config(params)
                recorded = _RECORDING.get()
                if recorded is not None:
                    recorded.append((key, out.sources[key]))
            except MissingInputError as exc:
                missing.extend(exc.items)
    if missing:
        missing = list(dict.fromkeys(missing))  # one file needed twice is reported once
        hint = (
            "; or run with weights=random:<seed> for a labelled smoke run"
            if any(m.startswith("backbone") for m in missing)
            else ""
        )
        raise MissingInputError(
            f"{len(missing)} input(s) missing, nothing was computed: " + " | ".join(missing) + hint,
            items=missing,
        )
    return out


def load_available(cfg, node: str, seconds: dict | None = None) -> tuple[dict, dict]:
    """The networks of ``node`` whose weights are present, and why each other one is not.

    For optional comparisons (the sanity report's spread): a missing file skips that network.
    ``seconds``: filled with key -> wall time of building each network.
    """
    nets, missing = {}, {}
    for key, spec in backbone_specs(cfg, (node,)).items():
        t0 = time.perf_counter()
        try:
            nets[key] = backbones.from_config(spec)
            if seconds is not None:
                seconds[key] = time.perf_counter() - t0
            _record_network(nets[key], counts=False)
        except MissingInputError as exc:
            missing[key] = str(exc)
    return nets, missing


#: library names renamed in issue 28: the old name is an error naming the new one
RENAMED = {"load": "harness.inputs.load_inputs"}


def __getattr__(name: str):
    if name in RENAMED:
        raise AttributeError(f"{__name__}.{name} was renamed: use {RENAMED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
