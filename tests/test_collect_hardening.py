"""``collect`` verifies what it gathers: a multirun's own job list (missing jobs are named), each
job's ``provenance.json`` and table (truncated or half-written files are refused with one line),
and attack shards bound to their attack config (shards of different attacks never merge).

Run dirs are written by the runner itself (:class:`harness.runner.Run`) or by short attack runs,
and ``multirun.yaml`` / ``.hydra/overrides.yaml`` as Hydra 1.3 writes them, so no test runs a
real multirun.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness import api
from harness.errors import ConfigError, HarnessError, MissingInputError
from harness.runner import Run

from .conftest import needs_torch

ROOT = Path(__file__).resolve().parent.parent
TOY = "+experiment=toy_gaussian"


def make_run(d: Path, n_rows: int = 10, overrides: list[str] | None = None) -> Path:
    """A finished toy_gaussian run dir, written by the runner (with Hydra's overrides.yaml)."""
    d.mkdir(parents=True, exist_ok=True)
    if overrides is not None:
        (d / ".hydra").mkdir()
        (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    run = Run("toy_gaussian", {"seed": 0}, d)
    df = pd.DataFrame(
        {
            "generator": [f"generator number {i}" for i in range(n_rows)],
            "is_exact": 1.0 + np.arange(n_rows) / 8.0,  # exact in the CSV (%.10g)
            "is_mc": 1.25 + np.arange(n_rows) / 4.0,
        }
    )
    run.table(df, quiet=True)
    run.finish()
    return d


def write_multirun(sweep: Path, task: list[str]) -> None:
    """The parts of ``multirun.yaml`` collect reads, laid out as Hydra 1.3's basic sweeper
    writes them (checked against a real ``python -m harness -m ...`` run)."""
    sweep.mkdir(parents=True, exist_ok=True)
    conf = {
        "hydra": {
            "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "max_batch_size": None,
                "params": None,
            },
            "overrides": {
                "hydra": [f"hydra.sweep.dir={sweep}", "hydra.mode=MULTIRUN"],
                "task": task,
            },
            "mode": "MULTIRUN",
        }
    }
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(conf))


def set_recorded(run_dir: Path, **fields) -> None:
    """Set (value) or drop (None) fields of ``outputs["table"]`` in a run's provenance.json."""
    f = run_dir / "provenance.json"
    prov = json.loads(f.read_text())
    for k, v in fields.items():
        if v is None:
            prov["outputs"]["table"].pop(k, None)
        else:
            prov["outputs"]["table"][k] = v
    f.write_text(json.dumps(prov, indent=2))


def collect(runs, out: Path):
    return api.run_experiment("collect", [f"runs=[{','.join(str(r) for r in runs)}]"], run_dir=out)


def read_jobs(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "jobs.csv", dtype={"job": str}, keep_default_na=False).set_index("job")


# --------------------------------------------------------------------------- 1: missing jobs
def test_missing_jobs_of_a_multirun_are_listed_and_end_the_run_with_an_error(tmp_path):
    sweep = tmp_path / "m"
    # 2 x 2 jobs, in Hydra's order; Hydra writes progress=false as progress=False for each job
    write_multirun(sweep, [TOY, "toy.mc_samples=1000,2000", "seed=0,1", "progress=false"])
    make_run(sweep / "0", 4, [TOY, "toy.mc_samples=1000", "seed=0", "progress=False"])
    make_run(sweep / "2", 4, [TOY, "toy.mc_samples=2000", "seed=0", "progress=False"])
    (sweep / "3" / ".hydra").mkdir(parents=True)  # job 3 was killed before its run began
    (sweep / "3" / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([TOY, "toy.mc_samples=2000", "seed=1", "progress=False"])
    )
    out = tmp_path / "c"
    with pytest.raises(MissingInputError) as err:
        collect([sweep], out)
    msg = str(err.value)
    assert "\n" not in msg and "2 of 4 job(s) missing" in msg
    assert "job 1 missing" in msg and "job 3 missing" in msg
    # the fix names the first missing job's command
    assert f"python -m harness {TOY} toy.mc_samples=1000 seed=1 progress=False" in msg
    # what there is was written, and says what is not there
    jobs = read_jobs(out)
    assert list(jobs.index) == ["0", "1", "2", "3"]
    assert list(jobs.status) == ["ok", "missing", "ok", "missing"]
    assert jobs.loc["1", "overrides"] == f"{TOY} toy.mc_samples=1000 seed=1 progress=False"
    assert jobs.loc["3", "overrides"] == f"{TOY} toy.mc_samples=2000 seed=1 progress=False"
    assert "does not exist" in jobs.loc["1", "error"] and "no results" in jobs.loc["3", "error"]
    t = pd.read_csv(out / "table.csv")
    assert len(t) == 8 and sorted(set(t.job)) == [0, 2]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["complete"] is False and prov["jobs_not_ok"] == {"1": "missing", "3": "missing"}
    assert prov["sweeps"][0]["sweep"] == str(sweep) and prov["sweeps"][0]["jobs"] == 4
    assert not (out / "INCOMPLETE").exists()  # the collect run itself finished


