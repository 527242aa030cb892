"""One schema per setting (harness.settings): the YAML follows from it, and a wrong value of any
key of any experiment is one ConfigError line before anything runs.

The probe is generated from the schemas: every setting reachable in every experiment's composed
config (run-wide keys, the experiment's own, every backbone/dataset/protocol node) is tried with
wrong values of each kind its type admits (negative, zero, huge, wrong type, empty, misspelt
choice, null).  A new key is covered the moment it is declared.
"""

from __future__ import annotations

import copy
import inspect

import pytest

from harness import backbones, config, data
from harness import settings as S
from harness.api import compose
from harness.errors import ConfigError, HarnessError
from harness.experiment_registry import available_experiments, experiment_settings

#: what an experiment needs to compose at all (required keys without defaults)
REQUIRED = {
    "sanity": ["dataset.root=/nonexistent/samples"],
    "compare_protocols": ["dataset.root=/nonexistent/samples"],
    "collect": ["runs=[/nonexistent/sweep]"],
    "score": ["a=."],  # a folder that exists (its inputs are checked when composed)
}


def _composed(experiment: str) -> dict:
    return config.resolved(compose(experiment, REQUIRED.get(experiment, [])))


def _set(values: dict, path: str, value) -> dict:
    out = copy.deepcopy(values)
    node, parts = out, path.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return out


def test_conf_yaml_is_generated_from_the_schemas():
    from harness import conf_gen

    stale = conf_gen.stale()
    assert not stale, f"run `python -m harness.conf_gen`: out of date: {stale}"


def _probe(experiment: str, values: dict, only: str = "") -> None:
    """Every wrong value of every setting under ``only`` (all when empty) is refused in one line
    that names the key."""
    schema = config.full_schema(experiment_settings(experiment))
    leaves = [x for x in S.leaves(schema, values) if x[0].startswith(only)]
    assert leaves, experiment
    tried, bad = 0, []
    for path, setting, _ in leaves:
        for wrong in setting.wrong_values():
            tried += 1
            try:
                config.validate(_set(values, path, wrong), experiment=experiment)
            except ConfigError as exc:
                msg = str(exc)
                assert "\n" not in msg
                named = path if not path.endswith(".name") else path.rsplit(".", 1)[0]
                assert named in msg, (path, wrong, msg)
            else:
                bad.append((path, wrong))
    assert not bad, f"{experiment}: accepted wrong values {bad[:10]} ({len(bad)}/{tried})"


@pytest.mark.parametrize("experiment", available_experiments())
def test_every_key_refuses_every_wrong_value_in_one_line(experiment):
    _probe(experiment, _composed(experiment))


#: group options no experiment composes by default, with what they need to compose
OTHER_OPTIONS = {
    "dataset": {
        "arrays": ["dataset.path=x.npz"],
        "generator": ["dataset.callable=mod:fn"],
        "synthetic": [],
        "noise": [],
        "cifar10": [],
        "cifar10_test": [],
        "imagenet_val": [],
        "digits": [],
    },
    "backbone": {
        **{name: [] for name in [*backbones.REGISTRY, *backbones.PRESETS]},
        "torch_model": ["backbone.weights=file:x.pt", "backbone.input_size=8"],
        "keras_model": ["backbone.weights=file:x.keras", "backbone.input_size=8"],
    },
}


@pytest.mark.parametrize(
    "group, option", [(g, o) for g, opts in OTHER_OPTIONS.items() for o in opts]
)
def test_every_group_option_refuses_every_wrong_value(group, option):
    """The probe for the keys of every backbone and dataset, whichever experiments use them."""
    values = config.resolved(
        compose("sanity", [*REQUIRED["sanity"], f"{group}={option}", *OTHER_OPTIONS[group][option]])
        if group == "backbone"
        else compose("sanity", [f"dataset={option}", *OTHER_OPTIONS[group][option]])
    )
    _probe("sanity", values, only=f"{group}.")


@pytest.mark.parametrize("experiment", available_experiments())
def test_every_mapping_refuses_unknown_keys_with_a_suggestion(experiment):
    values = _composed(experiment)
    schema = config.full_schema(experiment_settings(experiment))
    for path, _, _parent in S.leaves(schema, values):
        head, _, key = path.rpartition(".")
        wrong = f"{head}.{key}x" if head else f"{key}x"
        with pytest.raises(ConfigError, match=f"did you mean '{path}'"):
            config.validate(_set(values, wrong, 1), experiment=experiment)


