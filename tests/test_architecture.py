"""The structure promised in the package docstrings (issue 12): a backbone owns its specifics,
modules do not import each other in a cycle, defaults live in one place, and a new backbone is
one module + one YAML + one registry line."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import backbones, cli
from harness import resize as rs
from harness.backbones.inception import InceptionBackbone

from .fixtures import write_pngs

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "experiments")


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def test_no_module_outside_backbones_asks_for_a_backbone_name_or_its_internals():
    names = set(backbones.REGISTRY)
    problems = []
    for mod, path in _modules():
        if mod.startswith("harness.backbones"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):  # net.name == "torchvision", name in (...)
                sides = [node.left, *node.comparators]
                consts = {
                    c.value
                    for s in sides
                    for c in ast.walk(s)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
                attrs = [s for s in sides if isinstance(s, ast.Attribute) and s.attr == "name"]
                if attrs and consts & names:
                    problems.append(f"{path.name}:{node.lineno} compares .name to {consts & names}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                base = node.value
                owner = base.id if isinstance(base, ast.Name) else None
                if owner in ("net", "backbone", "other", "target", "model"):
                    problems.append(f"{path.name}:{node.lineno} reads {owner}.{node.attr}")
    assert not problems, problems


def _project_imports(mod: str, path: Path, mods: dict) -> set[str]:
    """Every project module ``mod`` imports, at module level *and inside functions* (a
    function-local import is a dependency all the same; only the optional frameworks and the
    peers, which are not project modules, are exempt).  Importing ``a.b.c`` imports the packages
    ``a.b`` and ``a`` first, except the packages ``mod`` itself lives in (already importing)."""
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            named |= {base} | {f"{base}.{a.name}" for a in node.names}
    out = set()
    for name in named:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    own_packages = {".".join(mod.split(".")[:i]) for i in range(1, len(mod.split(".")))}
    return {m for m in out if m in mods} - own_packages - {mod}


def _import_graph() -> dict:
    mods = dict(_modules())
    return {m: _project_imports(m, p, mods) for m, p in mods.items()}


def test_no_import_cycles_counting_function_local_imports():
    """Issue 28: function-local imports once hid a cycle (porting <-> backbones, settings ->
    config -> backbones -> settings, data -> backbones.weights -> random_init -> data)."""
    graph = _import_graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, cycles


#: the bottom layer: file I/O (atomic writes, hashes, cache roots), framework import guards,
#: provenance and the error types; every other layer may use it, it uses nothing above it
BOTTOM = (
    "harness.errors",
    "harness.atomic_io",
    "harness.storage",
    "harness.frameworks",
    "harness.provenance",
)


def test_the_bottom_layer_imports_nothing_above_it():
    graph = _import_graph()
    above = {m: sorted(graph[m] - set(BOTTOM) - {"harness"}) for m in BOTTOM}
    assert not any(above.values()), above


def test_the_data_layer_does_not_import_the_networks():
    """Image sources read files and hashes through the bottom layer, never through
    ``harness.backbones`` (the backbones may use image sources: random weights' BatchNorm
    statistics are measured on the synthetic set)."""
    graph = _import_graph()
    bad = {
        m: sorted(d for d in deps if d.startswith("harness.backbones"))
        for m, deps in graph.items()
        if m.startswith("harness.data")
    }
    assert not any(bad.values()), bad


def test_conf_is_generated_from_the_settings():
    """YAML defaults and constructor defaults once agreed by a test; now the YAML is written
    from the one schema per setting (tests/test_settings.py checks it is current)."""
    from harness import conf_gen

    assert conf_gen.expected_files()  # every group file has a generator


# ------------------------------------------------------------------------------ a new backbone
class FakeBackbone(InceptionBackbone):
    """A tiny backbone for the recipe test: 4x4 mean colours as features, a linear head taken
    from the canonical state's classifier (so ``random:<seed>`` works through the base class)."""

    name = "fake"
    framework = "numpy"
    min_input_size = 16
    default_norm = "zero_one"

    def _load(self, weights):
        if weights.state is None:
            with np.load(weights.path) as z:
                self.head = z["head"]
        else:
            self.head = np.asarray(weights.state["fc.weight"])[:, :48] * 8.0

    def _forward(self, images, want_features):
        s = self.input_size
        x = rs.resize_numpy(images, (s, s), self.resize_method, bool(self.align_corners))
        scale, offset = self.normalize_from_255()
        x = x * scale + offset
        g = x.reshape(len(x), 4, s // 4, 4, s // 4, 3).mean(axis=(2, 4)).reshape(len(x), -1)
        g = (g - 0.5) * 4
        return g @ self.head.T, g

    def framework_versions(self):
        return {"numpy": np.__version__}


FAKE_YAML = """\
name: fake
weights: pretrained
weights_sha256: null
allow_download: false
resize: native
align_corners: null
bias: null
classes: all
input_norm: auto
dtype: float32
device: ${device}
input_size: 32
batch_size: 32
"""


@pytest.fixture
def fake_backbone(tmp_path, monkeypatch):
    conf = tmp_path / "conf" / "backbone"
    conf.mkdir(parents=True)
    (conf / "fake.yaml").write_text(FAKE_YAML)
    monkeypatch.setitem(backbones.REGISTRY, "fake", (__name__, "FakeBackbone"))
    return f"hydra.searchpath=[file://{tmp_path / 'conf'}]"


def _run(capsys, *args):
    capsys.readouterr()
    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr()


def test_a_new_backbone_is_one_module_one_yaml_one_line(fake_backbone, tmp_path, capsys):
    out = tmp_path / "results"
    code, io = _run(
        capsys,
        "+experiment=weights_sensitivity",
        fake_backbone,
        "~backbones.tf2015",
        "~backbones.torchvision",
        "~backbones.keras",
        "~backbones.tfhub",
        "+backbone@backbones.fake=fake",
        "weights=random:0",
        "dataset@datasets.cifar10_train=synthetic",
        "datasets.cifar10_train.count=20",
        "~datasets.imagenet_val",
        f"output_root={out}",
        "progress=false",
    )
    assert code == 0, io.err[-3000:]
    (run,) = (out / "weights_sensitivity").iterdir()
    import pandas as pd

    t = pd.read_csv(run / "table.csv")
    assert list(t.backbone) == ["fake"] and t.is_mean.iloc[0] > 1
    samples = tmp_path / "samples"
    write_pngs(samples, n=20)
    code, io = _run(
        capsys,
        "+experiment=sanity",
        fake_backbone,
        "backbone=fake",
        "~other_backbones",
        "dataset=folder",
        f"dataset.root={samples}",
        "weights=random:0",
        "n_splits=4",
        f"output_root={out}",
        "progress=false",
    )
    assert code == 0, io.err[-3000:]
    (run,) = (out / "sanity").iterdir()
    rep = json.loads((run / "report.json").read_text())
    assert rep["backbone"]["backbone"] == "fake" and len(rep["checks"]) >= 9
    # and offline without its weights: one line naming what is missing
    code, io = _run(
        capsys,
        "+experiment=sanity",
        fake_backbone,
        "backbone=fake",
        "~other_backbones",
        "dataset=folder",
        f"dataset.root={samples}",
        f"output_root={out}",
    )
    assert code == 2 and "no official pretrained weights" in io.err


def test_recipe_is_written_in_the_package_docstring():
    doc = textwrap.dedent(backbones.__doc__)
    assert "Adding a backbone" in doc and "REGISTRY" in doc and "conf/backbone" in doc


def test_importing_and_loading_a_backbone_imports_neither_pandas_nor_matplotlib():
    """Issue 28: the network layer stays light; tables and figures are the experiments' (a fresh
    interpreter, as a user's first import)."""
    import subprocess
    import sys

    code = (
        "import sys; import numpy as np; import harness.backbones as b\n"
        "for name, kw, side in (('pixels', {'weights': 'none'}, 8), ('torchvision', "
        "{'weights': 'random:0', 'input_size': 75, 'cache_dir': ':memory:'}, 75)):\n"
        "    net = b.load_backbone(name, **kw)\n"
        "    net.forward(np.zeros((2, side, side, 3), 'uint8'), features=True)\n"
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_atomic_writers_are_a_bottom_layer():
    """harness/atomic_io.py imports nothing of the project but its error types."""
    tree = ast.parse((ROOT / "harness" / "atomic_io.py").read_text())
    own = [
        n.module or ""
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and (n.level > 0 or (n.module or "").startswith("harness"))
    ]
    assert own == ["errors"], own


def test_every_experiment_meets_the_typed_contract_and_a_misspelt_hook_is_an_error(monkeypatch):
    """Issue 28: experiments are read once into :class:`Experiment` (no hasattr discovery at
    the call sites); a hook spelt one letter off would have been skipped silently."""
    import types

    from harness import experiment_registry as er
    from harness.errors import HarnessError

    for name in er.available_experiments():
        exp = er.experiment(name)
        assert callable(exp.compute) and callable(exp.present) and exp.settings is not None
    sanity = er.experiment("sanity")
    assert sanity.headline is not None and sanity.paper_tables is None
    fake = types.ModuleType("experiments.fake")
    fake.SETTINGS, fake.compute, fake.present = object(), len, len
    fake.headlin = len  # meant: headline
    monkeypatch.setattr(er, "experiment_module", lambda name: fake)
    with pytest.raises(HarnessError, match=r"headlin\(\) looks like hook headline\(\)"):
        er.experiment("fake")
    del fake.headlin, fake.present
    with pytest.raises(HarnessError, match="lacks present"):
        er.experiment("fake")
    # the runner, collect, paper and paper_figs ask the contract, never the module
    for path in (
        "harness/runner.py",
        "experiments/collect.py",
        "experiments/paper.py",
        "experiments/paper_figs.py",
    ):
        text = (ROOT / path).read_text()
        assert "hasattr(mod" not in text and 'getattr(mod, "paper' not in text, path


#: the longest a function may be outside the tests (issue 28): a longer one is a list of steps
#: waiting to be named
MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_80_lines():
    long = []
    for folder in ("harness", "experiments", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert not long, long


def test_the_sanity_experiment_is_its_settings_and_a_loop():
    """Issue 28: the report's checks are a registry; the experiment's compute is the loop."""
    import experiments.sanity as exp
    from harness.sanity import registry

    src = ast.parse((ROOT / "experiments" / "sanity.py").read_text())
    compute = next(n for n in src.body if getattr(n, "name", "") == "compute")
    assert compute.end_lineno - compute.lineno + 1 < 60
    assert set(exp.CHECKS) == set(registry.REGISTRY) and max(registry.REGISTRY) == 12
    for d in registry.REGISTRY.values():
        assert callable(d.run) and d.reference in registry.REFERENCE_KINDS


@pytest.mark.parametrize(
    "module, old, new",
    [
        ("harness.backbones", "load", "harness.backbones.load_backbone"),
        ("harness.data", "load", "harness.data.load_source"),
        ("harness.inputs", "load", "harness.inputs.load_inputs"),
        ("harness.protocols", "load", "harness.protocols.load_protocol"),
        ("harness.feature_metrics", "load_stats", "harness.stats_files.load_stats"),
    ],
)
def test_a_renamed_library_name_is_an_error_naming_the_new_one(module, old, new):
    import importlib

    mod = importlib.import_module(module)
    with pytest.raises(AttributeError, match=f"{module}.{old} was renamed: use {new}"):
        getattr(mod, old)
    assert not hasattr(mod, "no_such_name")
    target, name = new.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(target), name))
    with pytest.raises(ImportError, match="import harness.backbones.porting"):
        importlib.import_module("harness.porting")
