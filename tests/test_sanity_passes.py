"""The sanity report's network passes: each identical (network, images) pass runs once within a
report, also with the logits cache off; every pass is listed with what it buys, how it was served
and its wall time (report.json ``passes``, report.md, passes.csv); an unavailable comparison
network is skipped with its reason."""

import json

import numpy as np
import pandas as pd
import pytest

from harness import data
from harness import resize as rs

from .conftest import needs_torch

N = 24
#: a tiny run without the disk cache: every pass that runs is a network forward over the images
TINY = [
    "backbone=torchvision",
    "backbone.input_size=75",
    "progress=false",
    "n_splits=2",
    "cache.enabled=false",
]
ONLY_TORCHVISION = ["~other_backbones.tf2015", "~other_backbones.keras", "~other_backbones.tfhub"]


@pytest.fixture
def forwards(monkeypatch):
    """Every network forward call: (backbone, resize operation and size, rows, features)."""
    from harness.backbones.base import Backbone

    calls, orig = [], Backbone.forward

    def forward(self, images, features=False):
        op = f"{rs.canonical(self.resize_method, self.align_corners)} to {self.input_size}"
        calls.append((self.name, op, len(images), features))
        return orig(self, images, features)

    monkeypatch.setattr(Backbone, "forward", forward)
    return calls


def rows_by_pass(calls) -> dict:
    """(backbone, resize operation) -> images it was run on, over all forward calls."""
    out = {}
    for name, op, n, _ in calls:
        out[(name, op)] = out.get((name, op), 0) + n
    return out


def _run(tmp_path, *overrides):
    from harness import api

    np.savez(tmp_path / "s.npz", images=data.load_source("synthetic", count=N).read_all())
    api.run_experiment(
        "sanity",
        [*TINY, "dataset=arrays", f"dataset.path={tmp_path / 's.npz'}", *overrides],
        run_dir=tmp_path / "run",
    )
    run = tmp_path / "run"
    return json.loads((run / "report.json").read_text()), (run / "report.md").read_text(), run


@needs_torch
def test_identical_resize_passes_run_once_without_the_cache(tmp_path, forwards):
    """Check 6 asks for 6 resize methods on the chosen network: torchvision's native resize
    (torch bilinear, align_corners=True) is the samples' pass of checks 1-4, and TF2 bilinear is
    torch bilinear with align_corners=False.  With the cache off, 7 requests are 5 passes."""
    rep, md, run = _run(tmp_path, "weights=random:0", "checks=[1,6]")
    per_pass = rows_by_pass(forwards)
    assert len(per_pass) == 5 and set(per_pass.values()) == {N}, per_pass  # once each
    assert sum(n for *_, n, _ in forwards) == 5 * N

    passes = rep["passes"]
    assert len(passes) == 7 and [p["how"] for p in passes].count("computed") == 5
    by_purpose = {p["purpose"]: p for p in passes}
    native = by_purpose["check 6: IS with torch_bilinear(align_corners=True) resize"]
    assert native["how"] == "same as pass 1" and native["pass"] == 1 and native["seconds"] == 0
    tf2 = by_purpose["check 6: IS with tf2_bilinear resize"]
    half = by_purpose["check 6: IS with torch_bilinear(align_corners=False) resize"]
    assert half["how"] == f"same as pass {tf2['pass']}" and tf2["how"] == "computed"
    first = passes[0]
    assert first["images"] == "samples" and first["checks"] == [1] and first["n_images"] == N
    assert all(p["seconds"] > 0 for p in passes if p["how"] == "computed")
    s = rep["passes_summary"]
    assert (s["requested"], s["run"], s["computed"], s["shared"], s["skipped"]) == (7, 5, 5, 2, 0)
    # the two shared requests still get their value: check 6 has all 6 methods
    check6 = next(c for c in rep["checks"] if c["id"] == 6)
    assert all(check6["value"][k] is not None for k in rs.COMPARED)
    assert check6["value"]["tf2_bilinear"] == check6["value"]["torch_bilinear(align_corners=False)"]

    assert "## Network passes: what each one buys, and how long it took" in md
    assert "7 network passes requested, 5 run (5 computed" in md and "same as pass 1" in md
    csv = pd.read_csv(run / "passes.csv")
    assert len(csv) == 7 and list(csv["how"]) == [p["how"] for p in passes]


