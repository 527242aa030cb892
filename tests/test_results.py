"""Run outputs: atomic writes, table formats, provenance."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from harness import results


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), results.atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no temp left


def test_atomic_files_are_not_private(tmp_path):
    p = results.atomic_write_text(tmp_path / "x.txt", "hi")
    assert oct(os.stat(p).st_mode & 0o044) == oct(0o044)


def test_write_table_all_formats_and_constant_columns(tmp_path):
    df = pd.DataFrame(
        {
            "backbone": ["a_b", "c%d"],
            "is_mean": [9.737, 10.852],
            "ddof": [0, 0],
            "weights_sha256": ["ab12", "ab12"],
        }
    )
    paths = results.write_table(df, tmp_path, title="T & t", notes=["note one"])
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(df.columns) and back.is_mean.tolist() == [9.737, 10.852]
    md = paths["md"].read_text()
    assert "| backbone | is_mean |" in md and "- `ddof`: 0" in md and "> note one" in md
    tex = paths["tex"].read_text()
    assert r"a\_b" in tex and r"c\%d" in tex and r"T \& t" in tex and "% ddof: 0" in tex
    assert "\\toprule" in tex and tex.count("\\\\") == 3


def test_random_weights_are_labelled_everywhere(tmp_path):
    df = pd.DataFrame({"x": [1.0]})
    paths = results.write_table(df, tmp_path, title="t", random_weights=True)
    assert pd.read_csv(paths["csv"]).weights_note.tolist() == ["random weights"]
    for k in ("md", "tex"):
        assert "RANDOM WEIGHTS" in paths[k].read_text()
    prov = results.write_provenance(tmp_path, {"seed": 3}, random_weights=True)
    rec = json.loads(prov.read_text())
    assert "RANDOM WEIGHTS" in rec["weights_note"] and rec["seed"] == 3
    assert rec["packages"]["numpy"] == np.__version__ and "commit" in rec["git"]


def test_json_handles_numpy_and_nonfinite(tmp_path):
    p = results.write_json(
        tmp_path / "a.json",
        {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": float("inf")},
    )
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": "inf"}
