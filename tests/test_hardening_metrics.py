"""FID numerics on singular covariances (against 50-digit mpmath), density/coverage against the
authors' ``prdc`` package, and reference statistics bound to what made them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from harness import feature_metrics as fm
from harness import sanity, stats_files
from harness.errors import ConfigError, HarnessError

from .conftest import has

mp = pytest.importorskip("mpmath")


# ------------------------------------------------------------------------------ FID references
def _mp_centred(x):
    rows = [[mp.mpf(float(v)) for v in r] for r in x]
    n, d = len(rows), len(rows[0])
    mu = [mp.fsum(r[j] for r in rows) / n for j in range(d)]
    return mp.matrix([[r[j] - mu[j] for j in range(d)] for r in rows]), mu


def _mp_fid_sample_space(x, y):
    """FID at 50 digits with tr sqrt(S1^1/2 S2 S1^1/2) = ||A B^T||_* / sqrt((n1-1)(n2-1))
    (A, B the centred rows); singular values from the eigenvalues of the smaller Gram matrix
    (squaring is harmless at 50 digits)."""
    with mp.workdps(50):
        a, m1 = _mp_centred(x)
        b, m2 = _mp_centred(y)
        n1, n2 = len(x), len(y)
        g = a * b.T
        e, _ = mp.eigsy(g * g.T if n1 <= n2 else g.T * g)
        tr_sqrt = mp.fsum(mp.sqrt(max(v, 0)) for v in e) / mp.sqrt((n1 - 1) * (n2 - 1))
        t1 = mp.fsum(v**2 for v in a) / (n1 - 1)
        t2 = mp.fsum(v**2 for v in b) / (n2 - 1)
        mean = mp.fsum((p - q) ** 2 for p, q in zip(m1, m2))
        return float(mean + t1 + t2 - 2 * tr_sqrt)


def _mp_fid_definition(x, y):
    """FID at 50 digits from the D x D covariances: S1^1/2 from S1's eigendecomposition, then
    the eigenvalues of S1^1/2 S2 S1^1/2."""
    with mp.workdps(50):
        a, m1 = _mp_centred(x)
        b, m2 = _mp_centred(y)
        s1, s2 = (a.T * a) / (len(x) - 1), (b.T * b) / (len(y) - 1)
        e, q = mp.eigsy(s1)
        root = q * mp.diag([mp.sqrt(max(v, 0)) for v in e]) * q.T
        w, _ = mp.eigsy(root * s2 * root)
        d = s1.rows
        tr_sqrt = mp.fsum(mp.sqrt(max(v, 0)) for v in w)
        mean = mp.fsum((p - q) ** 2 for p, q in zip(m1, m2))
        traces = mp.fsum(s1[j, j] + s2[j, j] for j in range(d))
        return float(mean + traces - 2 * tr_sqrt)


def _sets(n1, n2, d, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d)) * 0.3
    b = rng.normal(0.2, 1.1, size=(n2, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.5
    return a, b


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.RankDeficientWarning)
        return fn(*args)


@pytest.fixture(scope="module")
def constant_column_sets():
    a, b = _sets(200, 150, 16)
    a[:, 3] = 7.3  # a dead unit: the same non-zero constant in both sets
    b[:, 3] = 7.3
    return a, b, _mp_fid_definition(a, b)


def test_fid_with_a_constant_feature_is_exact(constant_column_sets):
    """HEAD took the Cholesky route on the constant's rounding residue: 2.8e-9 relative off."""
    a, b, ref = constant_column_sets
    r = fm.fid(a, b)
    assert r.value == pytest.approx(ref, rel=1e-12)
    assert r.method == "eigh" and r.dead_features == 1 and not r.rank_deficient
    assert r.provenance()["fid_dead_features"] == 1
    # the identity: a constant shared by both sets adds nothing to FID
    keep = [j for j in range(a.shape[1]) if j != 3]
    assert fm.fid(a[:, keep], b[:, keep]).value == pytest.approx(ref, rel=1e-12)
    # statistics from np.cov (as pytorch-fid / clean-fid files hold them) take the same route
    s1 = fm.FeatureStats(a.mean(0), np.cov(a, rowvar=False), len(a))
    s2 = fm.FeatureStats(b.mean(0), np.cov(b, rowvar=False), len(b))
    assert fm.frechet_distance(s1, s2).value == pytest.approx(ref, rel=1e-12)


