"""Each sanity check fires on a crafted input and stays quiet on a clean one; report schema."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import data, sanity, scores
from harness.scores import SplitSpec

from .conftest import needs_torch

TEN = SplitSpec(10)

ROOT = Path(__file__).resolve().parent.parent


def clean_probs(n=6000, c=100, seed=0):
    """Confident, class-balanced, well-mixed predictions (an ImageNet-like sample)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    p = np.full((n, c), 0.05 / (c - 1))
    p[np.arange(n), y] = 0.95
    return scores.prepare(p)


def natural_images(n=50, seed=0):
    return data.load("synthetic", count=n, seed=seed).read_all()


def test_sample_count():
    big = clean_probs(n=50_000, c=50)
    assert sanity.check_sample_count(big, TEN).status == sanity.PASS
    small = sanity.check_sample_count(clean_probs(n=2000), TEN)
    assert small.status == sanity.FAIL and small.value == 2000
    mid = sanity.check_sample_count(clean_probs(n=8000), TEN)
    assert mid.status == sanity.WARN
    # the extrapolated value at 50,000 is above the biased value at N (more samples per split)
    assert mid.details["predicted_is_at_50000"] > mid.details["is_at_n"]


def test_input_format_fires_on_wrong_ranges_constant_and_bgr():
    good = natural_images()
    assert sanity.check_input_format(good).status == sanity.PASS
    zero_one = (good / 255.0).astype(np.uint8)  # [0, 1] floats cast to uint8: only 0 and 1
    c = sanity.check_input_format(zero_one)
    assert c.status == sanity.FAIL and "[0, 1] floats" in " ".join(c.details["problems"])
    m11 = good.astype(np.float64) / 127.5 - 1  # [-1, 1] written as uint8 by *255, clipped at 0
    clipped = np.clip(m11 * 255, 0, 255).astype(np.uint8)
    c = sanity.check_input_format(clipped)
    assert c.status == sanity.WARN and "clipped at 0" in " ".join(c.details["problems"])
    const = np.full_like(good, 120)
    assert sanity.check_input_format(const).status == sanity.FAIL
    bgr = good.copy()
    bgr[..., 0] //= 3  # a dark red channel: looks like B and R swapped
    c = sanity.check_input_format(bgr)
    assert c.status == sanity.WARN and "BGR" in " ".join(c.details["problems"])


def test_order_fires_on_class_sorted_samples():
    prep = clean_probs()
    assert sanity.check_order(prep, TEN).status == sanity.PASS
    order = np.argsort(prep.probs.argmax(1), kind="stable")
    sorted_prep = scores.PreparedProbs(prep.probs[order], prep.neg_entropy[order])
    c = sanity.check_order(sorted_prep, TEN)
    assert c.status == sanity.WARN
    assert c.value["mean_run_length"] > 10 and c.value["is_as_loaded"] < c.value["is_shuffled"]


def test_splits_flags_a_gap_larger_than_the_std():
    # quiet only when each split's marginal is estimated well (2 classes, 5,000 samples per split)
    assert sanity.check_splits(clean_probs(n=50_000, c=2), TEN).status == sanity.PASS
    # with 100 classes the split bias already exceeds the std over splits at 50,000 samples:
    # the systematic error the paper describes, which the reported +- does not cover
    c = sanity.check_splits(clean_probs(n=50_000), TEN)
    assert c.status == sanity.WARN and c.details["gap"] > 3 * c.value["is_10_splits_std"]
    small = sanity.check_splits(clean_probs(n=300), TEN)  # 30 samples per split for 100 classes
    assert small.status == sanity.WARN and small.details["gap"] > small.value["is_10_splits_std"]


def test_backbone_spread_and_preprocessing():
    assert (
        sanity.check_backbone_spread(
            {"tf2015": 10.0, "torchvision": 10.2}, "tf2015", "tf2015"
        ).status
        == sanity.PASS
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": 11.2}, "tf2015", "tf2015").status
        == sanity.WARN
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": 10.1}, "keras", "tf2015").status
        == sanity.WARN
    )
    assert (
        sanity.check_backbone_spread({"tf2015": 10.0, "keras": None}, "tf2015", "tf2015").status
        == sanity.WARN
    )
    assert sanity.check_preprocessing({"a": 10.0, "b": 10.1}, "a").status == sanity.PASS
    assert sanity.check_preprocessing({"a": 10.0, "b": 10.5}, "a").value[
        "spread_pct"
    ] == pytest.approx(5.0)


