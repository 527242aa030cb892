"""Trust under ordinary use: the probes a new user ran, each as a test (issue 11).

Every command runs through the real command line (``harness.cli.main``, in-process where the
process boundary does not matter, in a subprocess where it does: exit codes of killed or
concurrent runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import backbones, cli, data
from harness.cache import LogitsCache
from harness.errors import HarnessError

from .conftest import needs_torch
from .fixtures import one_line_error, run_cli, write_pngs

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def run_dirs(root: Path, name: str) -> list[Path]:
    d = root / name
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.exists() else []


TINY_TV = ["weights=random:0", "progress=false", "backbone.input_size=75"]


# ------------------------------------------------------------------------------ sanity / splits
@needs_torch
def test_sanity_small_n_bad_split_counts_and_unknown_backbone(tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_pngs(folder, n=12)
    base = [
        "+experiment=sanity",
        "dataset=folder",
        f"dataset.root={folder}",
        f"output_root={tmp_path}",
        *TINY_TV,
        "~other_backbones",
    ]
    # fewer samples than 2 x n_splits: a report, not an AttributeError
    code, out, err = run_cli(capsys, *base, "n_splits=4")
    assert code == 0, err[-3000:]
    (run,) = run_dirs(tmp_path, "sanity")
    rep = json.loads((run / "report.json").read_text())
    by = {c["name"]: c for c in rep["checks"]}
    assert "is_4_splits" in by["splits"]["value"]  # check 4 names the split count it used
    assert "not attempted" in by["sample_count"]["details"]["extrapolation"]
    # more splits than samples: one line, and no half-made run dir left behind
    code, _, err = run_cli(capsys, *base, "n_splits=100")
    assert code == 2 and "n_splits=100 is more than the N=12 samples" in one_line_error(err)
    # an unknown backbone: one line
    code, _, err = run_cli(capsys, *base, "backbone.name=resnet")
    assert code == 2 and "unknown backbone 'resnet'" in one_line_error(err)
    code, _, err = run_cli(capsys, *base[:-1], "other_backbones=[resnet]")
    assert code == 2 and "other_backbones" in one_line_error(err)
    code, _, err = run_cli(capsys, *base, "+backbone@other_backbones.x=resnet")
    assert code == 2 and "resnet" in one_line_error(err)
    assert len(run_dirs(tmp_path, "sanity")) == 1


def test_splits_accepts_a_number_and_refuses_impossible_split_counts(tmp_path, capsys):
    base = [
        "+experiment=splits",
        "source=simulated",
        "simulated.n=300",
        "sample_sizes=[100]",
        "resamples=2",
        f"output_root={tmp_path}",
        "progress=false",
    ]
    code, out, err = run_cli(capsys, *base, "n_splits=10")
    assert code == 0, err
    code, _, err = run_cli(capsys, *base, "n_splits=[1000]")
    assert code == 2 and "n_splits=[1000] exceed the N=300 samples" in one_line_error(err)
    code, _, err = run_cli(capsys, *base, "n_splits=[3]", "ddof=5")
    assert code == 2 and "ddof=5 needs more than 5 splits" in one_line_error(err)


# ------------------------------------------------------------------------------ config types
@pytest.mark.parametrize(
    "override, message",
    [
        ("backbone.bias=no", "backbone.bias must be true or false, got 'no'"),
        ("backbone.bias=off", "backbone.bias must be true or false, got 'off'"),
        ("backbone.bias='false'", "backbone.bias must be true or false, got 'false'"),
        ("strict=no", "strict must be true or false, got 'no'"),
        ("progress=1", "progress must be true or false, got 1"),
        ("n_splits=ten", "n_splits must be an integer"),
        ("+n_split=10", "unknown config key 'n_split'"),
        ("+backbone.colour=blue", "unknown config key 'backbone.colour'"),
        ("dataset.n=1.5", "dataset.n must be an integer >= 1, got 1.5"),
        ("cache.enabled=maybe", "cache.enabled must be true or false"),
    ],
)
def test_config_values_must_have_their_types(tmp_path, capsys, override, message):
    code, _, err = run_cli(
        capsys,
        "+experiment=sanity",
        "dataset=folder",
        f"dataset.root={tmp_path}",
        f"output_root={tmp_path}",
        override,
    )
    assert code == 2 and message in one_line_error(err)
    assert not (tmp_path / "sanity").exists() or not run_dirs(tmp_path, "sanity")


# ------------------------------------------------------------------------------ run dirs
def test_runs_started_together_get_their_own_dirs(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "+experiment=toy_gaussian",
        "toy.mc_samples=2000",
        f"output_root={tmp_path}",
        "progress=false",
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    dirs = run_dirs(tmp_path, "toy_gaussian")
    assert len(dirs) == 3
    for d in dirs:  # each dir: one run's config, tables and provenance, and no marker
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["outputs"]["table"]["csv"].startswith(str(d))
        assert (d / ".hydra" / "config.yaml").exists() and not (d / "INCOMPLETE").exists()


def test_an_existing_run_dir_is_refused_unless_overwrite(tmp_path, capsys):
    target = tmp_path / "run"
    args = ["+experiment=toy_gaussian", "toy.mc_samples=2000", f"hydra.run.dir={target}"]
    assert run_cli(capsys, *args)[0] == 0
    first = json.loads((target / "provenance.json").read_text())["started"]
    code, _, err = run_cli(capsys, *args, "toy.mc_seed=3")
    assert code == 2 and "already holds results" in one_line_error(err)
    (target / "stale_extra.csv").write_text("from an older run")
    time.sleep(1.1)
    assert run_cli(capsys, *args, "toy.mc_seed=3", "overwrite=true")[0] == 0
    prov = json.loads((target / "provenance.json").read_text())
    assert prov["started"] != first and not (target / "stale_extra.csv").exists()
    assert prov["config"]["toy"]["mc_seed"] == 3


def test_a_killed_run_keeps_an_incomplete_marker(tmp_path):
    gen = tmp_path / "slowgen.py"
    gen.write_text(
        textwrap.dedent(f"""
        import time
        from pathlib import Path
        import numpy as np

        def make(n, seed):
            Path({str(tmp_path / "started")!r}).touch()
            time.sleep(900)
            return np.zeros((n, 32, 32, 3), np.uint8)
    """)
    )
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "+experiment=sanity",
        "dataset=generator",
        f"dataset.callable={gen}:make",
        "dataset.count=8",
        "weights=random:0",
        "backbone.input_size=75",
        "~other_backbones",
        f"hydra.run.dir={run}",
        "progress=false",
    ]
    p = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    # the generator is called after the network is built: minutes on a loaded machine
    while not (tmp_path / "started").exists() and time.time() - t0 < 600:
        time.sleep(0.2)
    assert (tmp_path / "started").exists(), "the run never reached the generator"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    marker = json.loads((run / "INCOMPLETE").read_text())
    assert marker["status"] == "running" and marker["experiment"] == "sanity"
    assert not (run / "provenance.json").exists()


# ------------------------------------------------------------------------------ error policy
def test_a_bug_shows_its_traceback_and_user_exit_is_not_success(tmp_path, capsys):
    bug = tmp_path / "buggy.py"
    bug.write_text(
        textwrap.dedent("""
        import sys
        import numpy as np

        def broken(n, seed):
            return np.zeros((n, 32, 32, 3), np.uint8).reshape(7, -1)  # numpy's ValueError

        def quits(n, seed):
            sys.exit(0)
    """)
    )
    base = [
        "+experiment=sanity",
        "dataset=generator",
        "dataset.count=4",
        *TINY_TV,
        "~other_backbones",
        f"output_root={tmp_path}",
    ]
    code, _, err = run_cli(capsys, *base, f"dataset.callable={bug}:broken")
    # the traceback points into the user's code, and the last line says whose error it is
    assert code == 1 and "Traceback" in err and "ValueError" in err and cli.BUG_LINE not in err
    assert "your generator" in err and "buggy.py:broken" in err
    code, _, err = run_cli(capsys, *base, f"dataset.callable={bug}:quits")
    assert code == 1 and "called sys.exit(0)" in one_line_error(err)


# ------------------------------------------------------------------------------ image decoding
def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    x = data.load_source("folder", root=str(tmp_path)).read_all()[0]
    expected = (ramp >> 8).astype(np.uint8)  # independent: the high byte of every pixel
    np.testing.assert_array_equal(x[..., 0], expected)
    assert (x[..., 0] == x[..., 2]).all() and (x == 255).mean() < 0.01
    src = data.load_source("folder", root=str(tmp_path))
    src.read_all()
    assert src.provenance()["decode_handling"] == {"16bit_to_8bit": 1}


def test_transparency_cmyk_and_exif_are_decided_not_guessed(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.raises(HarnessError, match="transparent pixels .* dataset.alpha"):
        data.load_source("folder", root=str(tmp_path)).read_all()
    white = data.load_source("folder", root=str(tmp_path), alpha="white").read_all()[0]
    assert tuple(white[0, 0]) == (227, 127, 127)  # 200*128/255 + 255*127/255 = 227.4
    (tmp_path / "a.png").unlink()
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    with pytest.raises(HarnessError, match="CMYK image without a colour profile"):
        data.load_source("folder", root=str(tmp_path)).read_all()
    assert data.load_source("folder", root=str(tmp_path), cmyk="naive").read_all().shape == (
        1,
        20,
        20,
        3,
    )
    (tmp_path / "c.jpg").unlink()
    im = Image.fromarray(np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    im.save(tmp_path / "r.jpg", exif=exif)
    assert data.load_source("folder", root=str(tmp_path)).read_all().shape == (1, 30, 20, 3)
    assert data.load_source(
        "folder", root=str(tmp_path), exif_orientation="ignore"
    ).read_all().shape == (
        1,
        20,
        30,
        3,
    )


def _png_with_exif_after_pixels(path, pixels, orientation):
    """A PNG whose eXIf chunk follows IDAT (legal, and the case Pillow can only see after
    decoding), built chunk by chunk."""
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    raw = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()
    if body.startswith(b"Exif\x00\x00"):
        body = body[6:]
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + body) & 0xFFFFFFFF)
    iend = raw.rindex(b"IEND") - 4
    path.write_bytes(raw[:iend] + chunk + raw[iend:])


@pytest.mark.parametrize("where", ["before_pixels", "after_pixels"])
def test_png_exif_orientation_is_read_without_decoding_in_the_scan(tmp_path, where, monkeypatch):
    from PIL import ImageFile

    pixels = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    if where == "after_pixels":
        _png_with_exif_after_pixels(tmp_path / "r.png", pixels, 6)
    else:
        im = Image.fromarray(pixels)
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(tmp_path / "r.png", exif=exif)
    with Image.open(tmp_path / "r.png") as im:  # Pillow agrees it is there (after decoding)
        im.load()
        assert im.getexif().get(0x0112) == 6
    loads = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self, *a, **k):
        loads.append(self.format)
        return real_load(self, *a, **k)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    src = data.load_source("folder", root=str(tmp_path))
    assert loads == []  # the scan read the header and the chunk list, and decoded nothing
    assert src.sizes == [(30, 20)]  # rotated by 90 degrees when shown
    x = src.read_all()
    np.testing.assert_array_equal(x[0], np.rot90(pixels, k=-1))  # 6: 90 degrees clockwise
    flat = data.load_source("folder", root=str(tmp_path), exif_orientation="ignore")
    assert flat.sizes == [(20, 30)]


def test_declared_value_range_is_cross_checked(tmp_path):
    x = np.random.default_rng(0).random((40, 16, 16, 3)).astype(np.float32)  # [0, 1] data
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(HarnessError, match="declared value_range -1_1 but no value is negative"):
        data.load_source("arrays", path=str(tmp_path / "x.npy"), value_range="-1_1")
    with pytest.raises(HarnessError, match="declared value_range 0_255 but no value exceeds 1"):
        data.load_source("arrays", path=str(tmp_path / "x.npy"), value_range="0_255")
    ok = data.load_source(
        "arrays", path=str(tmp_path / "x.npy"), value_range="-1_1", trust_value_range=True
    )
    assert len(ok) == 40


# ------------------------------------------------------------------------------ cache
@needs_torch
def test_cache_disabled_never_deletes_and_keys_cover_code_and_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_NOTE_CACHE", str(tmp_path / "c"))
    # batches of 4 = the cache's chunks: the cached and uncached passes run the same batches
    # (oneDNN's kernels may differ by batch size in the last bits, e.g. with one thread)
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75, batch_size=4)
    src = data.load_source("synthetic", count=6)
    lc = LogitsCache(tmp_path / "logits", chunk_size=4)
    first = lc.get(net, src, progress=False)
    entry = lc.entry_dir(first.key)
    before = sorted(p.name for p in entry.iterdir())
    off = LogitsCache(tmp_path / "logits", chunk_size=4, enabled=False).get(
        net, src, progress=False
    )
    np.testing.assert_array_equal(off.logits, first.logits)
    assert sorted(p.name for p in entry.iterdir()) == before  # nothing deleted or written
    assert lc.get(net, src, progress=False).from_cache
    # a replaced random-weights file is a different network: a different key
    npz = tmp_path / "c" / "weights" / "random" / "iv3_random_0_v2.npz"
    with np.load(npz) as z:
        sd = {k: z[k] for k in z.files}
    sd["fc.bias"] = sd["fc.bias"] + 1
    np.savez(npz, **sd)
    net2 = backbones.load_backbone("torchvision", weights="random:0", input_size=75, batch_size=8)
    assert lc.key(src, net2) != first.key and not lc.get(net2, src, progress=False).from_cache


def test_generator_key_follows_its_local_imports(tmp_path):
    pkg = tmp_path / "gen"
    pkg.mkdir()
    (pkg / "helper.py").write_text("SHIFT = 0\n")
    (pkg / "model.py").write_text(
        textwrap.dedent("""
        import numpy as np
        from helper import SHIFT

        def make(n, seed):
            rng = np.random.default_rng(seed)
            return (rng.integers(0, 200, (n, 32, 32, 3)) + SHIFT).astype(np.uint8)
    """)
    )
    fp = data.load_source("generator", callable=f"{pkg / 'model.py'}:make", count=4).fingerprint()
    (pkg / "helper.py").write_text("SHIFT = 5\n")
    src = data.load_source("generator", callable=f"{pkg / 'model.py'}:make", count=4)
    assert src.fingerprint() != fp and src.cacheable
    (pkg / "model.py").write_text(
        textwrap.dedent("""
        import importlib
        import numpy as np

        def make(n, seed):
            importlib.import_module("helper")
            return np.zeros((n, 32, 32, 3), np.uint8)
    """)
    )
    with pytest.warns(UserWarning, match="will not be cached"):
        dyn = data.load_source("generator", callable=f"{pkg / 'model.py'}:make", count=4)
    assert not dyn.cacheable


@needs_torch
def test_bad_chunks_are_never_sealed_and_chunk_size_can_change(tmp_path):
    net = backbones.load_backbone("torchvision", weights="random:0", input_size=75, batch_size=8)
    src = data.load_source("synthetic", count=10)
    truth = net.logits(src.read_all())
    lc = LogitsCache(tmp_path / "l", chunk_size=4)
    key = lc.key(src, net)
    d = lc.entry_dir(key)
    # an interrupted run left chunks 0-4 and 4-8; one is then swapped, one filled with NaN
    for s, e in ((0, 4), (4, 8)):
        (d / "chunks").mkdir(parents=True, exist_ok=True)
        lc._save_chunk(d, key, s, e, truth[s:e], None)
    chunks = d / "chunks"
    os.replace(chunks / "000000000-000000004.npz", chunks / "tmp.npz")
    os.replace(chunks / "000000004-000000008.npz", chunks / "000000000-000000004.npz")
    os.replace(chunks / "tmp.npz", chunks / "000000004-000000008.npz")
    with pytest.warns(UserWarning, match="holds rows"):
        got = LogitsCache(tmp_path / "l", chunk_size=3).get(net, src, progress=False)
    np.testing.assert_allclose(got.logits, truth, rtol=1e-4, atol=1e-4)
    # a NaN chunk is refused at load
    lc2 = LogitsCache(tmp_path / "l2", chunk_size=5)
    d2 = lc2.entry_dir(key)
    (d2 / "chunks").mkdir(parents=True)
    bad = truth[:5].copy()
    bad[0, 0] = np.nan
    lc2._save_chunk(d2, key, 0, 5, bad, None)
    with pytest.warns(UserWarning, match="NaN"):
        got = lc2.get(net, src, progress=False)
    assert np.isfinite(got.logits).all()
    np.testing.assert_allclose(got.logits, truth, rtol=1e-4, atol=1e-4)


CACHE_WORKER = """
import sys, time, json
import numpy as np
from harness import data
from harness.cache import LogitsCache

