"""Scale-out on Hydra's own launchers (issue 18): real multiruns with joblib (``hydra/launcher=
local``) and submitit's local executor (``hydra/launcher=local_submitit``), a failing job that
does not stop the others, and ``collect`` giving the single-process table from a multirun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import has, needs_tf, needs_torch

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def harness(*args, cwd):
    r = subprocess.run(
        [sys.executable, "-m", "harness", *args, "progress=false"],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return r


WS = [
    "weights=random:0",
    "~backbones.tfhub",
    "~backbones.tf2015",
    "dataset@datasets.cifar10_train=synthetic",
    "datasets.cifar10_train.count=12",
    "dataset@datasets.imagenet_val=synthetic",
    "datasets.imagenet_val.count=12",
    "datasets.imagenet_val.seed=4",
    "backbones.torchvision.input_size=75",
    "backbones.keras.input_size=75",
    "n_splits=3",
]
METRICS = ["is_mean", "is_std", "sg_nats", "sg_bits", "h_y_given_x_bits", "h_y_bits"]


@needs_torch
@needs_tf
@pytest.mark.skipif(not has("hydra_plugins.hydra_joblib_launcher"), reason="no joblib launcher")
def test_weights_sensitivity_multirun_collected_equals_single_run(tmp_path):
    single = harness(
        "+experiment=weights_sensitivity", *WS, f"hydra.run.dir={tmp_path / 's'}", cwd=tmp_path
    )
    assert single.returncode == 0, single.stderr[-2000:]
    multi = harness(
        "-m",
        "+experiment=weights_sensitivity",
        *WS,
        "hydra/launcher=local",
        "only_backbone=torchvision,keras",
        "only_dataset=cifar10_train,imagenet_val",
        f"hydra.sweep.dir={tmp_path / 'm'}",
        cwd=tmp_path,
    )
    assert multi.returncode == 0, multi.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    coll = harness(
        "+experiment=collect",
        f"runs=[{tmp_path / 'm'}]",
        f"hydra.run.dir={tmp_path / 'c'}",
        cwd=tmp_path,
    )
    assert coll.returncode == 0, coll.stderr[-2000:]
    a = pd.read_csv(tmp_path / "s" / "table.csv")
    b = pd.read_csv(tmp_path / "c" / "table.csv")
    assert list(a.backbone_key + "/" + a.dataset_key) == list(b.backbone_key + "/" + b.dataset_key)
    np.testing.assert_array_equal(a[METRICS].to_numpy(), b[METRICS].to_numpy())
    pa = pd.read_csv(tmp_path / "s" / "pairwise.csv")
    pb = pd.read_csv(tmp_path / "c" / "pairwise.csv")
    pd.testing.assert_frame_equal(pa, pb)
    jobs = pd.read_csv(tmp_path / "c" / "jobs.csv")
    assert (jobs.status == "ok").all() and jobs.sweep.str.contains("only_backbone=keras").sum() == 2
    assert (tmp_path / "c" / "weights_sensitivity.png").exists()


@pytest.mark.skipif(not has("hydra_plugins.hydra_submitit_launcher"), reason="no submitit")
def test_submitit_local_multirun_a_failing_job_does_not_stop_the_others(tmp_path):
    r = harness(
        "-m",
        "+experiment=toy_gaussian",
        "toy.mc_samples=1000,0,2000",
        "hydra/launcher=local_submitit",
        f"hydra.sweep.dir={tmp_path / 'm'}",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert (
        "1 job(s) failed" in r.stderr
        and "job 1: toy.mc_samples must be an integer >= 10, got 0" in r.stderr
    )
    for job in ("0", "2"):  # the jobs after the failing one ran too
        assert (tmp_path / "m" / job / "provenance.json").exists()
    marker = json.loads((tmp_path / "m" / "1" / "INCOMPLETE").read_text())
    assert marker["status"] == "failed"
    coll = harness(
        "+experiment=collect",
        f"runs=[{tmp_path / 'm'}]",
        f"hydra.run.dir={tmp_path / 'c'}",
        cwd=tmp_path,
    )
    assert coll.returncode == 0, coll.stderr[-2000:]
    jobs = pd.read_csv(tmp_path / "c" / "jobs.csv").set_index("job")
    assert (
        jobs.loc[1, "status"] == "failed"
        and "toy.mc_samples must be an integer >= 10" in jobs.loc[1, "error"]
    )
    assert list(jobs.loc[[0, 2], "status"]) == ["ok", "ok"]
    t = pd.read_csv(tmp_path / "c" / "table.csv")
    assert len(t) == 8 and set(t.job) == {0, 2}  # 4 generators per finished job


@pytest.mark.skipif(not has("hydra_plugins.hydra_joblib_launcher"), reason="no joblib launcher")
def test_a_job_failing_validation_is_marked_and_reported(tmp_path):
    r = harness(
        "-m",
        "+experiment=toy_gaussian",
        "toy.scale_is=variance,sd",
        "hydra/launcher=local",
        f"hydra.sweep.dir={tmp_path / 'm'}",
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "job 1: toy.scale_is must be" in r.stderr
    assert (tmp_path / "m" / "0" / "provenance.json").exists()
    assert json.loads((tmp_path / "m" / "1" / "INCOMPLETE").read_text())["status"] == "failed"


def test_collect_names_what_it_cannot_find(tmp_path):
    r = harness(
        "+experiment=collect",
        f"runs=[{tmp_path / 'nothing'}]",
        f"hydra.run.dir={tmp_path / 'c'}",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.strip().startswith("error:")
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


@needs_torch
def test_two_attack_shards_collected_equal_one_run_bit_for_bit(tmp_path):
    from harness import api

    common = [
        "weights=random:0",
        "backbone.input_size=75",
        "attack.n_images=4",  # two shards of one batch each
        "attack.iterations=2",
        "attack.batch_size=2",
        "attack.n_splits=2",
        "attack.eps=0.01",
        "progress=false",
    ]
    api.run_experiment("adversarial", common, run_dir=tmp_path / "one")
    for i in (0, 1):
        api.run_experiment(
            "adversarial", [*common, f"attack.shard={i}/2"], run_dir=tmp_path / "shards" / str(i)
        )
    api.run_experiment("collect", [f"runs=[{tmp_path / 'shards'}]"], run_dir=tmp_path / "c")
    one_h = pd.read_csv(tmp_path / "one" / "history.csv")
    got_h = pd.read_csv(tmp_path / "c" / "attack_history.csv")
    cols = [
        "is_mean",
        "is_std",
        "is_1split",
        "sg_nats",
        "mean_target_prob",
        "target_hit_rate",
        "conditional_entropy_bits",
        "linf_network",
        "l2_network",
        "linf_pixels",
    ]
    np.testing.assert_array_equal(one_h[cols].to_numpy(), got_h[cols].to_numpy())
    one_t = pd.read_csv(tmp_path / "one" / "table.csv")
    got_t = pd.read_csv(tmp_path / "c" / "attack_table.csv")
    cols = [
        "is_mean",
        "is_std",
        "is_1split",
        "sg_nats",
        "mean_target_prob",
        "final_linf_pixels",
        "max_possible_is_per_split",
    ]
    np.testing.assert_array_equal(one_t[cols].to_numpy(), got_t[cols].to_numpy())
    assert list(one_t.stage) == list(got_t.stage)
    with np.load(tmp_path / "one" / "images.npz") as a, np.load(tmp_path / "c" / "images.npz") as b:
        for k in ("start_uint8", "final_uint8", "targets"):
            np.testing.assert_array_equal(a[k], b[k])
    assert (tmp_path / "c" / "attack_curve.png").exists()
    # the shards' own tables say they are partial; a wrong shard spec is a one-line error
    assert pd.read_csv(tmp_path / "shards" / "0" / "table.csv").shard.iloc[0] == "0/2"
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="attack.shard"):
        api.run_experiment("adversarial", [*common, "attack.shard=2/2"], run_dir=tmp_path / "x")
