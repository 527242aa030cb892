"""The run-wide settings and config validation.

Every key of every experiment has one schema (:mod:`harness.settings`): the run-wide keys are
declared here (:func:`run_schema`, :func:`split_schema`), a backbone's and an image source's in
their classes, an experiment's in its module (``SETTINGS``).  :func:`validate` checks a composed
config against them before anything runs: an unknown key (with the closest valid name), a value
of the wrong type or out of range, a misspelt choice, a missing required value or a key without
effect in the chosen configuration is one :class:`~harness.errors.ConfigError` line.

:func:`as_bool` is the same rule for library callers of constructors.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from . import settings as S
from .errors import ConfigError, HarnessError
from .scores import ASSIGNS, SHUFFLES


def run_schema() -> S.Schema:
    """Keys every experiment has (``conf/config.yaml``)."""
    return S.Schema(
        [
            S.Setting("experiment_name", S.Str(), None, "set by conf/experiment/<name>.yaml"),
            S.Setting(
                "seed", S.Seed(), 0, "base seed: every seeded step derives from it and records it"
            ),
            S.Setting(
                "device",
                S.Choice(("cpu", "cuda")),
                "cpu",
                "cpu | cuda (cuda fails with a clear error when absent)",
            ),
            S.Setting("progress", S.Bool(), True, "tqdm progress bars (images/s) on long work"),
            S.Setting(
                "verbose",
                S.Bool(),
                False,
                "true: let TensorFlow print its C++ log lines (cuInit, absl)",
            ),
            S.Setting(
                "overwrite",
                S.Bool(),
                False,
                "true: replace the results in an explicit hydra.run.dir made by this harness "
                "(kept until the new run has finished)",
            ),
            S.Setting(
                "output_root",
                S.Path(),
                "results",
                "run dirs: ${output_root}/<experiment>/<timestamp>/",
            ),
            S.Section(
                "cache",
                S.Schema(
                    [
                        S.Setting(
                            "dir",
                            S.Path(),
                            "~/.cache/inception-note",
                            "logits/, weights/ (random and ported), npz/, stats/, corruptions/",
                            yaml="${oc.env:INCEPTION_NOTE_CACHE,'~/.cache/inception-note'}",
                        ),
                        S.Setting(
                            "enabled",
                            S.Bool(),
                            True,
                            "false: compute in memory; nothing on disk is read, written or deleted",
                        ),
                        S.Setting("chunk_size", S.Int(lo=1), 1024, "images per resumable chunk"),
                    ]
                ),
                "Everything the harness caches lives under cache.dir",
            ),
            S.Setting(
                "data_root",
                S.Path(),
                "~/.cache/inception-note/datasets",
                "datasets live here by default",
                yaml="${oc.env:INCEPTION_NOTE_DATA,'~/.cache/inception-note/datasets'}",
            ),
        ]
    )


def split_schema(n_splits_default=10, many: bool = False) -> S.Schema:
    """``n_splits``, ``ddof`` and ``splits.*``: keys of experiments that score IS over splits."""
    count = S.Int(lo=1)
    return S.Schema(
        [
            S.Setting(
                "n_splits",
                S.OneOrList(count, unique=True) if many else count,
                n_splits_default,
                "splits of the classic IS" + (" (a list: one IS per count)" if many else ""),
            ),
            S.Setting("ddof", S.Int(lo=0), 0, "std over splits (0 = the original code's np.std)"),
            S.Section(
                "splits",
                S.Schema(
                    [
                        S.Setting(
                            "assign",
                            S.Choice(ASSIGNS),
                            "floor",
                            "floor (i*N//S, original code) | chunk (torch.chunk) | drop_remainder",
                        ),
                        S.Setting(
                            "shuffle",
                            S.Choice(SHUFFLES),
                            "none",
                            "none | numpy_rng | numpy_randomstate (torch-fidelity) | "
                            "torch_randperm (torchmetrics)",
                        ),
                        S.Setting(
                            "seed",
                            S.Seed(),
                            None,
                            "seed of the shuffle (required unless shuffle=none)",
                            nullable=True,
                            applies=S.When("shuffle", not_in=("none",)),
                            required_when=S.When("shuffle", not_in=("none",)),
                        ),
                    ]
                ),
                "how N samples become splits (IS); every row records it",
            ),
        ]
    )


def _check_weights_override(value: str, path: str) -> None:
    """A run-wide ``weights=`` override: any backbone's spec form (each backbone checks the rest
    when it is built: e.g. which backbones it can run ported weights of)."""
    from .backbones import REGISTRY
    from .backbones.weights import WeightsSpec

    try:
        spec = WeightsSpec.parse(value)
    except HarnessError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    seeds = [spec.seed] if spec.kind == "random" else []
    if spec.kind == "ported":
        if spec.source_backbone not in REGISTRY:
            raise ConfigError(
                f"{path}={value}: unknown backbone {spec.source_backbone!r}; valid: "
                f"{', '.join(REGISTRY)}"
            )
        if spec.source_spec.startswith("random:"):
            try:
                seeds.append(WeightsSpec.parse(spec.source_spec).seed)
            except HarnessError as exc:
                raise ConfigError(f"{path}={value}: {exc}") from None
    for seed in seeds:
        if not 0 <= seed <= S.SEED_MAX:
            raise ConfigError(f"{path}={value}: the seed must be from 0 to {S.SEED_MAX}")


def check_weights_override(values: dict, prefix: str) -> None:
    """The run-wide ``weights=`` replaces every backbone's weights: a backbone's pin
    (``weights_sha256``) or download permission then has no effect."""
    w = values.get("weights")
    if not w:
        return
    from .backbones.weights import WeightsSpec

    kind = WeightsSpec.parse(w).kind
    for path, node in backbone_nodes(values):
        if node.get("weights_sha256") and kind not in ("pretrained", "file"):
            raise ConfigError(
                f"{path}.weights_sha256 has no effect with weights={w} (random and ported weights "
                "are identified by the sha256 of their arrays, recorded in every row); remove it"
            )
        if node.get("allow_download") and kind not in ("pretrained", "ported"):
            raise ConfigError(
                f"{path}.allow_download=true has no effect with weights={w}; remove it"
            )


def backbone_nodes(values: dict):
    """(dotted path, node) of every backbone node of a composed config."""
    for key in ("backbone", "backbones", "other_backbones"):
        node = values.get(key)
        if not isinstance(node, dict):
            continue
        if "name" in node and not isinstance(node["name"], dict):
            yield key, node
        else:
            yield from ((f"{key}.{k}", v) for k, v in node.items() if isinstance(v, dict))


def weights_override(
    doc: str = "overrides every backbone's weights (random:<seed>: a labelled smoke run)",
) -> S.Setting:
    return S.Setting(
        "weights",
        S.Str(what="a weights spec", form=_check_weights_override),
        None,
        doc,
        nullable=True,
    )


def kid_section(
    subsets: int = 100,
    subset_size=1000,
    doc: str = "KID (torch-fidelity's defaults)",
    seed: bool = True,
) -> S.Section:
    """``kid.*``: subsets, subset size (``auto``: min(1000, both set sizes)), seed, matmul."""
    entries = [
        S.Setting("subsets", S.Int(lo=1), subsets, "random subset pairs averaged"),
        S.Setting(
            "subset_size",
            S.IntOrAuto(lo=2),
            subset_size,
            "rows per subset; auto = min(1000, N samples, N reference)",
        ),
    ]
    if seed:
        entries.append(
            S.Setting(
                "seed",
                S.Seed(),
                2020,
                "np.random.RandomState(seed) draws the subsets (as torch-fidelity)",
            )
        )
    entries.append(
        S.Setting(
            "matmul_dtype",
            S.Choice(("float64", "float32")),
            "float64",
            "inner products in float64; float32 (torch-fidelity's) is ~2x faster",
        )
    )
    return S.Section("kid", S.Schema(entries), doc)


def extrapolation_section() -> S.Section:
    """``extrapolation.*``: IS_inf / FID_inf (Chong & Forsyth 2020, harness/extrapolation.py)."""
    return S.Section(
        "extrapolation",
        S.Schema(
            [
                S.Setting("count", S.Int(lo=3), 15, "subset sizes in the fit (the authors: 15)"),
                S.Setting(
                    "n_min",
                    S.Int(lo=2),
                    None,
                    "smallest subset; null = max(N // 10, 2) (dgm-eval's rule below 50,000)",
                    nullable=True,
                ),
                S.Setting("seed", S.Seed(), 0, "draws the subsets (without replacement)"),
            ]
        ),
        "IS_inf and FID_inf: the score on subsets, a least-squares line in 1/N, its intercept",
    )


def cmmd_estimator_setting() -> S.Setting:
    """``cmmd_estimator``: which CMMD estimator (every table that has CMMD records it)."""
    return S.Setting(
        "cmmd_estimator",
        S.Choice(("reference", "unbiased")),
        "reference",
        "CMMD: reference = the authors' code (biased, every pair) | unbiased (U-statistic)",
    )


def survey_section() -> S.Section:
    """``survey.*``: the settings of Xu et al. 2018's metrics (harness/sample_metrics.py)."""
    return S.Section(
        "survey",
        S.Schema(
            [
                S.Setting(
                    "mode_score_form",
                    S.Choice(("xu", "che")),
                    "xu",
                    "xu: exp(E KL(p(y|x)||p(y)) - KL(p(y)||p*(y))) (Xu et al.'s code) | che: "
                    "Che et al.'s formula as written (equals the one-split IS)",
                ),
                S.Setting(
                    "mmd_bandwidth",
                    S.Float(lo=0, lo_open=True),
                    None,
                    "Gaussian kernel sigma of MMD^2; null = the median heuristic (recorded)",
                    nullable=True,
                ),
                S.Setting(
                    "wasserstein_exact_max",
                    S.Int(lo=2),
                    2000,
                    "exact W1 (POT emd2) up to this many rows per set; sliced W1 above (recorded)",
                ),
                cmmd_estimator_setting(),
                S.Setting(
                    "wasserstein_projections", S.Int(lo=1), 500, "directions of the sliced W1"
                ),
                S.Setting("seed", S.Seed(), 0, "median-heuristic subsample and sliced directions"),
            ]
        ),
        "Xu et al. 2018's metrics: Mode Score, kernel MMD^2, Wasserstein-1, 1-NN two-sample test",
    )