def test_every_yaml_key_has_a_schema_and_every_schema_key_a_yaml_line():
    """Composition of every experiment validates (no key outside a schema), and every
    declared setting is in the composed config (the YAML is generated from the schema)."""
    for experiment in available_experiments():
        values = _composed(experiment)
        paths = {
            p for p, _, _ in S.leaves(config.full_schema(experiment_settings(experiment)), values)
        }
        assert "seed" in paths and "cache.dir" in paths
        for _path, setting, parent in S.leaves(
            config.full_schema(experiment_settings(experiment)), values
        ):
            assert setting.name in parent


def test_constructors_carry_no_defaults_of_their_own():
    """Defaults live in the schema only: a backbone or source is built by the factory."""
    classes = [backbones.backbone_class(n) for n in backbones.REGISTRY] + list(
        data.SOURCES.values()
    )
    for cls in classes:
        for klass in cls.__mro__:
            if "__init__" in klass.__dict__ and klass.__module__.startswith("harness"):
                sig = inspect.signature(klass.__init__)
                with_default = [
                    n for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty
                ]
                assert not with_default, f"{klass.__name__}.__init__ defaults {with_default}"


def test_library_calls_get_the_same_checks_and_defaults():
    with pytest.raises(ConfigError, match="backbone torchvision.*input_size|input_size"):
        backbones.load_backbone("torchvision", weights="random:0", input_size=10)
    with pytest.raises(ConfigError, match="unknown parameter 'resise'.*did you mean 'resize'"):
        backbones.load_backbone("torchvision", weights="random:0", resise="antialias")
    with pytest.raises(ConfigError, match="order_seed is required with"):
        data.load_source("synthetic", count=4, order="shuffled")
    src = data.load_source("synthetic", count=4)
    assert (src.order, src.n_requested) == ("as_loaded", None)


# ------------------------------------------------------------------ findings of issue 24
@pytest.mark.parametrize(
    "experiment, override, message",
    [
        # a seed without a shuffle was recorded as split_seed=5
        ("splits", "splits.seed=5", "splits.seed=5 has no effect unless splits.shuffle"),
        # seeds numpy / torch refuse were tracebacks
        ("splits", "splits.seed=-1", "splits.seed must be a seed"),
        ("sanity", "splits.seed=5000000000", "splits.seed must be a seed"),
        ("splits", "splits.seed=1e20", "splits.seed must be a seed"),
        ("metric_properties", "seeds=[-1]", r"seeds\[0\] must be a seed"),
        # a pin that cannot apply to random weights was ignored
        (
            "splits",
            "weights=random:0 backbone.weights_sha256=" + "de" * 32,
            "backbone.weights_sha256=.* has no effect unless weights=pretrained or file",
        ),
        (
            "splits",
            "backbone.weights=random:0 backbone.weights_sha256=" + "de" * 32,
            "weights_sha256=.* has no effect unless weights=pretrained or file",
        ),
        ("sanity", "compare_backbone=resnet", "compare_backbone must be one of"),
        # protocol= had no effect in these experiments and was ignored silently
        ("toy_gaussian", "protocol=torchmetrics", "protocol=torchmetrics has no effect"),
        ("compare_protocols", "protocol=openai", "protocol=openai has no effect"),
        # a preset changed by hand still named its rows after the tool
        (
            "compare_protocols",
            "protocols.torch_fidelity.splits.seed=1",
            "protocols.torch_fidelity.splits.seed=1: protocol torch_fidelity is",
        ),
        (
            "compare_protocols",
            "protocols.sbarratt.n_splits=3",
            "protocols.sbarratt.n_splits=3: protocol sbarratt",
        ),
        ("splits", "protocol.ddof=1", "protocol.ddof=1: protocol openai is"),
        # reference_stats together with a reference set: the set was ignored silently
        (
            "sanity",
            "+dataset@reference=cifar10 reference_stats=/x/stats.npz",
            "give one reference",
        ),
        ("sanity", "allow_mismatched_stats=true", "allow_mismatched_stats=true has no effect"),
        ("splits", "dataset.order_seed=3", "order_seed=3 has no effect unless"),
        ("splits", "backbone.align_corners=true backbone.resize=antialias", "align_corners"),
    ],
)
def test_wrong_or_ineffective_settings_are_one_line_errors(experiment, override, message):
    extra = REQUIRED.get(experiment, [])
    words = override.split()
    if "protocol.ddof=1" in words:
        words = ["protocol=openai", *words]
    with pytest.raises(HarnessError, match=message) as err:
        compose(experiment, [*extra, *words])
    assert "\n" not in str(err.value)


