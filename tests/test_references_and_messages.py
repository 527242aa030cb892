"""References without guesswork, and messages that name the right key (issue 26, items 2 and 4).

Every message that tells the user to set a key is checked against the config: the key it names
must exist in the config composed the way the message says (:func:`assert_keys_exist`).  The
commands go through the real command line (``harness.cli.main``, in-process) where the CLI's
own path matters (argument rewriting, Hydra's errors, the early input check).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness import backbones, cli
from harness.api import compose, run_experiment
from harness.errors import ConfigError, MissingInputError

from .conftest import needs_torch
from .fixtures import one_line_error, run_cli, write_pngs

ROOT = Path(__file__).resolve().parent.parent
BASE = ["dataset=synthetic", "dataset.count=24", "weights=random:0", "progress=false"]
TINY = [*BASE, "backbone.input_size=75"]


_NAME = r"([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)"
#: how messages name a key: ``key=<value>``, ``point key at``, ``key: <problem>`` (at the start
#: of a message or of one of its items), ``did you mean 'key'``
_KEY = re.compile(
    rf"(?<![\w@+.~/<-]){_NAME}=|point {_NAME} at|(?:^|error: |: |\| ){_NAME}: "
    rf"|did you mean '{_NAME}'"
)


def named_keys(msg: str) -> set[str]:
    """The keys a message tells the user to set (``reference.root=<dir>`` -> reference.root),
    leaving out the commands that choose a node (``+dataset@reference=folder``)."""
    found = {k for groups in _KEY.findall(msg) for k in groups if k}
    return found - {"experiment", "error"}


def assert_keys_exist(msg: str, experiment: str, overrides: list[str]) -> None:
    """Every key ``msg`` names exists in the config of ``experiment`` composed with
    ``overrides`` (the form the message itself recommends)."""
    cfg = OmegaConf.to_container(compose(experiment, overrides), resolve=False)
    keys = named_keys(msg)
    assert keys, msg
    for key in keys:
        node = cfg
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key!r} (in: {msg}) not in config"
            node = node[part]


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if any network is built (the error must come before)."""

    def refuse(*a, **k):
        raise AssertionError("a network was built before the input check")

    monkeypatch.setattr(backbones, "from_config", refuse)


# ------------------------------------------------------------------------------ FID needs a ref
def test_fid_asked_for_without_a_reference_is_one_line_with_the_syntax(capsys, no_network):
    """`checks=[10]` without a reference exited 0 with '0 PASS, 0 WARN, 0 FAIL' and an empty
    table."""
    code, _, err = run_cli(capsys, "+experiment=sanity", *TINY, "checks=[10]")
    line = one_line_error(err)
    assert code == 2
    assert "+dataset@reference=folder reference.root=<dir>" in line
    assert "reference_stats=<file.npz>" in line
    assert {"reference.root", "reference_stats"} <= named_keys(line)
    assert_keys_exist(
        line, "sanity", [*TINY, "+dataset@reference=folder", "reference.root=/x", "checks=[10]"]
    )


@needs_torch
def test_full_report_without_a_reference_lists_check_10_as_not_run(tmp_path):
    """Check 10 was listed in checks_run but missing from a report without a reference."""
    out = run_experiment(
        "sanity", [*TINY, "~other_backbones", "quick=true"], run_dir=tmp_path / "run"
    )
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    (c10,) = [c for c in rep["checks"] if c["id"] == 10]
    assert c10["status"] == "NOT RUN"
    assert c10["value"] == (
        "not run: no reference (give +dataset@reference=... or reference_stats=...)"
    )
    assert 10 not in rep["summary"]["checks_run"] and rep["summary"]["checks_not_run"] == [10]
    row = out.table[out.table.check.str.startswith("10.")]
    assert len(row) == 1 and row.status.iloc[0] == "NOT RUN"
    assert "not run: no reference" in row.value.iloc[0]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "### 10. fid_kid: **NOT RUN**" in md


# ------------------------------------------------------------------------------ shorthands
def test_reference_dir_and_stats_shorthands(tmp_path):
    """`reference=reference/` failed with "must be a mapping" and no syntax."""
    ref = tmp_path / "reference"
    write_pngs(ref, n=3)
    cfg = compose("sanity", [*TINY, f"reference={ref}"])
    assert cfg.reference.name == "folder" and cfg.reference.root == str(ref)
    assert cfg.reference_stats is None
    cfg = compose("sanity", [*TINY, "reference=stats/ref.npz"])
    assert cfg.reference is None and cfg.reference_stats == "stats/ref.npz"
    cfg = compose("sanity", [*TINY, "reference=cifar10"])
    assert cfg.reference.name == "cifar10" and cfg.reference.split == "train"
    # an experiment with a reference by default: the shorthand replaces it
    cfg = compose("fid_sensitivity", [*BASE, f"reference={ref}"])
    assert cfg.reference.name == "folder" and cfg.reference.root == str(ref)
    with pytest.raises(ConfigError) as e:
        compose("fid_sensitivity", [*BASE, "reference=stats/ref.npz"])
    assert "\n" not in str(e.value) and "reference=<dir of images>" in str(e.value)