def data_copying_section() -> S.Section:
    """``data_copying.*``: Meehan et al.'s C_T (harness/memorization_stats.py)."""
    return S.Section(
        "data_copying",
        S.Schema(
            [
                S.Setting(
                    "cells",
                    S.Int(lo=1),
                    None,
                    "k-means cells on the training set; null = one per 200 held-out samples "
                    "(1 to 50)",
                    nullable=True,
                ),
                S.Setting(
                    "min_per_cell",
                    S.Int(lo=0),
                    20,
                    "a cell counts with more than this many generated samples (the authors: 20)",
                ),
                S.Setting("seed", S.Seed(), 0, "k-means random_state"),
            ]
        ),
        "C_T data-copying statistic (Meehan et al. 2020; << 0: copying) and authenticity",
    )


def prdc_section(k_pr: int = 3, k_dc: int = 5) -> S.Section:
    return S.Section(
        "prdc",
        S.Schema(
            [
                S.Setting("k_precision_recall", S.Int(lo=1), k_pr, "Kynkaanniemi et al. 2019"),
                S.Setting("k_density_coverage", S.Int(lo=1), k_dc, "Naeem et al. 2020"),
                S.Setting(
                    "ball",
                    S.Choice(("open", "closed")),
                    "open",
                    "open: a neighbour counts when strictly inside a k-NN radius (the authors' "
                    "prdc package) | closed: also on it (differs only with exact duplicates)",
                ),
            ]
        ),
        "precision/recall and density/coverage (k nearest neighbours)",
    )


