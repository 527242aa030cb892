"""``+experiment=score`` / ``inception-note score a=... b=...`` (issue 26, item 3): the everyday
job in one line, its numbers against independent computations (images decoded here with PIL,
features from one ``net.forward`` pass, IS by the definition in numpy, FID exactly in sample
space, KID by torch-fidelity, PRDC by the authors' ``prdc`` package), and the harness's FID exact
where the peers' square root is not (README's note)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import api, stats_files
from harness import feature_metrics as fm
from harness.errors import ConfigError

from .conftest import has, needs_torch
from .fixtures import write_pngs

ROOT = Path(__file__).resolve().parent.parent
RANDOM = ["weights=random:0", "progress=false"]


def exact_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID in float64 in sample space: tr sqrt(S1^1/2 S2 S1^1/2) = ||A B^T||_* / sqrt((n1-1)(n2-1))
    with A, B the centred features (exact for any N, no matrix square root)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    ca, cb = a - a.mean(0), b - b.mean(0)
    n1, n2 = len(a), len(b)
    tr = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (ca**2).sum() / (n1 - 1) + (cb**2).sum() / (n2 - 1) - 2 * tr)


def numpy_is(logits: np.ndarray, n_splits: int) -> tuple[float, float]:
    """The classic IS by its definition: float64 softmax, contiguous splits at i*N//S,
    exp(mean KL(p(y|x) || p(y))) per split, mean and std (ddof 0)."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(p)
    vals = []
    for i in range(n_splits):
        part = p[i * n // n_splits : (i + 1) * n // n_splits]
        m = part.mean(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(m)), 0.0).sum(1)
        vals.append(np.exp(kl.mean()))
    return float(np.mean(vals)), float(np.std(vals))


def pil_images(folder: Path) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(f).convert("RGB")) for f in sorted(Path(folder).glob("*.png"))]
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    write_pngs(d / "a", n=24, seed=0)
    write_pngs(d / "b", n=20, seed=1)
    return d


