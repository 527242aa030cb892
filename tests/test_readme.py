"""Every command in README.md runs, as written, in a fresh directory (issue 11).

The commands are collected from README's fenced code blocks (lines starting with
``python -m harness`` or ``inception-note``, ``\\`` continuations joined).  Each runs in a
subprocess, in a temporary working directory that holds what the README's commands name
(``samples/``: 12 PNGs, ``samples.npz``: the same 12 images, ``reference/``: 12 other PNGs) and
with ``$INCEPTION_NOTE_DATA``
pointing at tiny datasets in the official formats (CIFAR-10: 30 train / 6 test images; ImageNet
val: 12 images); no pretrained weights exist.  Appended to a command, and nothing else:

* ``weights=random:0`` where the command needs network weights;
* tiny-data overrides, where a command needs them, listed per command in :data:`EXPECT` (none
  so far: the tiny datasets make the defaults fast); the expected exit code and files are there.

A README command without an entry in :data:`EXPECT` fails the test: documenting a command means
making it pass here.  One substitution, because CI has no SLURM cluster: ``hydra/launcher=slurm``
runs as ``hydra/launcher=local_submitit`` (the same submitit plugin and job code path, its local
executor instead of sbatch); see :data:`SUBSTITUTE`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import needs_tf, needs_torch
from .fixtures import write_datasets, write_pngs

ROOT = Path(__file__).resolve().parent.parent
RANDOM = ["weights=random:0"]

SUBSTITUTE = {"hydra/launcher=slurm": "hydra/launcher=local_submitit"}
SWEEP = "results/table1_sweep"

# command prefix (after ``python -m harness``) -> (appended overrides, exit code, files in the run
# dir[, where the run dir is when the command names it])
EXPECT = {
    # the one-line score (`inception-note score ...` runs as `python -m harness score ...`)
    "score a=samples/": (RANDOM, 0, ["score.json", "table.csv", "provenance.json"]),
    "score a=samples/ b=reference/": (RANDOM, 0, ["score.json", "table.csv"]),
    "+experiment=toy_gaussian": ([], 0, ["table.csv", "toy_gaussian.png", "provenance.json"]),
    "+experiment=splits source=simulated": ([], 0, ["table.csv", "sample_sizes.csv", "splits.png"]),
    "+experiment=weights_sensitivity": (RANDOM, 0, ["table.csv", "pairwise.csv"]),
    "+experiment=sanity dataset=folder dataset.root=samples/": (
        RANDOM,
        0,
        ["report.md", "report.json", "check6_resize.png"],
    ),
    "+experiment=sanity dataset=arrays dataset.path=samples.npz +dataset@reference=cifar10 "
    "strict=true": (RANDOM, 3, ["report.md", "report.json"]),
    "+experiment=compare_protocols dataset.root=samples/": (
        RANDOM,
        0,
        ["table.csv", "summary.csv", "compare_protocols.png"],
    ),
    "+experiment=fid_sensitivity dataset=synthetic dataset@reference=synthetic reference.seed=1": (
        [*RANDOM, "dataset.count=10", "reference.count=10", "kid.subset_size=5"],
        0,
        ["table.csv", "pairwise.csv", "fid_sensitivity.png"],
    ),
    "+experiment=reference_stats dataset=synthetic out=ref_stats.npz": (
        [*RANDOM, "dataset.count=10"],
        0,
        ["table.csv", "stats.npz", "stats.json"],
    ),
    "-m +experiment=weights_sensitivity hydra/launcher=slurm only_backbone=tf2015,torchvision,"
    f"keras,tfhub only_dataset=cifar10_train,imagenet_val hydra.sweep.dir={SWEEP}": (
        RANDOM,
        0,
        ["table.csv", "pairwise.csv", "provenance.json"],
        f"{SWEEP}/7",
    ),
    f"+experiment=collect runs=[{SWEEP}]": (
        [],
        0,
        ["table.csv", "jobs.csv", "pairwise.csv", "weights_sensitivity.png"],
    ),
    "+experiment=metric_properties dataset=synthetic dataset@reference=synthetic "
    "reference.seed=1 corruptions.sample_size=[500,200,50]": (
        [
            *RANDOM,
            "dataset.count=60",
            "reference.count=60",
            "n=null",
            "seeds=[0,1]",
            "corruptions.sample_size=[30]",
            "corruptions.intra_class_collapse=[5,2,1]",
            "kid.subset_size=20",
            "backbone.input_size=75",
        ],
        0,
        ["table.csv", "detects.csv", "metric_properties_intra_class_collapse.png"],
    ),
    "+experiment=sanity dataset=folder dataset.root=samples/ backbone=torch_model "
    "backbone.weights=file:mnist_cnn.pth backbone.builder=mnist_cnn.py:build "
    "backbone.input_size=28 backbone.channels=1 backbone.resize=antialias ~other_backbones": (
        [],
        0,
        ["report.md", "report.json"],
    ),
    "+experiment=paper": ([], 0, ["table.csv", "missing.csv"]),
    # the digits replication (real networks trained here, reused from the paper run's cache)
    "+experiment=train_classifier": ([], 0, ["table.csv", "agreement.csv", "use_weights.txt"]),
    "+experiment=splits backbone=digits_torch dataset=digits dataset.split=test "
    '"n_splits=[1,2,5,10,20,50]" "sample_sizes=[100,200,400]"': (
        [],
        0,
        ["table.csv", "sample_sizes.csv", "splits.png"],
    ),
    "+experiment=ordering ~backbones.torchvision +backbone@backbones.pytorch=digits_torch "
    "~datasets.imagenet_val +dataset@datasets.digits_test=digits datasets.digits_test.split=test "
    "datasets.digits_test.arrangement=class_sorted": (
        [],
        0,
        ["table.csv", "summary.csv", "per_split.csv", "ordering.png"],
    ),
    "+experiment=paper_figs": ([], 0, ["table.csv"]),
}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip() if " #" in line else line.strip()
            for prefix in ("python -m harness", "inception-note"):
                if line.startswith(prefix):
                    cmds.append(" ".join(line[len(prefix) :].split()))
    return cmds


def test_every_readme_command_is_covered():
    cmds = readme_commands()
    assert len(cmds) >= 6
    missing = [c for c in cmds if c not in EXPECT]
    assert not missing, f"README commands without an entry in tests/test_readme.py: {missing}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp("readme")
    x = write_pngs(wd / "samples", n=12)
    np.savez(wd / "samples.npz", images=x)
    write_pngs(wd / "reference", n=12, seed=1)
    write_datasets(wd / "datasets")
    write_mnist_style_classifier(wd)
    return wd


MNIST_CNN = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, stride=2)
        self.fc1 = torch.nn.Linear(8 * 13 * 13, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def build():
    return Net()
"""