@needs_torch
def test_checks_sharing_one_pass_across_purposes(tmp_path, forwards):
    """Check 5's torchvision (native resize) is check 6's align_corners=True pass, and the
    reference (the same images) is the samples' pass with features: one pass each, the
    samples' pass computed once with pool features for checks 7 and 10."""
    rep, md, _ = _run(
        tmp_path,
        "weights=random:0",
        "backbone.resize=antialias",
        *ONLY_TORCHVISION,
        "other_backbones.torchvision.input_size=75",
        "checks=[5,6,7,10]",
        "+dataset@reference=arrays",
        f"reference.path={tmp_path / 's.npz'}",
    )
    per_pass = rows_by_pass(forwards)
    # antialias (samples, reference, check 6), torch bilinear True (check 5, check 6), tf1,
    # half-pixel bilinear (tf2 and torch False), pil bicubic
    assert len(per_pass) == 5 and set(per_pass.values()) == {N}, per_pass
    assert all(
        f for name, op, _, f in forwards if op.startswith("antialias")
    )  # features in the one pass
    by_purpose = {p["purpose"]: p for p in rep["passes"]}
    assert by_purpose["reference pool features"]["how"] == "same as pass 1"
    assert by_purpose["reference pool features"]["checks"] == [7, 10]
    # the comparison network has the chosen one's name: its own bar, the chosen one's kept
    tv = by_purpose["check 5: IS under torchvision (other_backbones.torchvision)"]
    assert tv["how"] == "computed" and tv["resize"] == "torch_bilinear(align_corners=True)"
    native = by_purpose["check 6: IS with torch_bilinear(align_corners=True) resize"]
    assert native["how"] == f"same as pass {tv['pass']}"
    assert by_purpose["check 6: IS with antialias resize"]["how"] == "same as pass 1"
    assert rep["passes"][0]["checks"] == [5, 7, 10] and rep["passes"][0]["features"] is True
    # the values the checks report are those of the shared passes
    by_id = {c["id"]: c for c in rep["checks"]}
    v5, v6 = by_id[5]["value"], by_id[6]["value"]
    other = v5["torchvision (other_backbones.torchvision)"]
    assert other == v6["torch_bilinear(align_corners=True)"]
    assert v5["torchvision"] == v6["antialias"] == rep["summary"]["is_mean"]
    assert by_id[7]["value"]["copied_from_reference"] == pytest.approx(1.0)  # same images


@needs_torch
def test_unavailable_comparison_network_is_skipped_with_its_reason(tmp_path, forwards):
    missing = tmp_path / "no_such_weights.pth"
    rep, md, run = _run(
        tmp_path,
        "backbone.weights=random:0",
        *ONLY_TORCHVISION,
        f"other_backbones.torchvision.weights=file:{missing}",
        "checks=[5]",
    )
    skipped = [p for p in rep["passes"] if p["how"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["network"] == "torchvision", rep["passes"]
    assert (
        skipped[0]["reason"].startswith("not available:") and missing.name in (skipped[0]["reason"])
    )
    assert skipped[0]["checks"] == [5] and skipped[0]["pass"] is None
    assert rep["passes_summary"]["skipped"] == 1 and rep["passes_summary"]["run"] == 1
    assert len(rows_by_pass(forwards)) == 1  # only the samples' pass ran
    check5 = next(c for c in rep["checks"] if c["id"] == 5)
    # no bar for it, and the chosen network (also torchvision) keeps its own
    assert check5["value"] == {"torchvision": rep["summary"]["is_mean"]}
    assert check5["details"] == {} and "needs >= 2 backbones" in check5["threshold"]
    assert "1 skipped (network not available)" in md and "skipped: not available:" in md
