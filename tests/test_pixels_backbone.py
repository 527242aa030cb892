"""The ``pixels`` backbone: pixel space (raw pixels / 255, flattened; no network, no weights).

Expected features are computed here with numpy in float64 (``x.reshape(N, -1) / 255``), not by
the backbone; the end-to-end run is metric_properties on sklearn's digits in pixel space, offline.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import backbones, data
from harness.backbones import weights as W
from harness.errors import ConfigError, HarnessError


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def digits_test():
    return data.load_source("digits", split="test", n=40).read_all()


# ------------------------------------------------------------------------------ features
def test_features_are_the_pixels_over_255_flattened(digits_test, rnd_images):
    for x in (digits_test, rnd_images):  # 8x8 grey-in-RGB digits, 32x32 random RGB
        want = x.astype(np.float64).reshape(len(x), -1) / 255.0
        logits, feats = backbones.load_backbone("pixels", batch_size=7).forward(x, features=True)
        assert logits.shape == (len(x), 0)  # no classifier head
        assert feats.shape == (len(x), x.shape[1] * x.shape[2] * 3) and feats.dtype == np.float32
        np.testing.assert_allclose(feats, want, rtol=2e-7, atol=0)  # float32 rounding only
        f64 = backbones.load_backbone("pixels", dtype="float64").features(x)
        np.testing.assert_array_equal(f64, want.astype(np.float32))  # one rounding, at the end


def test_one_channel_is_the_mean_of_r_g_b(digits_test, rnd_images):
    x = rnd_images
    want = x.astype(np.float64).mean(axis=3).reshape(len(x), -1) / 255.0
    got = backbones.load_backbone("pixels", channels=1, dtype="float64").features(x)
    assert got.shape == (len(x), 32 * 32)
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)
    # the digits are grey replicated to RGB: one channel is exactly one of them
    g = backbones.load_backbone("pixels", channels=1, input_size=8).features(digits_test)
    np.testing.assert_allclose(g, digits_test[..., 0].reshape(len(digits_test), -1) / 255.0,
                               rtol=2e-7, atol=0)  # fmt: skip


def test_native_size_only_one_size_per_run_and_no_resize(digits_test):
    net = backbones.load_backbone("pixels")
    assert net.input_size is None and net.min_image_side <= 8
    assert net.features(digits_test).shape[1] == 8 * 8 * 3
    with pytest.raises(HarnessError) as exc:  # a mixed size is an error, not a silent new length
        net.features(np.zeros((2, 16, 16, 3), np.uint8))
    assert "one image size per run" in one_line(exc)
    with pytest.raises(HarnessError) as exc:  # a pinned size is checked
        backbones.load_backbone("pixels", input_size=16).features(digits_test)
    assert "backbone.input_size=16" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        backbones.load_backbone("pixels", resize="antialias")
    assert "resize must be one of native, none" in one_line(exc)
    with pytest.raises(HarnessError) as exc:
        net.logits(digits_test)
    assert "no classifier head" in one_line(exc)


# ------------------------------------------------------------------------------ weights
@pytest.mark.parametrize("spec", ["random:0", "file:x", "pretrained", "ported:torchvision"])
def test_any_weights_but_none_is_a_one_line_error(spec):
    with pytest.raises(ConfigError) as exc:
        backbones.load_backbone("pixels", weights=spec)
    assert "backbone pixels has no weights: weights=none" in one_line(exc)


@pytest.mark.parametrize("name", ["torchvision", "tf2015", "torch_model", "keras_model"])
def test_weights_none_is_refused_by_backbones_with_weights(name):
    with pytest.raises(ConfigError) as exc:
        backbones.load_backbone(name, weights="none", input_size=75)
    assert f"backbone {name} needs weights" in one_line(exc)


def test_weights_none_spec_and_provenance():
    spec = W.WeightsSpec.parse("none")
    assert spec.kind == "none" and str(spec) == "none" and not spec.is_random
    assert W.verification(spec, {}, False, "pixels")["weights_status"] == W.NO_WEIGHTS
    with pytest.raises(HarnessError, match="names no weights file"):
        W.locate_file("pixels", spec, None, False)
    net = backbones.load_backbone("pixels", channels=1)
    p = net.provenance()
    assert (p["backbone"], p["weights"], p["weights_kind"]) == ("pixels", "none", "none")
    assert p["weights_sha256"] == W.NO_WEIGHTS_SHA256 and p["weights_status"] == "no weights"
    assert p["num_classes"] == 0 and p["value_range"] == "[0, 1]" and p["channels"] == 1
    assert not net.random_weights and net.weights_status == W.NO_WEIGHTS
    # the knobs are the cache key: another channel count or dtype is another entry
    ids = {
        str(backbones.load_backbone("pixels", **kw).cache_identity())
        for kw in ({}, {"channels": 1}, {"dtype": "float64"}, {"batch_size": 3})
    }
    assert len(ids) == 3  # batch_size does not change the features


def test_features_go_through_the_logits_cache(tmp_path):
    from omegaconf import OmegaConf

    from harness import pipeline

    cfg = OmegaConf.create({"cache": {"dir": str(tmp_path)}, "progress": False})
    src = data.load_source("digits", split="train", n=30)
    net = backbones.load_backbone("pixels")
    first = pipeline.outputs(cfg, net, src, features=True)
    again = pipeline.outputs(cfg, backbones.load_backbone("pixels"), src, features=True)
    assert not first.from_cache and again.from_cache and first.key == again.key
    want = src.read_all().reshape(30, -1) / 255.0
    np.testing.assert_allclose(again.pool, want, rtol=2e-7, atol=0)
    assert again.logits.shape == (30, 0)
    grey = pipeline.outputs(cfg, backbones.load_backbone("pixels", channels=1), src, features=True)
    assert grey.key != first.key and grey.pool.shape == (30, 64)


# ------------------------------------------------------------------------------ end to end
# the digits' border pixels are 0 in every image: pixel space's covariances are singular
@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_metric_properties_runs_in_pixel_space_on_digits(tmp_path):
    from harness.api import run_experiment

    off = ("mode_dropping", "memorization", "memorization_jittered", "noise", "shift", "rotate",
           "jpeg", "blur", "sample_size")  # fmt: skip
    res = run_experiment(
        "metric_properties",
        [
            "backbone=pixels",
            "dataset=digits",
            "dataset.split=test",
            "dataset@reference=digits",
            "reference.split=train",
            "n=null",
            "seeds=[0]",
            "corruptions.intra_class_collapse=[1]",
            *(f"corruptions.{c}=[]" for c in off),
            "extra_metrics=[]",
            "kid.subset_size=auto",
            "detection.halvings=1",
            "progress=false",
            f"cache.dir={tmp_path / 'cache'}",
        ],
        run_dir=tmp_path / "run",
    )
    long = res.table
    assert set(long.backbone) == {"pixels"} and set(long.weights) == {"none"}
    assert set(long.weights_status) == {"no weights"}
    assert set(long.weights_sha256) == {W.NO_WEIGHTS_SHA256}
    assert not res.result.random_weights
    fid = long[(long.metric == "fid") & (long.corruption == "none")]
    assert len(fid) and all(math.isfinite(v) and v > 0 for v in fid.value)
    # the uncorrupted FID is pixel space's: numpy's covariances of x / 255 (192-d), scipy's sqrtm
    from scipy import linalg

    a = data.load_source("digits", split="test").read_all()
    b = data.load_source("digits", split="train").read_all()
    fa, fb = (v.reshape(len(v), -1).astype(np.float64) / 255.0 for v in (a, b))
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    want = np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert fid.value.iloc[0] == pytest.approx(want, rel=1e-3)
    assert "no classifier head" in str(long.is_note.dropna().iloc[0])


def test_sanity_reporting_line_and_passes_table_say_no_weights():
    from harness import backbones
    from harness.sanity.passes import weights_short
    from harness.sanity.report import features_line

    net = backbones.load_backbone("pixels", weights="none")
    text, _ = features_line(net.provenance(), 539, "FID = 0.24")
    assert "pixels features, no weights; native size, no resize; 539 samples" in text
    assert "None" not in text and "sha256" not in text
    assert weights_short(net) == "no weights"