def test_reference_shorthand_on_the_command_line(capsys, tmp_path):
    ref = tmp_path / "reference"
    write_pngs(ref, n=3)
    code, out, err = run_cli(
        capsys, "+experiment=sanity", *TINY, f"reference={ref}", "--cfg", "job"
    )
    assert code == 0, err
    job = OmegaConf.create(out)
    assert job.reference.name == "folder" and job.reference.root == str(ref)


def test_a_key_of_an_absent_reference_names_the_way_to_add_it(capsys):
    """`reference.root=<dir>` alone: Hydra's 'Could not override' gave no syntax."""
    code, _, err = run_cli(capsys, "+experiment=sanity", *TINY, "reference.root=/x")
    line = one_line_error(err)
    assert code == 2 and "+dataset@reference=folder reference.root=<dir>" in line
    assert "To append" not in line
    assert_keys_exist(line, "sanity", [*TINY, "+dataset@reference=folder", "reference.root=/x"])


# ------------------------------------------------------------------------------ missing inputs
def test_missing_default_reference_names_reference_root_before_any_network(
    capsys, tmp_path, no_network
):
    """fid_sensitivity without a reference blamed CIFAR-10 after 58 s and said `dataset.root`."""
    code, _, err = run_cli(
        capsys, "+experiment=fid_sensitivity", *BASE, f"data_root={tmp_path / 'none'}"
    )
    line = one_line_error(err)
    assert code == 2
    assert "reference.root" in line and "dataset.root" not in line
    assert "reference=<dir>" in line
    assert {"reference.root", "reference.download"} <= named_keys(line)
    assert_keys_exist(line, "fid_sensitivity", BASE)


@pytest.mark.parametrize("experiment", ["sanity", "compare_protocols"])
def test_missing_folder_is_reported_before_any_network(capsys, tmp_path, no_network, experiment):
    """`dataset=folder dataset.root=/nonexistent` took 21 s (network construction) to report."""
    missing = tmp_path / "nonexistent"
    code, _, err = run_cli(
        capsys,
        f"+experiment={experiment}",
        "dataset=folder",
        f"dataset.root={missing}",
        "weights=random:0",
        f"output_root={tmp_path / 'results'}",
    )
    line = one_line_error(err)
    assert code == 2 and str(missing) in line and "does not exist" in line
    assert_keys_exist(line, experiment, ["dataset=folder", f"dataset.root={missing}"])
    assert not (tmp_path / "results").exists()  # no run dir either


def test_missing_folder_is_reported_before_torch_or_tensorflow_is_imported(tmp_path):
    """The early check needs no framework: a fresh process reports the missing folder without
    importing torch or TensorFlow (which, with network construction, took the 21 s)."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from harness import cli
        try:
            cli.main(["+experiment=sanity", "dataset=folder",
                      "dataset.root={tmp_path / "nonexistent"}", "weights=random:0"])
        except SystemExit as exc:
            code = exc.code
        print(json.dumps({{"code": code, "torch": "torch" in sys.modules,
                          "tensorflow": "tensorflow" in sys.modules}}))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"code": 2, "torch": False, "tensorflow": False}, r.stderr[-2000:]
    assert "dataset.root" in r.stderr and "does not exist" in r.stderr


def test_missing_folder_as_reference_names_reference_root(capsys, tmp_path, no_network):
    code, _, err = run_cli(
        capsys, "+experiment=sanity", *TINY, f"reference={tmp_path / 'nope'}", "checks=[10]"
    )
    line = one_line_error(err)
    assert code == 2 and "reference.root" in line and "dataset.root" not in line
    with pytest.raises(MissingInputError, match="reference.root"):
        run_experiment("sanity", [*TINY, f"reference={tmp_path / 'nope'}", "checks=[10]"])


def test_a_source_that_is_not_read_is_not_required(tmp_path):
    """splits with source=simulated reads no images: its absent default CIFAR-10 is no error."""
    from harness.config import check_sources_exist

    cfg = compose("splits", ["source=simulated", f"data_root={tmp_path}"])
    check_sources_exist(cfg, "splits")
    with pytest.raises(MissingInputError, match=r"dataset\.root"):
        check_sources_exist(compose("splits", [f"data_root={tmp_path}"]), "splits")
    cfg = compose("weights_sensitivity", [f"data_root={tmp_path}", "only_dataset=imagenet_val"])
    with pytest.raises(MissingInputError) as e:
        check_sources_exist(cfg, "weights_sensitivity")
    assert len(e.value.items) == 1
    assert "datasets.imagenet_val.root" in e.value.items[0]


# ------------------------------------------------------------------------------ messages
@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["reference.root=/x"],  # a second key Hydra refuses hid the first one's suggestion
        ["-m", "n_splits=2,5"],  # a multirun: no precheck, Hydra's own advice came first
    ],
)
def test_a_misspelt_key_on_the_command_line_gets_the_suggestion_at_once(capsys, tmp_path, extra):
    """Hydra's advice to add `+` came first; the suggestion only after following it."""
    code, _, err = run_cli(
        capsys, "+experiment=sanity", "dataset.rot=/x", *extra, f"output_root={tmp_path}"
    )
    line = one_line_error(err)
    assert code == 2 and "did you mean 'dataset.root'" in line and "+dataset.rot" not in line
    assert_keys_exist(line.split(";")[-1], "sanity", ["dataset.root=/x"])
    assert not list(tmp_path.iterdir())  # no run or sweep dir