@pytest.fixture(scope="module")
def scored(folders):
    """One score run (random weights, a and b folders, k=5 for all four PRDC metrics)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        res = api.run_experiment(
            "score",
            [
                f"a={folders / 'a'}",
                f"b={folders / 'b'}",
                *RANDOM,
                "prdc.k_precision_recall=5",
                "kid.subsets=20",
            ],
            run_dir=folders / "run",
        )
    return res, out.getvalue()


@needs_torch
def test_score_numbers_equal_independent_computations(folders, scored):
    from torch_fidelity.metric_kid import kid_features_to_metric

    from harness import backbones

    res, stdout = scored
    got = json.loads((res.run_dir / "score.json").read_text())
    # one forward pass per folder, images decoded here with PIL (not the harness's reader)
    net = backbones.load_backbone("tf2015_torch", weights="random:0")
    logits_a, pool_a = net.forward(pil_images(folders / "a"), features=True)
    _, pool_b = net.forward(pil_images(folders / "b"), features=True)

    is_mean, is_std = numpy_is(logits_a, 10)
    assert got["is_mean"] == pytest.approx(is_mean, rel=1e-6)
    assert got["is_std"] == pytest.approx(is_std, rel=1e-4, abs=1e-9)
    assert got["n_splits"] == 10 and got["a"]["n"] == 24 and got["b"]["n"] == 20
    assert got["fid"] == pytest.approx(exact_fid(pool_a, pool_b), rel=1e-6)

    import torch

    kid = kid_features_to_metric(
        torch.from_numpy(pool_a.astype(np.float64)),
        torch.from_numpy(pool_b.astype(np.float64)),
        kid_subsets=20,
        kid_subset_size=20,  # auto: min(1000, 24, 20)
        rng_seed=2020,
        verbose=False,
    )
    assert got["kid_subset_size"] == 20 and got["kid_subsets"] == 20
    assert got["kid_mean"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-5)
    assert got["kid_std"] == pytest.approx(kid["kernel_inception_distance_std"], rel=1e-4)

    if has("prdc"):
        from prdc import compute_prdc

        ref = compute_prdc(real_features=pool_b, fake_features=pool_a, nearest_k=5)
        for k in ("precision", "recall", "density", "coverage"):
            assert got[k] == pytest.approx(ref[k], abs=1e-12), k

    # printed in full precision (Python's shortest round-trip repr), then one line of JSON
    assert f"{got['is_mean']!r} ± {got['is_std']!r}" in stdout
    assert f"FID       = {got['fid']!r}" in stdout
    assert f"{got['kid_mean']!r} ± {got['kid_std']!r}" in stdout
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    assert json.loads(line) == got
    # the reporting line (the sanity report's) and the weights status say RANDOM WEIGHTS
    assert got["reporting_line"].startswith("RANDOM WEIGHTS") and "FID = " in got["reporting_line"]
    assert f"Reporting line:\n  {got['reporting_line']}" in stdout
    assert got["random_weights"] and "RANDOM WEIGHTS" in got["weights"]["status"]
    assert got["weights"]["weights_kind"] == "random"
    assert any("2,048" in n for n in got["notes"])  # N < 2,048: FID biased upwards
    prov = json.loads((res.run_dir / "provenance.json").read_text())
    assert prov["weights_note"] and prov["score"]["fid"] == got["fid"]


@needs_torch
def test_score_against_reference_statistics_gives_the_same_fid(folders, scored):
    """b=<stats.npz> (reference_stats's file): the same FID as against the folder, no KID/PRDC
    (they need the reference's features), said in a note; no new network pass (cached)."""
    res, _ = scored
    stats = folders / "b_stats.npz"
    api.run_experiment(
        "reference_stats",
        ["dataset=folder", f"dataset.root={folders / 'b'}", f"out={stats}", *RANDOM],
        run_dir=folders / "stats_run",
    )
    out = api.run_experiment(
        "score", [f"a={folders / 'a'}", f"b={stats}", *RANDOM], run_dir=folders / "run_stats"
    )
    got = json.loads((out.run_dir / "score.json").read_text())
    first = json.loads((res.run_dir / "score.json").read_text())
    assert got["b"]["kind"] == "stats" and got["b"]["n"] == 20
    assert got["fid"] == pytest.approx(first["fid"], rel=1e-9)
    assert got["kid_mean"] is None and got["precision"] is None
    assert got["reference_stats"] == "verified"
    assert any("KID and PRDC need" in n for n in got["notes"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["a=/nonexistent/samples"], r"^a=/nonexistent/samples: no such folder or file; give"),
        (["a=."], None),  # a folder: composes
        (["b=/nonexistent/ref"], r"^a is required"),
        (["a=.", "b=/nonexistent/ref"], r"^b=/nonexistent/ref: no such folder or file"),
        (["a=.", "b=pyproject.toml"], r"^b=pyproject.toml: not a folder, .npz or .npy"),
        (["a=.", "allow_mismatched_stats=true"], r"allow_mismatched_stats=true has no effect"),
    ],
)
def test_score_inputs_are_checked_before_anything_runs(overrides, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    if message is None:
        api.compose("score", overrides)
        return
    with pytest.raises(ConfigError, match=message) as e:
        api.compose("score", overrides)
    assert "\n" not in str(e.value)


def test_reference_statistics_are_not_images_to_score(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 4))
    stats_files.save_stats(tmp_path / "s.npz", fm.feature_stats(x))
    with pytest.raises(ConfigError, match=r"holds reference statistics .* give your images as a="):
        api.compose("score", [f"a={tmp_path / 's.npz'}"])
    api.compose("score", [f"a={tmp_path}", f"b={tmp_path / 's.npz'}"])  # as b: fine


@needs_torch
def test_short_command_line_help_and_missing_folder(folders):
    """`python -m harness score ...` (= the console script `inception-note score ...`): the
    JSON line on stdout; -h still Hydra's help with the score keys; a missing folder is one
    line within seconds, before any run dir exists."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    r = subprocess.run(
        [sys.executable, "-m", "harness", "score", f"a={folders / 'a'}", *RANDOM]
        + [f"output_root={folders / 'cli'}"],
        cwd=folders,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    got = json.loads(line)
    assert got["a"]["n"] == 24 and got["b"] is None and got["fid"] is None
    assert got["is_mean"] > 1 and got["reporting_line"].startswith("RANDOM WEIGHTS")
    (run,) = (folders / "cli" / "score").iterdir()
    assert json.loads((run / "score.json").read_text()) == got

    h = subprocess.run(
        [sys.executable, "-m", "harness", "score", "-h"],
        cwd=folders,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert h.returncode == 0 and "a: ???" in h.stdout and "prdc:" in h.stdout

    m = subprocess.run(
        [sys.executable, "-m", "harness", "score", "a=/nonexistent/samples", *RANDOM]
        + [f"output_root={folders / 'cli_missing'}"],
        cwd=folders,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert m.returncode == 2
    assert m.stderr.strip().splitlines() == [
        "error: a=/nonexistent/samples: no such folder or file; give a folder of images or a "
        ".npz/.npy of uint8 N x H x W x 3 images"
    ]
    assert not (folders / "cli_missing" / "score").exists()  # refused before any run dir


@pytest.mark.skipif(
    not (has("pytorch_fid") and has("torch_fidelity")), reason="peers not installed"
)
def test_fid_is_exact_where_the_peers_square_root_is_not():
    """README's note: with fewer samples than feature dimensions (singular covariances) the
    harness's FID equals an exact sample-space computation to rounding, while pytorch-fid
    (scipy sqrtm) and torch-fidelity (eigenvalues of S1 S2) are off by ~4e-8 relative here
    (by 6e-5 on 500 vs 300 real 2,048-d pool features: 3642.925 vs 3642.69)."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(0)
    d = 256
    a = np.maximum(rng.normal(size=(100, d)) @ rng.normal(size=(d, d)) * 0.1, 0)  # ReLU-like
    b = np.maximum(rng.normal(0.3, 1.0, size=(60, d)) @ rng.normal(size=(d, d)) * 0.1, 0)
    exact = exact_fid(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        ours = fm.fid(a, b)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    pytorch_fid = calculate_frechet_distance(a.mean(0), s1, b.mean(0), s2)
    torch_fidelity = fid_statistics_to_metric(
        {"mu": a.mean(0), "sigma": s1}, {"mu": b.mean(0), "sigma": s2}, False
    )["frechet_inception_distance"]
    assert ours.rank_deficient
    assert abs(ours.value - exact) <= 1e-13 * exact
    for peer in (pytorch_fid, torch_fidelity):
        assert abs(peer - exact) > 1e-9 * exact  # more than 10,000x the harness's error


@needs_torch
def test_unverified_weights_are_said_and_strict_fails(folders, tmp_path):
    """Weights exported from random:0 and loaded back as a file match no published file: the
    status, the banner and the reporting line say UNVERIFIED WEIGHTS (no local path), and
    strict=true exits with code 3 after score.json is written."""
    from harness.export import export_2015_weights

    path = export_2015_weights(tmp_path / "tf2015_random0.pth", "random:0")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    r = subprocess.run(
        [sys.executable, "-m", "harness", "score", f"a={folders / 'a'}", f"weights=file:{path}"]
        + ["strict=true", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 3, r.stderr[-3000:]
    got = json.loads((tmp_path / "run" / "score.json").read_text())
    assert got["weights"]["weights_status"] == "unverified" and not got["random_weights"]
    assert got["weights"]["status"].startswith("UNVERIFIED WEIGHTS")
    assert "*** UNVERIFIED WEIGHTS" in r.stdout
    assert "UNVERIFIED" in got["reporting_line"] and str(tmp_path) not in got["reporting_line"]
    assert "strict=true" in r.stderr


def test_score_with_a_features_only_backbone_gives_the_fid_line(folders, tmp_path):
    """``score`` with pixel space (no classifier) crashed importing the reporting line from
    where it had lived (experiments.sanity) before the sanity report became a package."""
    res = api.run_experiment(
        "score",
        [f"a={folders / 'a'}", f"b={folders / 'b'}", "backbone=pixels", "progress=false"],
        run_dir=tmp_path / "run",
    )
    got = json.loads((res.run_dir / "score.json").read_text())
    assert got["is_mean"] is None and "IS: not applicable" in got["reporting_line"]
    assert got["reporting_line"].startswith("FID = ")