def test_a_complete_multirun_collects_without_error(tmp_path):
    sweep = tmp_path / "m"
    write_multirun(sweep, [TOY, "toy.mc_samples=range(1000,3001,1000)"])
    for i, n in enumerate((1000, 2000, 3000)):
        make_run(sweep / str(i), 2, [TOY, f"toy.mc_samples={n}"])
    res = collect([sweep], tmp_path / "c")
    assert list(res.tables["jobs"].status) == ["ok"] * 3 and len(res.table) == 6
    assert res.extra["complete"] is True


def test_dirs_that_are_no_job_of_the_sweep_are_not_collected(tmp_path):
    sweep = tmp_path / "m"
    write_multirun(sweep, [TOY, "toy.mc_samples=1000,2000"])
    make_run(sweep / "0", 3, [TOY, "toy.mc_samples=1000"])
    make_run(sweep / "1", 3, [TOY, "toy.mc_samples=5000"])  # left by an earlier sweep
    make_run(sweep / "2", 3, [TOY, "toy.mc_samples=3000"])
    out = tmp_path / "c"
    with pytest.raises(MissingInputError, match="2 of 3 job"):
        collect([sweep], out)
    jobs = read_jobs(out)
    assert list(jobs.status) == ["ok", "not in sweep", "not in sweep"]
    assert set(pd.read_csv(out / "table.csv").job) == {0}


def test_sweep_dirs_named_by_hydra_yaml_job_num(tmp_path):
    sweep = tmp_path / "m"
    write_multirun(sweep, [TOY, "toy.mc_samples=1000,2000"])
    conf = yaml.safe_load((sweep / "multirun.yaml").read_text())
    conf["hydra"]["sweep"]["subdir"] = "${hydra.job.override_dirname}"
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(conf))
    d = make_run(sweep / "toy.mc_samples=2000", 3, [TOY, "toy.mc_samples=2000"])
    (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": 1}}}))
    out = tmp_path / "c"
    with pytest.raises(MissingInputError, match="job 0 missing"):
        collect([sweep], out)
    assert read_jobs(out).loc["0", "overrides"] == f"{TOY} toy.mc_samples=1000"


def test_another_sweeper_gaps_in_the_job_numbers_are_missing_jobs(tmp_path):
    sweep = tmp_path / "m"
    write_multirun(sweep, [TOY, "toy.mc_samples=interval(1000,3000)"])
    conf = yaml.safe_load((sweep / "multirun.yaml").read_text())
    conf["hydra"]["sweeper"] = {"_target_": "hydra_plugins.some_sweeper.SomeSweeper"}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(conf))
    make_run(sweep / "0", 2, [TOY, "toy.mc_samples=1234"])
    make_run(sweep / "2", 2, [TOY, "toy.mc_samples=2345"])
    out = tmp_path / "c"
    with pytest.raises(MissingInputError, match="job 1 missing"):
        collect([sweep], out)
    assert read_jobs(out).status.tolist() == ["ok", "missing", "ok"]
    prov = json.loads((out / "provenance.json").read_text())
    assert "cannot be seen" in prov["sweeps"][0]["job_list"]


# --------------------------------------------------------------------------- 2: truncated tables
def test_a_table_truncated_at_60_percent_is_refused(tmp_path):
    d = make_run(tmp_path / "r")
    set_recorded(d, rows=None, sha256=None)  # runs that record neither: the strict parse
    data = (d / "table.csv").read_bytes()
    cut = data[: int(0.6 * len(data))]
    assert not cut.endswith(b"\n")  # the cut falls inside a row
    (d / "table.csv").write_bytes(cut)
    out = tmp_path / "c"
    with pytest.raises(MissingInputError, match="truncated") as err:
        collect([d], out)
    assert str(d / "table.csv") in str(err.value)
    jobs = read_jobs(out)
    assert jobs.status.tolist() == ["damaged"] and str(d / "table.csv") in jobs.error.iloc[0]
    assert (out / "table.csv").read_text().strip() == ""  # no rows from a damaged job