def test_protocol_conflict_names_the_key_given(capsys):
    """`protocol=torch_fidelity backbone.resize=antialias` said the protocol "sets
    backbone.name"."""
    with pytest.raises(ConfigError) as e:
        compose("sanity", [*TINY, "protocol=torch_fidelity", "backbone.resize=antialias"])
    msg = str(e.value)
    assert "backbone.resize" in msg and "backbone.name" not in msg
    assert "backbone.resize" in named_keys(msg)
    assert_keys_exist(msg, "sanity", TINY)
    with pytest.raises(ConfigError, match="sets backbone=tf2015_torch"):
        compose("sanity", [*TINY, "protocol=torch_fidelity", "backbone=torchvision"])


@pytest.mark.parametrize(
    "override, key, meant",
    [
        ("protocol=torch_fidelty", "protocol", "torch_fidelity"),
        ("backbone=tf2015_torh", "backbone", "tf2015_torch"),
        ("dataset=foldr", "dataset", "folder"),
        ("+dataset@reference=cifar100", "+dataset@reference", "cifar10"),
    ],
)
def test_a_misspelt_group_option_is_one_line_with_the_choices(capsys, override, key, meant):
    """A misspelt protocol dumped Hydra's option list and config search path."""
    others = [] if override.startswith("dataset=") else ["dataset=synthetic"]
    code, _, err = run_cli(capsys, "+experiment=sanity", *others, override)
    line = one_line_error(err)
    assert code == 2 and "search path" not in line.lower()
    assert f"did you mean {key}={meant}?" in line and "valid: " in line


def test_a_misspelt_experiment_gets_a_suggestion(capsys):
    code, _, err = run_cli(capsys, "+experiment=sanityy")
    line = one_line_error(err)
    assert code == 2 and "did you mean +experiment=sanity?" in line


def test_check_counts_come_from_the_code():
    """The listing said "9 checks" where there are 11; the module said "nine"."""
    import experiments.sanity as sx

    src = (ROOT / "harness" / "sanity" / "checks.py").read_text()
    ids = {int(i) for i in re.findall(r"Check\(\s*(\d+),\s*\"", src)}
    assert ids == set(sx.CHECKS)
    listing = [ln for ln in cli.experiment_listing().splitlines() if ln.split()[0] == "sanity"]
    assert f"{len(ids)} checks" in listing[0]
    words = {"nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
    for path in ("experiments/sanity.py", "conf/experiment/sanity.yaml"):
        text = (ROOT / path).read_text()
        for n in re.findall(r"\b(\d+|nine|ten|eleven|twelve) checks\b", text):
            assert words.get(n, n) in (len(ids), str(len(ids))), (path, n)


# ------------------------------------------------------------------------------ check 7
def test_within_sample_duplicate_rate_does_not_depend_on_the_reference():
    """The within-sample near-duplicate rate moved (0.308 -> 0.314) when a reference was added:
    the samples were centred on the reference's mean."""
    from harness import sanity

    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16))
    samples = np.concatenate([base, base[:20] + 0.05 * rng.normal(size=(20, 16))]) + 3.0
    ref = rng.normal(size=(50, 16)) - 2.0
    # expected: cosine similarity to the nearest other sample, centred on the samples' mean
    g = samples - samples.mean(0)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    sim = g @ g.T
    np.fill_diagonal(sim, -np.inf)
    best = np.sort(sim.max(1))
    assert best[30] - best[29] > 1e-4  # no float32 rounding decides a sample
    threshold, want = float(best[29] + best[30]) / 2, 0.5  # half the samples above it
    alone = sanity.check_memorization(samples, None, threshold)
    with_ref = sanity.check_memorization(samples, ref, threshold)
    for c in (alone, with_ref):
        assert c.details["within_sample_near_copy_rate"] == pytest.approx(want, abs=1e-9)
        assert c.details["mean_nn_similarity_within"] == pytest.approx(sim.max(1).mean(), rel=1e-5)


@needs_torch
def test_reporting_line_names_the_reference_folder_and_no_local_path(tmp_path):
    """The reporting line said only "vs folder (300 images)": which folder was not said."""
    ref = tmp_path / "cifar_ref_samples"
    write_pngs(ref, 12, size=16)
    run = tmp_path / "run"
    run_experiment(
        "sanity",
        [*TINY, "checks=[10]", f"reference={ref}", "kid.subset_size=auto"],
        run_dir=run,
    )
    line = json.loads((run / "report.json").read_text())["reporting_line"]
    assert "vs folder cifar_ref_samples (12 images)" in line, line
    assert str(tmp_path) not in line