def test_value_range_spelled_as_in_the_readme_survives_hydra():
    """``dataset.value_range=-1_1`` reaches the config as the integer -11 (YAML/Hydra read digit
    groups): it is accepted as what it says, and the source reads it as -1_1."""
    cfg = compose("sanity", ["dataset=arrays", "dataset.path=x.npz", "dataset.value_range=-1_1"])
    assert cfg.dataset.value_range == -11
    from harness.data.base import normalize_value_range

    assert normalize_value_range(cfg.dataset.value_range) == "-1_1"
    with pytest.raises(ConfigError, match="value_range must be one of 0_1, -1_1, 0_255"):
        compose("sanity", ["dataset=arrays", "dataset.path=x.npz", "dataset.value_range=-2_1"])


def test_a_misspelt_key_gets_the_suggestion_at_once():
    """Hydra's own answer is 'To append to your config use +dataset.rot=': adding the key would
    only fail later; the harness names the key meant instead."""
    with pytest.raises(ConfigError, match="did you mean 'dataset.root'"):
        compose("sanity", ["dataset.rot=/x"])


def test_chunk_splits_record_the_splits_used():
    """torch.chunk makes 6 splits of 4 from N=24 when 7 are asked for: rows say 6 and 4."""
    from harness.rows import provenance_columns
    from harness.scores import SplitSpec

    src = data.load_source("synthetic", count=24)
    row = provenance_columns(None, src, SplitSpec(7, "chunk"))
    assert (row["n_splits"], row["n_splits_requested"], row["split_size"]) == (6, 7, "4")
    row = provenance_columns(None, src, SplitSpec(10, "chunk", "torch_randperm", 0, 1))
    assert (row["n_splits"], row["split_size"]) == (8, "3")
    row = provenance_columns(None, src, SplitSpec(5))
    assert (row["n_splits"], row["split_size"]) == (5, "4-5") and "n_splits_requested" not in row


def test_sanity_summary_records_the_splits_used(tmp_path):
    """report.json said 7 splits where its reporting line (rightly) said 6 (chunk, N=24)."""
    import json

    from harness.api import run_experiment

    out = run_experiment(
        "sanity",
        [
            "dataset=synthetic",
            "dataset.count=24",
            "weights=random:0",
            "backbone.input_size=75",
            "~other_backbones",
            "checks=[4]",
            "n_splits=7",
            "splits.assign=chunk",
            "progress=false",
        ],
        tmp_path / "run",
    )
    rep = json.loads((out.run_dir / "report.json").read_text())
    assert rep["summary"]["n_splits"] == 6 and rep["summary"]["n_splits_requested"] == 7
    assert "6 splits" in rep["reporting_line"] or "over 6" in rep["reporting_line"]


def test_removing_a_node_or_section_an_experiment_needs_is_one_line():
    """`~backbone` ended in KeyError('backbone'), printed as a bug."""
    with pytest.raises(ConfigError, match=r"backbone is required by this experiment.*~backbone"):
        compose("reference_stats", ["~backbone"])
    with pytest.raises(ConfigError, match="cache is required"):
        compose("toy_gaussian", ["~cache"])
    compose("sanity", [*REQUIRED["sanity"], "~other_backbones"])  # optional: fine


def test_where_weights_come_from_is_not_part_of_a_preset():
    """A preset fixes a tool's conventions, not whether a download is allowed or a pin."""
    compose(
        "compare_protocols",
        [
            *REQUIRED["compare_protocols"],
            "protocols.openai.backbone.allow_download=true",
            "protocols.openai.backbone.weights_sha256=" + "ab" * 32,
        ],
    )


def test_a_run_wide_cuda_device_does_not_reach_backbones_the_run_does_not_build():
    """sanity quick=true builds only its backbone: device=cuda must not be refused because the
    (unbuilt) tf2015 of check 5 has no CUDA path."""
    compose("sanity", [*REQUIRED["sanity"], "device=cuda", "quick=true"])