def test_a_short_row_or_an_all_nan_row_is_refused(tmp_path):
    short = make_run(tmp_path / "short")
    blank = make_run(tmp_path / "blank")
    for d in (short, blank):
        set_recorded(d, rows=None, sha256=None)
    lines = (short / "table.csv").read_text().splitlines(keepends=True)
    (short / "table.csv").write_text("".join(lines[:-1]) + lines[-1].split(",")[0] + "\n")
    lines = (blank / "table.csv").read_text().splitlines(keepends=True)
    (blank / "table.csv").write_text("".join(lines[:-1]) + "," * lines[0].count(",") + "\n")
    out = tmp_path / "c"
    with pytest.raises(MissingInputError) as err:
        collect([short, blank], out)
    assert str(short / "table.csv") in str(err.value) and str(blank / "table.csv") in str(err.value)
    jobs = read_jobs(out)
    assert jobs.status.tolist() == ["damaged", "damaged"]
    assert "1 fields, the header 3" in jobs.error.iloc[0] and "no values" in jobs.error.iloc[1]


def test_a_table_cut_at_a_row_boundary_is_caught_by_what_provenance_recorded(tmp_path):
    by_sha = make_run(tmp_path / "sha")
    by_rows = make_run(tmp_path / "rows")
    for d in (by_sha, by_rows):
        data = (d / "table.csv").read_bytes()
        # what the runner records per table (rows, sha256 of the CSV's bytes)
        set_recorded(d, rows=10, sha256=hashlib.sha256(data).hexdigest())
        lines = data.decode().splitlines(keepends=True)
        (d / "table.csv").write_text("".join(lines[:-1]))  # 9 whole rows: parses cleanly
    set_recorded(by_rows, sha256=None)
    out = tmp_path / "c"
    with pytest.raises(MissingInputError):
        collect([by_sha, by_rows], out)
    jobs = read_jobs(out)
    assert jobs.status.tolist() == ["damaged", "damaged"]
    assert "sha256 differs" in jobs.error.iloc[0]
    assert "has 9 rows, provenance.json recorded 10" in jobs.error.iloc[1]


def test_an_intact_table_matching_its_record_is_collected(tmp_path):
    d = make_run(tmp_path / "r")
    data = (d / "table.csv").read_bytes()
    set_recorded(d, rows=10, sha256=hashlib.sha256(data).hexdigest())
    res = collect([d], tmp_path / "c")
    assert res.tables["jobs"].status.tolist() == ["ok"] and len(res.table) == 10
    np.testing.assert_array_equal(res.table.is_mc.to_numpy(), 1.25 + np.arange(10) / 4.0)