@pytest.fixture(scope="module")
def mixed_sets():
    a, b = _sets(20, 150, 32)  # N1 <= D < N2
    return a, b, _mp_fid_sample_space(a, b)


def test_fid_with_one_rank_deficient_set_is_exact(mixed_sets):
    """One set N <= D, the other N > D: HEAD's square-root route clipped the rounding-level
    eigenvalues and was 6.7e-9 relative off; every entry point now agrees with 50 digits."""
    a, b, ref = mixed_sets
    # an exact float64 value computed here in sample space (independent of the harness)
    ca, cb = a - a.mean(0), b - b.mean(0)
    tr = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    diff = a.mean(0) - b.mean(0)
    exact = diff @ diff + (ca**2).sum() / (len(a) - 1) + (cb**2).sum() / (len(b) - 1) - 2 * tr
    assert exact == pytest.approx(ref, rel=1e-13)
    sa, sb = fm.feature_stats(a), fm.feature_stats(b)
    runs = {
        "fid(a, b)": _quiet(fm.fid, a, b),
        "fid(b, a)": _quiet(fm.fid, b, a),
        "stats(a, b)": _quiet(fm.frechet_distance, sa, sb),
        "stats(b, a)": _quiet(fm.frechet_distance, sb, sa),
        "features a vs stats b": _quiet(fm.fid_against_stats, a, sb),
        "features b vs stats a": _quiet(fm.fid_against_stats, b, sa),
    }
    for name, r in runs.items():
        assert r.value == pytest.approx(ref, rel=1e-12), name
        assert r.rank_deficient, name
    assert runs["fid(a, b)"].method == runs["fid(b, a)"].method == "low_rank_mixed"
    assert runs["stats(a, b)"].method == "eigh"
    assert runs["stats(a, b)"].truncated_eigenvalues == 32 - 19  # rank N1 - 1 kept
    assert {runs["fid(a, b)"].n1, runs["fid(a, b)"].n2} == {20, 150}
    assert runs["fid(b, a)"].n1 == 150


def test_fid_fast_path_kept_for_well_conditioned_sets():
    a, b = _sets(200, 150, 16, seed=1)
    r = fm.fid(a, b)
    assert r.method == "cholesky" and r.dead_features == 0 and r.truncated_eigenvalues == 0
    assert r.value == pytest.approx(_mp_fid_definition(a, b), rel=1e-12)


# ------------------------------------------------------------------------------ PRDC vs prdc
def _authors_prdc(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        out = compute_prdc(real, fake, k)
    return tuple(float(out[m]) for m in ("precision", "recall", "density", "coverage"))


def _prdc_cases():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 12))
    half = rng.normal(size=(100, 12))
    half[:50] = real[rng.choice(len(real), 50, replace=False)]  # half the fakes are copies
    grid_r = rng.integers(0, 4, size=(150, 6)).astype(float)  # many exact ties
    grid_f = rng.integers(0, 4, size=(120, 6)).astype(float)
    return {
        "identical": (real, real.copy()),
        "half copies": (real, half),
        "integer grid": (grid_r, grid_f),
        "continuous": (real, rng.normal(0.3, 1.2, size=(90, 12))),
    }


