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


def _module_level_imports(mod: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in tree.body:  # module level only: function-local imports run later
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.If) and not isinstance(node.test, ast.Name):
            continue
    return out


def test_no_import_cycles():
    mods = dict(_modules())
    graph = {
        m: {d for d in _module_level_imports(m, p) if d in mods and d != m} for m, p in mods.items()
    }
    # importing a submodule imports its package first
    for m in list(graph):
        parts = m.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in graph and parent != m:
                graph[m].add(parent)
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cyc = stack[stack.index(d) :] + [d]
                # a package importing its own submodule while that submodule imports the
                # package's __init__ is not a cycle Python cares about
                if not all(x.startswith(cyc[0] + ".") or x == cyc[0] for x in cyc):
                    cycles.append(" -> ".join(cyc))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, cycles


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
        "    b.load(name, **kw).forward(np.zeros((2, side, side, 3), 'uint8'), features=True)\n"
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