# --------------------------------------------------------------------------- 3: no tracebacks
def test_half_written_provenance_and_empty_table_are_one_line_errors(tmp_path):
    half = make_run(tmp_path / "half")
    text = (half / "provenance.json").read_text()
    (half / "provenance.json").write_text(text[: len(text) // 2])
    empty = make_run(tmp_path / "empty")
    (empty / "table.csv").write_bytes(b"")
    partial = make_run(tmp_path / "partial")
    prov = json.loads((partial / "provenance.json").read_text())
    del prov["outputs"], prov["finished"]
    (partial / "provenance.json").write_text(json.dumps(prov))
    out = tmp_path / "c"
    with pytest.raises(HarnessError) as err:
        collect([half, empty, partial], out)
    assert type(err.value) is MissingInputError  # not a JSONDecodeError / EmptyDataError
    jobs = read_jobs(out)
    assert jobs.status.tolist() == ["damaged"] * 3
    assert "provenance.json is not valid JSON" in jobs.error.iloc[0]
    assert str(half / "provenance.json") in jobs.error.iloc[0]
    assert jobs.error.iloc[1] == f"{empty / 'table.csv'} is empty (0 bytes)"
    assert "lacks outputs, finished" in jobs.error.iloc[2]


def test_cli_prints_a_half_written_provenance_as_one_line(tmp_path):
    d = make_run(tmp_path / "r")
    text = (d / "provenance.json").read_text()
    (d / "provenance.json").write_text(text[: len(text) // 2])
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "+experiment=collect",
            f"runs=[{d}]",
            f"hydra.run.dir={tmp_path / 'c'}",
            "progress=false",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(d / "provenance.json") in errors[0]


# --------------------------------------------------------------------------- 4: attack shards
ATTACK = [
    "weights=random:0",
    "backbone.input_size=75",
    "attack.n_images=2",
    "attack.iterations=1",
    "attack.batch_size=1",
    "attack.n_splits=1",
    "attack.grid_classes=1",
    "attack.save_images=false",
    "attack.eps=0.01",
    "progress=false",
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shard 0/2 of an attack, and shard 1/2 of the same attack made with another eps."""
    root = tmp_path_factory.mktemp("shards")
    api.run_experiment("adversarial", [*ATTACK, "attack.shard=0/2"], run_dir=root / "a0")
    api.run_experiment(
        "adversarial", [*ATTACK, "attack.shard=1/2", "attack.eps=0.02"], run_dir=root / "b1_eps"
    )
    return root


@pytest.fixture(scope="module")
def weights_shard(shards):
    """Shard 1/2 of the attack in ``shards`` made with other (random) weights."""
    d = shards / "c1_weights"
    api.run_experiment("adversarial", [*ATTACK, "attack.shard=1/2", "weights=random:1"], run_dir=d)
    return d


def copy_shard(shards: Path, name: str, dest: Path) -> Path:
    shutil.copytree(shards / name, dest)
    return dest


@needs_torch
def test_shards_with_different_eps_are_not_merged(shards, tmp_path):
    with pytest.raises(ConfigError) as err:
        collect([shards / "a0", shards / "b1_eps"], tmp_path / "c")
    msg = str(err.value)
    assert "different settings" in msg and "eps 0.01 in" in msg and "0.02 in" in msg
    assert str(shards / "a0") in msg and str(shards / "b1_eps") in msg
    assert "weights" not in msg  # only what differs is named
    assert not (tmp_path / "c" / "attack_table.csv").exists()


@needs_torch
def test_shards_with_different_weights_are_not_merged(shards, weights_shard, tmp_path):
    with pytest.raises(ConfigError) as err:
        collect([shards / "a0", weights_shard], tmp_path / "c")
    msg = str(err.value)
    assert 'backbone.knobs.weights "random:0" in' in msg and '"random:1" in' in msg
    assert "weights_sha256" in msg and "eps" not in msg


@needs_torch
def test_shards_record_their_attack_config(shards):
    a = pd.read_csv(shards / "a0" / "table.csv")
    b = pd.read_csv(shards / "b1_eps" / "table.csv")
    assert a.attack_config_sha256.nunique() == 1
    assert a.attack_config_sha256.iloc[0] != b.attack_config_sha256.iloc[0]
    prov = json.loads((shards / "a0" / "provenance.json").read_text())
    conf = prov["attack_config"]
    assert conf["eps"] == 0.01 and conf["n_images"] == 2 and conf["backbone"]["weights_sha256"]
    assert "shard" not in json.dumps(conf)  # the one thing shards of an attack differ in
    recorded = prov["outputs"]["segments"]["sha256"]
    assert (
        recorded == hashlib.sha256((shards / "a0" / "attack_segments.npz").read_bytes()).hexdigest()
    )


@needs_torch
def test_a_duplicate_or_missing_shard_is_named(shards, tmp_path):
    twice = copy_shard(shards, "a0", tmp_path / "again")
    with pytest.raises(ConfigError, match=r"shard 0/2 \(.*\) is there twice"):
        collect([shards / "a0", twice], tmp_path / "c1")
    with pytest.raises(
        ConfigError, match=r"rows 1-2 of the attack's 2 images .*shard 1/2 is missing"
    ):
        collect([shards / "a0"], tmp_path / "c2")


@needs_torch
def test_a_damaged_or_swapped_segments_file_is_one_line(shards, tmp_path):
    cut = copy_shard(shards, "a0", tmp_path / "cut")
    seg = cut / "attack_segments.npz"
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="attack_segments.npz is not the file its shard wrote"):
        collect([cut], tmp_path / "c1")
    prov = json.loads((cut / "provenance.json").read_text())
    del prov["outputs"]["segments"]["sha256"]  # no record: the file is still read safely
    (cut / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(ConfigError, match="attack_segments.npz is damaged"):
        collect([cut], tmp_path / "c2")


@needs_torch
def test_shards_without_an_attack_config_are_refused(shards, tmp_path):
    """Shards from before the binding: nothing shows they belong together."""
    olds = []
    for name in ("a0", "b1_eps"):
        d = copy_shard(shards, name, tmp_path / name)
        seg = d / "attack_segments.npz"
        with np.load(seg) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
        for k in ("attack_config", "attack_config_sha256", "shard"):
            meta.pop(k, None)
        arrays["meta"] = np.array(json.dumps(meta))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        seg.write_bytes(buf.getvalue())
        prov = json.loads((d / "provenance.json").read_text())
        prov["outputs"]["segments"] = {"npz": str(seg)}
        (d / "provenance.json").write_text(json.dumps(prov))
        olds.append(d)
    with pytest.raises(ConfigError, match="records no attack config"):
        collect(olds, tmp_path / "c")


def test_a_rerun_of_a_job_with_overwrite_is_still_that_job():
    """collect's own advice for a damaged job reruns it with hydra.run.dir=... overwrite=true:
    those run-control overrides must not make the job 'not in sweep' on the next collect."""
    from experiments.collect import _normal

    job = ["+experiment=toy_gaussian", "seed=1"]
    rerun = [*job, "overwrite=true", "progress=false", "hydra.run.dir=/x/1"]
    assert _normal(rerun) == _normal(job)
    assert _normal([*job, "toy.mc_samples=100"]) != _normal(job)