def write_mnist_style_classifier(wd: Path) -> None:
    """The README's own-classifier example: a module with build() and its state dict (an
    untrained one here: the command's mechanics are what is tested)."""
    import importlib.util

    import torch

    (wd / "mnist_cnn.py").write_text(MNIST_CNN)
    spec = importlib.util.spec_from_file_location("mnist_cnn_readme", wd / "mnist_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    torch.save(mod.build().state_dict(), wd / "mnist_cnn.pth")


@needs_torch
@needs_tf
@pytest.mark.parametrize("args", readme_commands())
def test_readme_command_runs_as_written(workdir, args):
    # a command that reads an earlier command's runs: that command first, where this pytest
    # worker has not run it (the workdir is per worker; xdist may place them apart)
    if f"runs=[{SWEEP}]" in args and not (workdir / SWEEP).exists():
        (sweep,) = [c for c in EXPECT if f"hydra.sweep.dir={SWEEP}" in c]
        _run_readme_command(workdir, sweep)
    _run_readme_command(workdir, args)


def _run_readme_command(workdir, args):
    extra, code, files, *where = EXPECT[args]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "INCEPTION_NOTE_DATA": str(workdir / "datasets"),
        "INCEPTION_NOTE_CACHE": str(workdir / "cache"),
    }
    m = re.search(r"experiment=(\w+)", args)
    name = m.group(1) if m else args.split()[0]  # `inception-note <experiment> ...`
    before = (
        set((workdir / "results" / name).glob("*"))
        if (workdir / "results" / name).exists()
        else set()
    )
    words = [SUBSTITUTE.get(w, w) for w in shlex.split(args)]
    cmd = [sys.executable, "-m", "harness", *words, *extra, "progress=false"]
    r = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == code, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    if where:
        run = workdir / where[0]
    else:
        (run,) = set((workdir / "results" / name).glob("*")) - before
    for f in files:
        assert (run / f).exists(), f"{f} missing in {run}: {sorted(p.name for p in run.iterdir())}"
    assert not (run / "INCOMPLETE").exists()
    if "Traceback" in r.stderr:
        raise AssertionError(r.stderr[-3000:])


# ------------------------------------------------------------------ README's Python (Library)
#: the one change to README's Python: random weights instead of the pretrained ones (no
#: pretrained weights exist in the tests), as weights=random:0 is appended to the commands
PY_SUBSTITUTE = (
    'backbones.load_backbone("tf2015_torch"',
    'backbones.load_backbone("tf2015_torch", weights="random:0"',
)


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@needs_torch
def test_readme_library_example_runs_and_agrees_with_the_score_command(workdir):
    """The Library section's IS + FID example (one pass per folder, cache_dir chosen) runs as
    written and prints the numbers `inception-note score` gives for the same folders."""
    import json

    (code,) = readme_python_blocks()
    assert len(code.strip().splitlines()) <= 5 and "features=True" in code
    assert PY_SUBSTITUTE[0] in code
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "INCEPTION_NOTE_CACHE": str(workdir / "default_cache"),  # what cache_dir= replaces
    }
    r = subprocess.run(
        [sys.executable, "-c", code.replace(*PY_SUBSTITUTE)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    is_mean, fid = (float(v) for v in r.stdout.split()[-2:])
    # cache_dir="cache/" of the example: the random weights are written there, nowhere else
    assert list((workdir / "cache" / "weights" / "random").glob("*"))
    assert not (workdir / "default_cache").exists()
    cli = subprocess.run(
        [sys.executable, "-m", "harness", "score", "a=samples/", "b=reference/", *RANDOM]
        + ["progress=false", "cache.dir=cache", "hydra.run.dir=results/score_vs_library"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    got = json.loads((workdir / "results" / "score_vs_library" / "score.json").read_text())
    assert got["is_mean"] == pytest.approx(is_mean, rel=1e-5)
    assert got["fid"] == pytest.approx(fid, rel=1e-5)