@pytest.mark.skipif(not has("prdc"), reason="prdc (the authors' package) not installed")
@pytest.mark.parametrize("case", ["identical", "half copies", "integer grid", "continuous"])
@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_the_authors_package(case, k):
    """HEAD used closed balls: identical sets gave density (k+1)/k instead of 1."""
    real, fake = _prdc_cases()[case]
    r = fm.prdc(real, fake, k_pr=k, k_dc=k)
    theirs = _authors_prdc(real, fake, k)
    assert (r.precision, r.recall, r.density, r.coverage) == pytest.approx(theirs, abs=1e-12)
    assert r.ball == "open" and r.provenance()["prdc_ball"] == "open"
    if case == "identical":
        assert r.density == pytest.approx(1.0, abs=1e-12)


def test_prdc_closed_ball_is_a_recorded_alternative():
    real, fake = _prdc_cases()["integer grid"]  # integers: every distance exact, ties exact
    k_pr, k_dc = 3, 5
    r = fm.prdc(real, fake, k_pr, k_dc, ball="closed")
    d_rr, d_ff, d_rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_pr = np.sort(d_rr, axis=1)[:, k_pr]  # index 0 is the point itself
    f_pr = np.sort(d_ff, axis=1)[:, k_pr]
    r_dc = np.sort(d_rr, axis=1)[:, k_dc]
    brute = (
        np.mean((d_rf <= r_pr[:, None]).any(axis=0)),
        np.mean((d_rf <= f_pr[None, :]).any(axis=1)),
        (d_rf <= r_dc[:, None]).sum() / (k_dc * len(fake)),
        np.mean(d_rf.min(axis=1) <= r_dc),
    )
    assert (r.precision, r.recall, r.density, r.coverage) == pytest.approx(brute, abs=1e-12)
    assert r.provenance()["prdc_ball"] == "closed"
    same = _prdc_cases()["identical"]
    assert fm.prdc(*same, 3, 3, ball="closed").density == pytest.approx(4 / 3, abs=1e-12)
    with pytest.raises(ConfigError, match="prdc.ball='ajar' is not one of open, closed") as e:
        fm.prdc(real, fake, ball="ajar")
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------ statistics files
BASE = ["dataset=synthetic", "weights=random:0", "progress=false", "backbone.input_size=75"]


@pytest.fixture(scope="module")
def made_stats(tmp_path_factory):
    pytest.importorskip("torch")
    from harness import api

    wd = tmp_path_factory.mktemp("hardening_stats")
    api.run_experiment(
        "reference_stats",
        [*BASE, "dataset.count=30", f"out={wd / 'ref.npz'}"],
        run_dir=wd / "run",
    )
    return wd / "ref.npz"


def _copy_stats(src, dest_dir, name="ref"):
    npz = dest_dir / f"{name}.npz"
    shutil.copy(src, npz)
    shutil.copy(stats_files.sidecar_path(src), stats_files.sidecar_path(npz))
    return npz


def _sanity(stats_path, run_dir, *extra):
    from harness import api

    api.run_experiment(
        "sanity",
        [*BASE, "dataset.count=24", "dataset.seed=3", "checks=[10]", *extra]
        + [f"reference_stats={stats_path}"],
        run_dir=run_dir,
    )
    report = json.loads((run_dir / "report.json").read_text())
    (c10,) = [c for c in report["checks"] if c["id"] == 10]
    return report, c10


def test_sidecar_records_every_feature_knob_and_the_content_hash(made_stats):
    side = json.loads(stats_files.sidecar_path(made_stats).read_text())
    for key, want in {
        "backbone": "tf2015_torch",
        "resize": "tf1_bilinear",
        "input_size": 75,
        "input_norm": "centered_128",
        "classes": "all",
        "dtype": "float32",
    }.items():
        assert side[key] == want, key
    assert len(side["weights_sha256"]) == 64
    assert {"input_norm", "input_size", "dtype", "weights_sha256"} <= set(side["compared_knobs"])
    with np.load(made_stats) as z:  # the documented hash: shapes, then mu, sigma as <f8 bytes
        mu, sigma = z["mu"], z["sigma"]
    h = hashlib.sha256(f"mu{mu.shape}sigma{sigma.shape}".encode())
    h.update(mu.astype("<f8").tobytes())
    h.update(sigma.astype("<f8").tobytes())
    assert side["stats_sha256"] == h.hexdigest()


