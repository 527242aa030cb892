"""The digits CNN trained here (``harness.digits_cnn``, ``+experiment=train_classifier``).

The default checkpoints (torch seeds 0 and 1, keras seed 0) are trained once per session into a
cache directory of this file (``default_set``, ~1 min on 2 cores); every other test reuses them.
Determinism of PyTorch is checked on a 1-epoch config trained twice; determinism of Keras by
training the default Keras checkpoint once more without the cache (its child process costs about
as much as two 1-epoch runs would).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import pytest

from harness import config
from harness import digits_cnn as D
from harness.api import compose
from harness.backbones.weights import NO_DISK_CACHE
from harness.errors import ConfigError, HarnessError

from .conftest import needs_tf, needs_torch

pytestmark = [needs_torch, needs_tf]
TINY = {"epochs": 1}


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def cache_dir():
    """The session's cache (tests/conftest.py): the digits findings tests reuse these
    checkpoints instead of training them again."""
    return os.environ["INCEPTION_NOTE_CACHE"]


@pytest.fixture(scope="module")
def default_set(cache_dir):
    t0 = time.perf_counter()
    got = D.trained_checkpoints(cache_dir)
    got["_seconds"] = time.perf_counter() - t0
    return got


@pytest.fixture(scope="module")
def test_split():
    d = D.digits_data()
    return d.x_test, d.y_test


@pytest.mark.slow
def test_default_checkpoints_are_real_trained_weights_above_95_percent(default_set):
    assert {k for k in default_set if not k.startswith("_")} == {
        "torch_seed0",
        "torch_seed1",
        "keras_seed0",
    }
    for name, rec in default_set.items():
        if name.startswith("_"):
            continue
        assert rec["test_accuracy"] >= 0.95, (name, rec["test_accuracy"])
        assert rec["train_accuracy"] >= 0.95
        assert rec["label"] == "digits classifier (trained here), not Inception V3"
        assert rec["random_weights"] is False
        assert rec["train"] == D.DEFAULT_TRAIN and rec["init_seed"] == rec["seed"]
        assert rec["data"]["train"]["n"] == 1258 and rec["data"]["test"]["n"] == 539
        assert rec["seconds"] < 60, (name, rec["seconds"])  # the training loop itself
        for kind, path in rec["paths"].items():
            assert path.is_file() and sha(path) == rec["files"][kind]["sha256"]
        assert rec["versions"]["numpy"] == np.__version__
        fw = rec["framework"]
        assert rec["versions"][fw] is not None
        assert "RANDOM" not in json.dumps(rec, default=str)
    summary = {
        k: (round(v["test_accuracy"], 4), round(v["seconds"], 1))
        for k, v in default_set.items()
        if not k.startswith("_")
    }
    print(f"\ndefault set trained in {default_set['_seconds']:.1f} s: {summary}")


def _accuracy(logits, y) -> float:
    return float((np.argmax(logits, 1) == y).mean())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_checkpoints_reload_in_their_frameworks_with_the_recorded_accuracy(default_set, test_split):
    import keras
    import torch

    x, y = test_split
    for name in ("torch_seed0", "torch_seed1"):
        rec = default_set[name]
        model = D.build_torch()
        model.load_state_dict(torch.load(rec["paths"]["state_dict"], weights_only=True))
        scripted = torch.jit.load(str(rec["paths"]["torchscript"]))
        logits_sd = D.torch_logits(model, x)
        logits_ts = D.torch_logits(scripted, x)
        assert _accuracy(logits_sd, y) == rec["test_accuracy"]
        assert _accuracy(logits_ts, y) == rec["test_accuracy"]
        np.testing.assert_allclose(logits_ts, logits_sd, atol=1e-5)
        # the exported features method is the input of the last nn.Linear
        with torch.no_grad():
            feats = scripted.features(torch.from_numpy(x)).numpy()
        assert feats.shape == (len(x), D.FEATURE_DIM)
        np.testing.assert_allclose(
            feats @ model.fc2.weight.detach().numpy().T + model.fc2.bias.detach().numpy(),
            logits_sd,
            atol=1e-4,
        )
    rec = default_set["keras_seed0"]
    loaded = keras.models.load_model(rec["paths"]["keras"], compile=False)
    from_h5 = D.build_keras()
    from_h5.load_weights(rec["paths"]["weights_h5"])
    lk = D.keras_logits(loaded, x)
    assert _accuracy(lk, y) == rec["test_accuracy"]
    np.testing.assert_array_equal(D.keras_logits(from_h5, x), lk)
    assert loaded.layers[-1].name == "fc2" and loaded.layers[-1].activation.__name__ == "linear"


@pytest.mark.slow
def test_same_initial_weights_and_update_rule_in_both_frameworks_then_different_nets(
    default_set, test_split
):
    """Untrained: the torch and keras models of one seed compute the same logits (~1e-6).
    One full-batch SGD step in each: still the same weights (the update formulas agree).
    Trained for 30 epochs: float32 rounding has grown into two different networks."""
    x, _ = test_split
    state = D.init_state(0)
    tm, km = D.build_torch(), D.build_keras()
    D.load_torch_state(tm, state)
    D.load_keras_state(km, state)
    lt, lk = D.torch_logits(tm, x), D.keras_logits(km, x)
    assert np.abs(lt - lk).max() < 1e-5
    assert D.state_sha256(D.from_keras(km)) == D.state_sha256(state)  # transposes round-trip

    data = D.digits_data()
    one_step = D.check_train({"epochs": 1, "batch_size": 10_000})
    orders = D.batch_orders(0, len(data.y_train), 1)
    _, st, _, _, _ = D._train_torch(state, one_step, data, orders)
    _, sk, _, _, _ = D._train_keras(state, one_step, data, orders)
    moved = max(float(np.abs(st[k] - state[k]).max()) for k in state)
    gap = max(float(np.abs(st[k] - sk[k]).max()) for k in state)
    assert moved > 1e-3 and gap < 1e-5, (moved, gap)

    t0, k0, t1 = (default_set[n] for n in ("torch_seed0", "keras_seed0", "torch_seed1"))
    assert t0["init_weights_sha256"] == k0["init_weights_sha256"] != t1["init_weights_sha256"]
    assert len({t0["weights_sha256"], k0["weights_sha256"], t1["weights_sha256"]}) == 3
    la, lb = (np.load(r["test_logits_path"]) for r in (t0, k0))
    diff = float(np.abs(la - lb).max())
    agree = float((la.argmax(1) == lb.argmax(1)).mean())
    print(f"\ntorch vs keras trained (seed 0): max |logit diff| {diff:.3g}, agreement {agree:.4f}")
    assert diff > 1e-2 and agree > 0.95


def test_training_is_deterministic_torch_tiny_twice():
    a, b = D.train("torch", 0, TINY), D.train("torch", 0, TINY)
    assert a.record["files"] == b.record["files"] and a.files == b.files
    assert a.record["weights_sha256"] == b.record["weights_sha256"]
    c = D.train("torch", 1, TINY)
    assert c.record["weights_sha256"] != a.record["weights_sha256"]


@pytest.mark.slow
def test_training_is_deterministic_keras_retrained(default_set):
    again = D.obtain("keras", 0, None, NO_DISK_CACHE)  # trained again, no cache
    assert not again.reused
    rec = default_set["keras_seed0"]
    assert again.record["files"] == rec["files"]
    assert again.record["weights_sha256"] == rec["weights_sha256"]


def test_cache_is_reused_and_a_changed_file_is_detected(tmp_path, monkeypatch):
    calls = []
    real = D.train_fn

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(D, "train_fn", counting)
    first = D.obtain("torch", 0, TINY, tmp_path)
    assert len(calls) == 1 and not first.reused and first.entry_dir.parent.name == "digits_cnn"
    again = D.obtain("torch", 0, TINY, tmp_path)
    assert len(calls) == 1 and again.reused and again.files == first.files
    # another config is another entry
    D.obtain("torch", 0, {**TINY, "lr": 0.01}, tmp_path)
    assert len(calls) == 2
    # tamper with the state dict: detected, moved to bad/, trained again to the same bytes
    pth = first.entry_dir / first.record["files"]["state_dict"]["file"]
    blob = bytearray(pth.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    pth.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="fails its check.*sha256"):
        third = D.obtain("torch", 0, TINY, tmp_path)
    assert len(calls) == 3 and not third.reused
    assert sha(pth) == first.record["files"]["state_dict"]["sha256"]
    assert len(list((first.entry_dir.parent / "bad").iterdir())) == 1


@pytest.mark.slow
def test_default_set_is_reused_without_training(default_set, cache_dir, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("retrained")

    monkeypatch.setattr(D, "train_fn", fail)
    again = D.trained_checkpoints(cache_dir)  # train_fn fails: reused, never retrained
    for name, rec in again.items():
        assert rec["reused"] and rec["files"] == default_set[name]["files"]


def test_no_disk_cache_needs_an_out_dir_and_writes_nothing_to_the_cache(tmp_path):
    import os

    default = D.cache_dir_root(None)
    before = sorted(default.rglob("*")) if default.exists() else None
    with pytest.raises(HarnessError, match="out_dir"):
        D.trained_checkpoints(NO_DISK_CACHE, frameworks=["torch"], seeds=[0], train=TINY)
    got = D.trained_checkpoints(
        NO_DISK_CACHE, frameworks=["torch"], seeds=[0], train=TINY, out_dir=tmp_path / "o"
    )
    rec = got["torch_seed0"]
    assert not rec["reused"] and rec["entry_dir"] is None
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "digits_cnn_torch_seed0.pt",
        "digits_cnn_torch_seed0.pth",
        "digits_cnn_torch_seed0_test_logits.npy",
    ]
    assert rec["test_logits_path"] == (tmp_path / "o" / rec["test_logits_path"].name).resolve()
    assert (sorted(default.rglob("*")) if default.exists() else None) == before
    assert os.environ["INCEPTION_NOTE_CACHE"] in str(default)  # the tests' own cache dir


@pytest.mark.slow
def test_experiment_writes_checkpoints_tables_and_usage_lines(default_set, cache_dir, tmp_path):
    from harness.api import run_experiment

    run = run_experiment(
        "train_classifier", [f"cache.dir={cache_dir}", "progress=false"], run_dir=tmp_path / "r"
    )
    t = run.table
    assert len(t) == 6 and set(t.checkpoint) == {"torch_seed0", "torch_seed1", "keras_seed0"}
    assert t.reused_from_cache.all() and (t.test_accuracy >= 0.95).all()
    for r in t.itertuples():
        assert sha(run.run_dir / r.file) == r.sha256
        assert r.sha256 == default_set[r.checkpoint]["files"][r.kind]["sha256"]
    prov = json.loads((run.run_dir / "provenance.json").read_text())
    assert prov["weights_note"] is None and prov["label"] == D.LABEL
    assert set(prov["checkpoints"]) == set(t.checkpoint)
    text = "".join(
        p.read_text() for p in run.run_dir.iterdir() if p.suffix in (".md", ".csv", ".txt", ".json")
    )
    assert "RANDOM WEIGHTS" not in text and D.LABEL in (run.run_dir / "table.md").read_text()
    usage = (run.run_dir / "use_weights.txt").read_text()
    pth = (run.run_dir / "digits_cnn_torch_seed0.pth").resolve()
    assert (
        f"backbone=torch_model backbone.weights=file:{pth} "
        "backbone.builder=harness.digits_cnn:build_torch" in usage
    )
    assert (
        f"backbone=keras_model backbone.weights=file:{pth.parent}/digits_cnn_keras_seed0.keras"
        in usage
    )
    agreement = run.tables["agreement"]
    assert len(agreement) == 3 and agreement.same_init.sum() == 1


@pytest.mark.parametrize(
    "override, message",
    [
        ("device=cuda", "trains on the CPU only"),
        (
            "frameworks=[torch] keras_seed=3",
            "keras_seed=3 has no effect unless frameworks has keras",
        ),
        ("frameworks=[keras] seeds=[5]", "seeds=.* has no effect unless frameworks has torch"),
        ("frameworks=[torch,torch]", "lists a value twice"),
        ("train.momentum=1.0", "train.momentum must be"),
        ("train.lr=0", "train.lr must be"),
    ],
)
def test_bad_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as exc:
        config.validate(
            compose("train_classifier", override.split()), experiment="train_classifier"
        )
    assert "\n" not in str(exc.value)