def key_of(name: str, mapping: str):
    """A schema check: setting ``name`` (if set) must be a key of node map ``mapping``."""

    def check(values: dict, prefix: str) -> None:
        value, keys = values.get(name), list((values.get(mapping) or {}).keys())
        if value is not None and value not in keys:
            raise ConfigError(
                f"{prefix}{name}={value}: not a key of {prefix}{mapping}; valid: "
                f"{', '.join(map(str, keys))}"
            )

    return check


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


def resolved(cfg) -> dict:
    """The config as plain data with interpolations resolved (``???`` stays as it is)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        try:
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        except Exception as exc:  # an interpolation that does not resolve
            raise ConfigError(f"config does not resolve: {' '.join(str(exc).split())}") from None
    return {k: v for k, v in dict(cfg).items() if k != "hydra"}


def validate(cfg, overrides: list[str] | None = None, experiment: str | None = None) -> dict:
    """Check a composed config against the schemas of its experiment and its nodes.

    Returns the validated plain values.  ``overrides`` (the user's command-line overrides) are
    used only to say which protocol keys were given by hand.
    """
    from .experiment_registry import experiment_settings

    values = resolved(cfg)
    name = experiment or values.get("experiment_name")
    if name is None:
        raise ConfigError(
            "no experiment chosen; add +experiment=<name> (python -m harness lists them)"
        )
    if values.get("experiment_name") != name:
        raise ConfigError(
            f"experiment_name is set by +experiment={name}; do not override it "
            f"(got {values.get('experiment_name')!r})"
        )
    return validate_tree(values, experiment_settings(name))


# ------------------------------------------------------------------------------ references
def dataset_options() -> list[str]:
    """The options of the ``dataset`` config group (``conf/dataset/<name>.yaml``)."""
    from .experiment_registry import CONF_DIR

    return sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))


#: a value that Hydra would not read as one plain string (a sweep, a list, an interpolation)
_NOT_PLAIN = re.compile(r"[,\[\]{}()'\"]|\$\{|^\s*$")


def expand_shorthands(experiment: str, overrides: list[str]) -> list[str]:
    """``reference=<dir>``, ``reference=<dataset>`` and ``reference=<stats.npz>`` as the overrides
    Hydra understands, for an experiment whose ``reference`` is a dataset node.

    * ``reference=<stats.npz>`` (a name ending in ``.npz``): ``reference_stats=<stats.npz>``
      where the experiment takes statistics (``sanity``), else a one-line error;
    * ``reference=<dataset>`` (a ``conf/dataset`` option, unless a directory of that name
      exists here): ``+dataset@reference=<dataset>`` (no ``+`` where the experiment has a
      reference by default);
    * anything else is a directory: ``+dataset@reference=folder reference.root=<dir>``.

    ``reference=null``, a sweep (``a,b``) and quoted or list values are left to Hydra.
    """
    from .experiment_registry import experiment_settings

    shorthand = [o for o in overrides if re.match(r"^\+{0,2}reference=", o)]
    if not shorthand:
        return list(overrides)
    schema = full_schema(experiment_settings(experiment))
    entry = schema.entries.get("reference")
    if not (isinstance(entry, S.Node) and entry.group == "dataset"):
        return list(overrides)
    add = "" if entry.default is not None else "+"
    options = dataset_options()
    out = []
    for o in overrides:
        if o not in shorthand:
            out.append(o)
            continue
        value = o.split("=", 1)[1].strip()
        if value == "null" or _NOT_PLAIN.search(value):
            out.append(o)
        elif value.lower().endswith(".npz"):
            if "reference_stats" not in schema:
                raise ConfigError(
                    f"reference={value}: {experiment} needs the reference images themselves (their "
                    "features), not statistics; give reference=<dir of images> or "
                    f"reference=<dataset> ({', '.join(options)})"
                )
            out.append(f"reference_stats={value}")
        elif value in options and not Path(value).expanduser().is_dir():
            out.append(f"{add}dataset@reference={value}")
        else:
            out += [f"{add}dataset@reference=folder", f"reference.root={value}"]
    return out


def check_sources_exist(cfg, experiment: str | None = None) -> None:
    """Every dataset node the run will read exists on disk (a folder, an arrays file, CIFAR-10's
    files ...), else one :class:`~harness.errors.MissingInputError` naming each missing input by
    its key (``reference.root``, ``datasets.cifar10_train.root``): a few ``stat`` calls at
    validation, before any framework is imported or network built."""
    from . import data
    from .errors import MissingInputError
    from .experiment_registry import experiment_settings

    values = resolved(cfg)
    settings = experiment_settings(experiment or values.get("experiment_name"))
    nodes = {}
    for name, e in full_schema(settings).entries.items():
        v = values.get(name)
        if getattr(e, "group", None) != "dataset" or not isinstance(v, dict):
            continue
        if isinstance(e, S.Node):
            nodes[name] = v
        elif isinstance(e, S.NodeMap):
            nodes.update({f"{name}.{k}": n for k, n in v.items() if isinstance(n, dict)})
    if settings.sources is not None:
        read = set(settings.sources(values))
        nodes = {p: n for p, n in nodes.items() if p in read or p.split(".", 1)[0] in read}
    items = []
    for path, node in nodes.items():
        cls = data.SOURCES.get(node.get("name"))
        msg = None if cls is None else cls.missing_input(node, path)
        if msg:
            items.append(msg)
    if items:
        raise MissingInputError(
            f"{len(items)} input(s) missing, nothing was computed: " + " | ".join(items),
            items=items,
        )


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


# ---------------------------------------------------------------------------- an experiment's keys
def full_schema(settings: S.ExperimentSettings) -> S.Schema:
    """An experiment's every key: the run-wide ones, the split keys when it computes a
    split-based IS, ``protocol`` when it applies a peer's conventions, and its own."""
    base = run_schema()
    if settings.uses_splits:
        splits = split_schema(settings.n_splits_default, settings.n_splits_many)
        base = base.extend(*splits.entries.values())
    protocol = settings.uses_splits if settings.uses_protocol is None else settings.uses_protocol
    if protocol:
        base = base.extend(
            S.Node("protocol", "protocol", None, doc="a peer's conventions", nullable=True)
        )
    return base.extend(
        *settings.schema.entries.values(),
        checks=[*settings.schema.checks, check_weights_override],
    )


def validate_tree(values: dict, settings: S.ExperimentSettings) -> dict:
    """Validate a whole composed config (plain data, interpolations resolved)."""
    values = {k: v for k, v in values.items() if k != "hydra"}
    schema = full_schema(settings)
    if values.get("weights") and "weights" in schema:
        # the run-wide weights= replaces every backbone's own (harness.inputs does the same when
        # it builds them): a node's required weights are given by it
        values = copy.deepcopy(values)
        for _, node in backbone_nodes(values):
            node["weights"] = values["weights"]
    if "protocol" in values and "protocol" not in schema:
        if values["protocol"] is None:
            values.pop("protocol")
        else:
            name = values["protocol"].get("name") if isinstance(values["protocol"], dict) else ""
            raise ConfigError(
                f"protocol={name} has no effect in this experiment (it computes no split-based "
                "Inception Score of your settings); remove protocol="
            )
    return schema.validate(values, "")
