"""The command line and the Hydra compose API, on the toy experiment (no network, no framework)."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import api, toy

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}

TOY_COLUMNS = [
    "generator",
    "is_exact",
    "is_monte_carlo",
    "is_mc_std",
    "mutual_information_bits",
    "conditional_entropy_bits",
    "marginal_entropy_bits",
    "paper_claim",
]


def cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_no_experiment_lists_them_and_exits_zero():
    r = cli()
    assert r.returncode == 0, r.stderr
    assert "toy_gaussian" in r.stdout


def test_unknown_experiment_is_one_line_error():
    r = cli("+experiment=does_not_exist")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown experiment 'does_not_exist'" in lines[0]
    assert "toy_gaussian" in lines[0]


def test_toy_end_to_end_through_cli(tmp_path):
    r = cli("+experiment=toy_gaussian", "toy.mc_samples=20000", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "table.csv",
        "table.md",
        "table.tex",
        "provenance.json",
        "toy_gaussian.png",
        "toy_gaussian.pdf",
    } <= names
    assert not [n for n in names if n.startswith(".table") or n.startswith(".toy")]
    df = pd.read_csv(tmp_path / "table.csv")
    assert set(TOY_COLUMNS) <= set(df.columns)
    assert df.generator.tolist() == list(toy.GENERATORS)
    assert "plus_minus_infinity" in r.stdout  # main table printed


def test_bad_config_value_is_one_line_error(tmp_path):
    r = cli("+experiment=toy_gaussian", "toy.scale_is=sd", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: toy.scale_is must be one of variance, std, got 'sd'; did you mean std?"
    ]


def test_compose_api_and_std_convention(tmp_path):
    cfg = api.compose("toy_gaussian", ["toy.scale_is=std", "toy.mc_samples=5000"])
    assert cfg.toy.scale_is == "std" and cfg.experiment_name == "toy_gaussian"
    out = api.run_experiment(
        "toy_gaussian", ["toy.scale_is=std", "toy.mc_samples=5000"], run_dir=tmp_path
    )
    t = out.table.set_index("generator")
    # independent: plus/minus infinity is exactly 2; uniform has the closed form
    assert t.loc["plus_minus_infinity", "is_exact"] == 2.0
    import math

    a = 0.5  # slope 2/sigma^2 with sigma = 2
    assert t.loc["uniform_-100_100", "is_exact"] == pytest.approx(
        math.exp(math.log(2) - math.pi**2 / (3 * a * 200)), rel=1e-10
    )
    assert (tmp_path / "provenance.json").exists()


def test_unknown_experiment_in_api():
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown experiment"):
        api.compose("nope")