def test_stats_made_with_another_input_norm_are_refused_or_noted(made_stats, tmp_path):
    """HEAD did not record input_norm: FID against zero_one features went ahead silently."""
    with pytest.raises(ConfigError, match="input_norm='centered_128', this run has 'zero_one'"):
        _sanity(made_stats, tmp_path / "a", "backbone.input_norm=zero_one")
    report, c10 = _sanity(
        made_stats, tmp_path / "b", "backbone.input_norm=zero_one", "allow_mismatched_stats=true"
    )
    assert "allow_mismatched_stats=true" in report["reporting_line"]
    assert c10["status"] == "WARN" and c10["value"]["reference_stats"] == "MISMATCHED (allowed)"
    assert any("input_norm" in n and "allowed" in n for n in c10["details"]["stats_notes"])


def test_stats_made_at_another_input_size_are_refused(made_stats, tmp_path):
    """HEAD recorded input_size in the sidecar but never compared it: stats made at one input
    size were used at another without a word."""
    made_at = json.loads(stats_files.sidecar_path(made_stats).read_text())["input_size"]
    other = made_at + 5
    with pytest.raises(ConfigError, match=f"input_size={made_at}, this run has {other}"):
        _sanity(made_stats, tmp_path / "a", f"backbone.input_size={other}")


def test_edited_statistics_are_an_error(made_stats, tmp_path):
    path = _copy_stats(made_stats, tmp_path)
    with np.load(path) as z:
        mu, sigma = z["mu"].copy(), z["sigma"]
    mu[0] += 1.0
    with open(path, "wb") as fh:
        np.savez(fh, mu=mu, sigma=sigma)
    for allow in (False, True):
        with pytest.raises(ConfigError, match="do not match the sha256.*edited") as e:
            stats_files.load_stats(path, allow_mismatched=allow)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("sidecar", ["missing", "{}", "no backbone or sha"])
def test_unverified_statistics_are_a_loud_warning(made_stats, tmp_path, sidecar):
    path = _copy_stats(made_stats, tmp_path)
    side = stats_files.sidecar_path(path)
    if sidecar == "missing":
        side.unlink()
    elif sidecar == "{}":
        side.write_text("{}")
    else:
        meta = json.loads(side.read_text())
        for key in ("backbone", "weights_sha256", "stats_sha256"):
            meta.pop(key)
        side.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="UNVERIFIED"):
        stats, notes = stats_files.load_stats(path, expect={"backbone": "tf2015_torch"})
    assert not stats_files.stats_verified(notes) and len(stats.mu) == 2048


def test_unverified_statistics_are_said_in_check_10_and_the_reporting_line(made_stats, tmp_path):
    """HEAD: an empty {} sidecar ran no check and added no note."""
    path = _copy_stats(made_stats, tmp_path)
    stats_files.sidecar_path(path).write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report, c10 = _sanity(path, tmp_path / "run")
    assert c10["status"] == "WARN" and c10["value"]["reference_stats"] == "UNVERIFIED"
    assert c10["details"]["stats_verified"] is False
    assert "UNVERIFIED" in report["reporting_line"] and "UNVERIFIED" in c10["fix"]
    verified_report, verified = _sanity(made_stats, tmp_path / "ok")
    assert verified["value"]["reference_stats"] == "verified"
    assert "UNVERIFIED" not in verified_report["reporting_line"]


