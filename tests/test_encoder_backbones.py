"""A features-only encoder (``torch_model head=features``) in the feature-space experiments.

fid_sensitivity, metric_properties, reference_stats and sanity run on its features (FID, KID,
PRDC; no IS, said in ``is_note`` or as "not applicable"), and the IS experiments refuse it in one
line before any network pass.  Expected values come from the torch modules run directly on the
images and FID computed here with scipy's ``sqrtm``, not from the harness's pipeline or
:mod:`harness.feature_metrics`.
"""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest

from harness import data
from harness.api import run_experiment
from harness.errors import ConfigError, HarnessError

from .conftest import needs_torch

pytestmark = needs_torch

BUILDER = """
import torch


def _spread(net):
    for p in net.parameters():  # larger than torch's default init: distances well above noise
        torch.nn.init.normal_(p, std=0.3)
    return net


def encoder():
    torch.manual_seed(3)
    return _spread(torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(192, 32), torch.nn.ReLU(), torch.nn.Linear(32, 12)
    ))


def classifier():
    torch.manual_seed(4)
    return _spread(torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(192, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
    ))
"""
NO_HEAD = "no classifier head (features only)"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The builder file, both modules and their state-dict files."""
    import torch

    d = tmp_path_factory.mktemp("encoder")
    (d / "nets.py").write_text(BUILDER)
    spec = importlib.util.spec_from_file_location("encoder_nets_for_tests", d / "nets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    enc, cls = mod.encoder().eval(), mod.classifier().eval()
    torch.save(enc.state_dict(), d / "enc.pth")
    torch.save(cls.state_dict(), d / "cls.pth")
    return {"dir": d, "enc": enc, "cls": cls}


def knobs(models, node: str, which: str = "enc") -> list[str]:
    """Overrides that make ``node`` (backbone or backbones.<key>) the encoder or classifier."""
    d = models["dir"]
    fn = "encoder" if which == "enc" else "classifier"
    return [
        f"{node}.weights=file:{d / f'{which}.pth'}",
        f"{node}.builder={d / 'nets.py'}:{fn}",
        f"{node}.input_size=8",
        f"{node}.head={'features' if which == 'enc' else 'logits'}",
    ]


def direct(module, images) -> np.ndarray:
    """The torch module run by hand: x / 255, N x 3 x 8 x 8, float32."""
    import torch

    x = torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)
    with torch.no_grad():
        return module(x).numpy().astype(np.float64)


def fid_scipy(a, b=None, mu2=None, s2=None) -> float:
    """Frechet distance with scipy.linalg.sqrtm (pytorch-fid's formula), np.cov ddof 1."""
    from scipy import linalg

    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    if b is not None:
        mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def brute_is(logits, n_splits) -> float:
    """The original improved-gan loop, contiguous splits, numpy only."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n, out = len(p), []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        kl = (part * (np.log(part) - np.log(part.mean(0)))).sum(1)
        out.append(math.exp(kl.mean()))
    return float(np.mean(out))


@pytest.fixture
def passes(monkeypatch):
    """Every network pass over an image set (logits-cache misses): (backbone, fingerprint)."""
    from harness.cache import LogitsCache

    got, orig = [], LogitsCache.get

    def get(self, backbone, source, *a, **k):
        res = orig(self, backbone, source, *a, **k)
        if not res.from_cache:
            got.append((backbone.name, backbone.head, source.fingerprint()))
        return res

    monkeypatch.setattr(LogitsCache, "get", get)
    return got


def run(name, tmp_path, *overrides):
    return run_experiment(
        name,
        ["progress=false", f"cache.dir={tmp_path / 'cache'}", *overrides],
        run_dir=tmp_path / name,
    )


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


TEST, TRAIN = ("dataset=digits", "dataset.split=test"), ("reference.split=train",)


# ------------------------------------------------------------------------------ fid_sensitivity
def test_fid_sensitivity_scores_an_encoder_beside_a_classifier(models, tmp_path, passes):
    res = run(
        "fid_sensitivity",
        tmp_path,
        *[f"~backbones.{k}" for k in ("tf2015", "tf2015_torch", "torchvision", "keras", "tfhub")],
        "+backbone@backbones.enc=torch_model",
        *knobs(models, "backbones.enc"),
        "+backbone@backbones.cls=torch_model",
        *knobs(models, "backbones.cls", "cls"),
        *TEST,
        "dataset@reference=digits",
        *TRAIN,
        "resizes=[]",
        "kid.subset_size=auto",
        "kid.subsets=5",
    )
    t = res.table.set_index("backbone_key")
    x = data.load_source("digits", split="test").read_all()
    xr = data.load_source("digits", split="train").read_all()
    fs, fr = direct(models["enc"], x), direct(models["enc"], xr)
    want = fid_scipy(fs, fr)
    assert want > 0.05  # a distance the tolerance below can tell apart
    assert t.loc["enc", "fid"] == pytest.approx(want, rel=1e-4)
    # precision (open k=3 balls of the reference, brute force)
    d_rr = np.linalg.norm(fr[:, None] - fr[None], axis=-1)
    d_rs = np.linalg.norm(fr[:, None] - fs[None], axis=-1)
    radius = np.sort(d_rr, axis=1)[:, 3]
    assert t.loc["enc", "precision"] == pytest.approx(np.mean((d_rs < radius[:, None]).any(0)))
    # the encoder has no IS, and says why; the classifier's IS is the brute-force one
    is_cols = ["is_mean", "is_std", "sg_nats", "sg_bits", "h_y_given_x_bits", "underflow_rows"]
    assert t.loc["enc", is_cols].isna().all() and t.loc["enc", "is_note"] == NO_HEAD
    assert pd.isna(t.loc["cls", "is_note"])
    assert t.loc["cls", "is_mean"] == pytest.approx(
        brute_is(direct(models["cls"], x), 10), rel=1e-5
    )
    pw = res.tables["pairwise"].iloc[0]
    assert np.isfinite(pw.fid_diff_pct) and pd.isna(pw.is_mean_diff_pct)
    out = tmp_path / "fid_sensitivity"
    assert (out / "fid_sensitivity.png").exists() and (out / "pairwise.csv").exists()
    assert (
        f"no IS / S(G) for enc (is_mean ... underflow_rows empty): {NO_HEAD}"
        in (out / "table.md").read_text()
    )
    from experiments import fid_sensitivity as fsens

    assert fsens.headline(res.result).startswith("FID ")
    # one pass per network and image set, nothing else
    assert sorted(p[1] for p in passes) == ["features", "features", "logits", "logits"]
    assert len(set(passes)) == 4


# ------------------------------------------------------------------------------ metric_properties
CORRUPTIONS = [
    "corruptions.intra_class_collapse=[4,1]",
    "corruptions.mode_dropping=[3,1]",
    "corruptions.memorization=[0.5]",
    "corruptions.memorization_jittered=[]",
    "corruptions.noise=[0.5]",
    "corruptions.shift=[]",
    "corruptions.rotate=[]",
    "corruptions.jpeg=[]",
    "corruptions.blur=[1.0]",
    "corruptions.sample_size=[80]",
]


def test_metric_properties_on_an_encoders_features_with_dataset_labels(models, tmp_path, passes):
    res = run(
        "metric_properties",
        tmp_path,
        "backbone=torch_model",
        *knobs(models, "backbone"),
        *TEST,
        "n=160",
        "dataset@reference=digits",
        *TRAIN,
        "reference.n=300",
        "seeds=[0,1]",
        *CORRUPTIONS,
        "kid.subset_size=auto",
        "kid.subsets=3",
    )
    long = res.table
    # no IS / S(G) and none of the extra metrics that need class probabilities
    assert set(long.metric) == {"fid", "kid", "precision", "recall", "density", "coverage"} | {
        "fid_inf", "mmd2", "w1", "one_nn_accuracy", "ct", "authenticity"
    }  # fmt: skip
    assert (long.is_note == NO_HEAD).all() and (long.classes_from == "dataset labels").all()
    x = data.load_source("digits", split="test", n=160).read_all()
    fs = direct(models["enc"], x)
    fr = direct(models["enc"], data.load_source("digits", split="train", n=300).read_all())
    fid = long[long.metric == "fid"]
    assert fid.uncorrupted.iloc[0] == pytest.approx(fid_scipy(fs, fr), rel=1e-4)
    # the noise rows: disjoint random halves, default_rng([seed, 999]) (the documented rule)
    half = np.random.default_rng([1, 999]).permutation(160)[:80]
    row = fid[(fid.corruption == "none (random halves)") & (fid.strength == "half A #0")]
    assert row.set_index("seed").value[1] == pytest.approx(fid_scipy(fs[half], fr), rel=1e-4)
    # the class corruptions ran on the dataset's labels: one class left is far from the reference
    m1 = fid[(fid.corruption == "mode_dropping") & (fid.strength == "m=1")]
    assert len(m1) == 2 and (m1.value > 3 * m1.uncorrupted).all()
    # detects and figures render without IS rows
    out = tmp_path / "metric_properties"
    grid = pd.read_csv(out / "detects.csv").set_index("metric")
    assert list(grid.index) == ["fid", "kid", "precision", "recall", "density", "coverage"] + [
        "fid_inf", "mmd2", "w1", "one_nn_accuracy", "ct", "authenticity"
    ]  # fmt: skip
    assert set(grid.loc["fid"].dropna()) <= {"yes, worse", "yes, better", "no"}
    assert NO_HEAD in (out / "detects.md").read_text()
    for corr in ("intra_class_collapse", "mode_dropping", "memorization", "noise", "blur"):
        assert (out / f"metric_properties_{corr}.png").exists(), corr
    from experiments import metric_properties as mp

    assert mp.headline(res.result).startswith(f"no IS ({NO_HEAD}); FID misses: ")
    # passes: base, reference, and each new pixel set once (noise per seed, blur)
    assert len(passes) == len(set(passes)) == 5


def test_metric_properties_encoder_without_labels_refuses_class_corruptions_before_a_pass(
    models, tmp_path, passes
):
    base = [
        "backbone=torch_model",
        *knobs(models, "backbone"),
        "dataset=noise",
        "dataset.size=8",
        "dataset.count=60",
        "dataset@reference=digits",
        *TRAIN,
        "reference.n=100",
        "seeds=[0]",
        *CORRUPTIONS,
        "corruptions.noise=[]",
        "corruptions.blur=[]",
        "corruptions.sample_size=[30]",
        "kid.subsets=2",
        "kid.subset_size=auto",
    ]
    with pytest.raises(ConfigError) as e:
        run("metric_properties", tmp_path, *base)
    msg = one_line(e)
    assert "corruptions.intra_class_collapse and mode_dropping need classes" in msg
    assert "no labels" in msg and NO_HEAD in msg and "dataset=digits" in msg
    assert msg.endswith("corruptions.intra_class_collapse=[] corruptions.mode_dropping=[]")
    assert passes == []
    res = run(
        "metric_properties",
        tmp_path,
        *base,
        "corruptions.intra_class_collapse=[]",
        "corruptions.mode_dropping=[]",
        "overwrite=true",
    )
    assert res.table.classes_from.iloc[0].startswith("none (the dataset has no labels")
    assert set(res.table.corruption) == {"none", "none (random halves)", "memorization"} | {
        "sample_size"
    }
    assert len(passes) == 2  # samples and reference


# ------------------------------------------------------------------------ reference_stats, sanity
def test_reference_stats_and_sanity_with_an_encoder(models, tmp_path, passes):
    run(
        "reference_stats",
        tmp_path,
        "backbone=torch_model",
        *knobs(models, "backbone"),
        "dataset=digits",
        "dataset.split=train",
    )
    xr = data.load_source("digits", split="train").read_all()
    fr = direct(models["enc"], xr)
    st = np.load(tmp_path / "reference_stats" / "stats.npz")
    np.testing.assert_allclose(st["mu"], fr.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st["sigma"], np.cov(fr, rowvar=False), rtol=1e-4, atol=1e-6)
    assert len(passes) == 1
    # sanity: checks 2, 7, 10 run; the class checks are "not applicable", with no pass for them
    sanity_base = ["backbone=torch_model", *knobs(models, "backbone"), *TEST]
    res = run(
        "sanity",
        tmp_path,
        *sanity_base,
        f"reference_stats={tmp_path / 'reference_stats' / 'stats.npz'}",
    )
    rep = json.loads((tmp_path / "sanity" / "report.json").read_text())
    status = {c["id"]: c["status"] for c in rep["checks"]}
    assert sorted(status) == list(range(1, 13)) and status[12] == "NOT RUN"  # no encoders=
    assert {i for i, s in status.items() if s == "N/A"} == {1, 3, 4, 5, 6, 8, 9, 11}
    na = next(c for c in rep["checks"] if c["id"] == 8)
    assert na["threshold"] == f"not applicable: {NO_HEAD}"
    fs = direct(models["enc"], data.load_source("digits", split="test").read_all())
    c10 = next(c for c in rep["checks"] if c["id"] == 10)
    want = fid_scipy(fs, mu2=fr.mean(0), s2=np.cov(fr, rowvar=False))
    assert c10["value"]["fid"] == pytest.approx(want, rel=1e-4)
    assert c10["details"]["stats_verified"] is True
    assert rep["summary"]["is_mean"] is None and rep["summary"]["is_note"] == NO_HEAD
    assert rep["summary"]["n_not_applicable"] == 8 and rep["summary"]["checks_run"] == [2, 7, 10]
    line = rep["reporting_line"]
    assert line.startswith("FID = ") and f"IS: not applicable ({NO_HEAD})" in line
    assert "539 samples" in line and "IS =" not in line
    md = (tmp_path / "sanity" / "report.md").read_text()
    assert f"8 not applicable ({NO_HEAD})" in md and "### 3. order: **N/A**" in md
    assert not list((tmp_path / "sanity").glob("check*.png"))  # no IS figures
    assert (res.table.status == "N/A").sum() == 8
    assert len(passes) == 2  # the samples' features, once
    # only class checks asked for: one line, before any pass
    with pytest.raises(ConfigError) as e:
        run("sanity", tmp_path, *sanity_base, "checks=[1,3,4]", "overwrite=true")
    assert "all need class probabilities" in one_line(e) and "checks 2, 7, 10" in str(e.value)
    # the pixel check alone needs no network pass at all
    run("sanity", tmp_path, *sanity_base, "checks=[2,8]", "overwrite=true")
    rep = json.loads((tmp_path / "sanity" / "report.json").read_text())
    assert [(c["id"], c["status"] == "N/A") for c in rep["checks"]] == [(2, False), (8, True)]
    assert len(passes) == 2


# ------------------------------------------------------------------------------ IS experiments
ENC_IN_MAP = ["+backbone@backbones.enc=torch_model"]
IS_EXPERIMENTS = {
    "splits": ["backbone=torch_model", "dataset=digits"],
    "ordering": ["~backbones.torchvision", *ENC_IN_MAP, "~datasets.imagenet_val",
                 "+dataset@datasets.d=digits"],
    "weights_sensitivity": [*[f"~backbones.{k}" for k in ("tf2015", "torchvision", "keras",
                                                           "tfhub")],
                            *ENC_IN_MAP, "~datasets.imagenet_val", "~datasets.cifar10_train",
                            "+dataset@datasets.d=digits"],
}  # fmt: skip
#: experiments that refuse only when they ask for probabilities, after one pass (their files
#: are not this change's to edit): the refusal should move before the pass
REFUSE_AFTER_A_PASS: set = set()


@pytest.mark.parametrize("name", sorted(IS_EXPERIMENTS))
def test_is_experiments_refuse_an_encoder_in_one_line_before_any_pass(
    models, tmp_path, passes, name, request
):
    node = "backbone" if name == "splits" else "backbones.enc"
    with pytest.raises(HarnessError) as e:
        run(name, tmp_path, *IS_EXPERIMENTS[name], *knobs(models, node))
    assert one_line(e).startswith(f"backbone torch_model has {NO_HEAD}")
    if name in REFUSE_AFTER_A_PASS:
        request.node.add_marker(
            pytest.mark.xfail(
                strict=True,
                reason=f"experiments/{name}.py refuses an encoder only after its first pass "
                "(the probabilities), not before it",
            )
        )
    assert passes == []