class Slow:
    name, has_features, batch_size = "slow", False, 2
    def cache_identity(self): return {"slow": 1}
    def provenance(self): return {"backbone": "slow"}
    def forward(self, batch, features=False):
        with open(sys.argv[2], "a") as f:
            f.write(f"{int(batch[0, 0, 0, 0])}\\n")
        time.sleep(0.3)
        return batch.reshape(len(batch), -1)[:, :5].astype(np.float32), None

src = data.load_source("synthetic", count=24)
out = LogitsCache(sys.argv[1], chunk_size=4).get(Slow(), src, progress=False)
print(json.dumps({"n": int(out.n_computed), "sum": float(out.logits.sum())}))
"""


def test_two_processes_fill_one_entry_without_duplicate_work(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(CACHE_WORKER)
    log = tmp_path / "log.txt"
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(tmp_path / "cache"), str(log)],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    res = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert res[0]["sum"] == res[1]["sum"]
    assert res[0]["n"] + res[1]["n"] == 24  # every row computed once, by one of them
    assert len(log.read_text().split()) == 12  # 12 batches of 2, none twice


NPZ_READER = """
import sys
from harness import data
src = data.load_source("arrays", path=sys.argv[1])
print(int(src.read_all().sum()))
"""


def test_concurrent_readers_of_a_compressed_npz(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "s.npz", images=x)
    (tmp_path / "r.py").write_text(NPZ_READER)
    env = {**ENV, "INCEPTION_NOTE_CACHE": str(tmp_path / "c")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "r.py"), str(tmp_path / "s.npz")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert {o[0].strip() for o in outs} == {str(int(x.sum()))}


# ------------------------------------------------------------------------------ UX
def test_help_lists_experiments_and_frameworks_are_quiet(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "harness", "-h"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "sanity" in r.stdout and "== Config groups" in r.stdout
    code = (
        "from harness import backbones\n"
        "backbones.load_backbone('keras', weights='random:0', input_size=75)\n"
    )
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["INCEPTION_NOTE_CACHE"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    for noise in ("cuInit", "absl::InitializeLog", "oneDNN", "cuda drivers"):
        assert noise not in r.stderr


def test_random_weights_live_under_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_NOTE_CACHE", str(tmp_path / "c"))
    from harness.backbones.random_init import random_iv3_state

    random_iv3_state(3, 1000, cache_dir=tmp_path / "own")
    assert (tmp_path / "own" / "weights" / "random" / "iv3_random_3_v2.npz").exists()
    assert not (tmp_path / "c").exists()


def test_readme_says_nothing_about_this_workplace():
    text = (ROOT / "README.md").read_text()
    for word in ("../shared", "workplace", "this machine's disk"):
        assert word not in text