def _write(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


@pytest.mark.parametrize(
    "sigma, match",
    [
        (-np.eye(4), "not positive semi-definite"),
        (np.diag([1.0, 1.0, 1.0, -0.5]), "not positive semi-definite"),
        (np.array([[1.0, 0.5, 0, 0], [0.1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "symmetric"),
    ],
)
def test_a_sigma_that_is_not_a_covariance_is_a_one_line_error(tmp_path, sigma, match):
    """HEAD printed FID = -6473.11 from a negative-definite sigma."""
    path = _write(tmp_path / "s.npz", mu=np.zeros(4), sigma=sigma)
    with pytest.raises(ConfigError, match=match) as e:
        stats_files.load_stats(path)
    assert "\n" not in str(e.value)


def test_a_rank_deficient_covariance_is_accepted(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 40)).astype(np.float32)
    sigma = np.cov(x, rowvar=False).astype(np.float32)  # rank 4, rounding-level negatives
    path = _write(tmp_path / "s.npz", mu=x.mean(0), sigma=sigma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stats, notes = stats_files.load_stats(path)
    assert stats.sigma.shape == (40, 40) and not stats_files.stats_verified(notes)


def _bad_files(tmp_path, made_stats):
    text = tmp_path / "text.npz"
    text.write_text("mu, sigma\n1, 2\n")
    npy = tmp_path / "arr.npy"
    np.save(npy, np.zeros(3))
    nokeys = _write(tmp_path / "nokeys.npz", mean=np.zeros(3), cov=np.eye(3))
    badjson = _copy_stats(made_stats, tmp_path, "badjson")
    stats_files.sidecar_path(badjson).write_text('{"backbone": "tf2015_torch",')
    listjson = _copy_stats(made_stats, tmp_path, "listjson")
    stats_files.sidecar_path(listjson).write_text("[1, 2]")
    return {
        "text file": (text, "is not a readable .npz"),
        ".npy": (npy, "holds one array"),
        "no mu/sigma": (nokeys, "needs 'mu' and 'sigma'"),
        "sidecar not JSON": (badjson, "is not valid JSON"),
        "sidecar a list": (listjson, "not an object"),
    }


def test_unreadable_statistics_files_are_one_line_errors(made_stats, tmp_path):
    """HEAD: tracebacks for a text file, a .npy and a sidecar that is not JSON."""
    for name, (path, match) in _bad_files(tmp_path, made_stats).items():
        with pytest.raises(HarnessError, match=match) as e:
            stats_files.load_stats(path)
        assert "\n" not in str(e.value), name


def test_reference_stats_and_a_reference_dataset_together_are_refused(
    made_stats, tmp_path, monkeypatch
):
    """HEAD silently ignored reference_stats= when a reference dataset was given.  Refused in
    sanity's compute (and, where the config layer validates it, before)."""
    from omegaconf import OmegaConf

    import experiments.sanity as exp
    from harness.sanity import passes, registry

    def no_pass(*a, **k):
        raise AssertionError("a network pass ran before the configuration was refused")

    monkeypatch.setattr(passes, "outputs", no_pass)
    monkeypatch.setattr(registry.inputs, "load_inputs", no_pass)
    cfg = OmegaConf.create(
        {
            "checks": None,
            "quick": False,
            "kid": {"matmul_dtype": "float64"},
            "reference_stats": str(made_stats),
            "reference": {"name": "synthetic"},
        }
    )
    with pytest.raises(ConfigError, match=r"give one of reference_stats= or \+dataset@reference"):
        exp.compute(cfg)
    with pytest.raises(ConfigError, match=r"one .*reference_stats=.* or \+dataset@reference") as e:
        _sanity(made_stats, tmp_path / "run", "+dataset@reference=synthetic")
    assert "\n" not in str(e.value)


def test_the_reporting_line_never_shows_a_negative_fid():
    check = sanity.Check(
        10,
        "fid_kid",
        sanity.PASS,
        {},
        "",
        "",
        "",
        {"fid": -3e-13, "kid_mean": None, "reference": "ref", "stats_verified": True},
    )
    assert sanity.fid_phrase(check) == "FID = 0.00 vs ref"