def test_memorization_copies_and_collapse():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 64)) + 5  # features with a shared mean, like ReLU pool features
    fresh = rng.normal(size=(200, 64)) + 5
    assert sanity.check_memorization(fresh, train, 0.995).status == sanity.PASS
    copies = np.concatenate([fresh[:190], train[:10]])  # 5% copied
    c = sanity.check_memorization(copies, train, 0.995)
    assert c.status == sanity.FAIL and c.value["copied_from_reference"] == pytest.approx(0.05)
    collapsed = np.repeat(fresh[:20], 10, axis=0)
    assert sanity.check_memorization(collapsed, None, 0.995).status == sanity.FAIL


def test_domain_fit_and_numerics():
    assert sanity.check_domain_fit(clean_probs()).status == sanity.PASS
    flat = scores.prepare(np.full((100, 1000), 1e-3))
    assert sanity.check_domain_fit(flat).status == sanity.FAIL
    logits = np.array([[0.0, -2000.0], [1.0, 2.0]])
    c = sanity.check_numerics(logits, scores.prepare(scores.softmax(logits)))
    assert c.status == sanity.PASS and c.value["underflowed_rows"] == 1
    assert sanity.check_numerics(np.array([[np.nan, 0]]), clean_probs(10, 2)).status == sanity.FAIL


def test_reporting_line():
    prov = {
        "backbone": "torchvision",
        "weights": "pretrained",
        "weights_kind": "pretrained",
        "weights_sha256": "0cc3c7bd" + "a" * 56,
        "resize": "tf1_bilinear",
        "input_size": 299,
    }
    line, latex = sanity.reporting_line(prov, 8.1234, 0.0912, 50000, 10, "contiguous", 0, 2.0712)
    assert line == (
        "IS = 8.12 ± 0.09 (torchvision IMAGENET1K_V1, sha256 0cc3c7bdaaaa...; 50,000 samples; "
        "10 contiguous splits, ddof 0; TF1 bilinear resize to 299; S(G) = 2.07 nats)"
    )
    assert latex.startswith(r"$\mathrm{IS} = 8.12 \pm 0.09$") and "50{,}000" in latex


REPORT_KEYS = {
    "report_version",
    "random_weights",
    "reporting_line",
    "reporting_line_latex",
    "summary",
    "checks",
    "backbone",
    "samples",
    "reference",
}
CHECK_KEYS = {"id", "name", "status", "value", "threshold", "why", "fix", "details"}


@needs_torch
def test_sanity_experiment_end_to_end_json_schema_and_strict_exit(tmp_path):
    x = data.load("synthetic", count=60).read_all()
    np.savez(tmp_path / "samples.npz", images=x)
    np.savez(
        tmp_path / "train.npz",
        images=np.concatenate([x[:30], data.load("synthetic", count=30, seed=9).read_all()]),
    )
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "+experiment=sanity",
        "weights=random:0",
        "dataset=arrays",
        f"dataset.path={tmp_path / 'samples.npz'}",
        "+dataset@reference=arrays",
        f"reference.path={tmp_path / 'train.npz'}",
        "backbone.input_size=75",
        "~other_backbones",
        "progress=false",
        "n_splits=4",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    r = subprocess.run(cmd + ["strict=true"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "check(s) FAILED" in r.stderr.strip().splitlines()[-1]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert REPORT_KEYS <= set(rep) and rep["random_weights"] is True
    assert [c["id"] for c in rep["checks"]] == list(range(1, 10))
    for c in rep["checks"]:
        assert CHECK_KEYS <= set(c) and c["status"] in ("PASS", "WARN", "FAIL")
    by = {c["name"]: c for c in rep["checks"]}
    assert by["sample_count"]["status"] == "FAIL"  # 60 samples
    assert by["memorization_collapse"]["value"]["copied_from_reference"] == pytest.approx(
        0.5
    )  # 30 of 60 copied
    assert "RANDOM WEIGHTS" in rep["reporting_line"] and "60 samples" in rep["reporting_line"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Reporting line" in md and "RANDOM WEIGHTS" in md
    for f in ("check3_order.png", "check4_splits.png", "check5_backbones.png", "check6_resize.png"):
        assert (tmp_path / "run" / f).exists()
    # the same run dir is not reused by accident ...
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (
        r.returncode == 2 and "already holds results" in r.stderr and "overwrite=true" in r.stderr
    )
    # ... and without strict the same run exits 0
    r = subprocess.run(
        cmd + ["overwrite=true"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
