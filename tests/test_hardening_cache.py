"""Derived files under cache.dir, cache.enabled=false touching nothing, unwritable or full disks.

Tests run as root (chmod blocks nothing), so an unwritable directory is a path under a regular
file (``<tmp>/afile/sub``) and a full disk is a write monkeypatched to raise ENOSPC after
writing part of its data.  Every network here is a tiny deterministic stand-in, so the tests
take seconds; random weights use a stand-in for the 20 s numpy calibration.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import tempfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness import cache as cache_mod
from harness import results
from harness.backbones import porting, random_init
from harness.backbones import weights as W
from harness.cache import LogitsCache
from harness.errors import HarnessError

NO_DISK = ":memory:"  # W.NO_DISK_CACHE (spelt out: the same test runs against HEAD)


# --------------------------------------------------------------------------- helpers
def _blocked(tmp_path) -> pathlib.Path:
    """A directory path that cannot be created: it lies under a regular file."""
    (tmp_path / "afile").write_text("not a directory")
    return tmp_path / "afile" / "sub"


def _files(root) -> list[str]:
    root = pathlib.Path(root)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _fake_state(seed: int) -> dict:
    """A small float32 'canonical state' standing in for random_init._compute."""
    rng = np.random.default_rng([seed, 99])
    return {
        "Conv2d_1a_3x3.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "fc.weight": rng.standard_normal((1008, 8)).astype(np.float32),
        "fc.bias": rng.standard_normal(1008).astype(np.float32),
    }


@pytest.fixture
def fake_compute(monkeypatch):
    calls = []

    def compute(seed):
        calls.append(seed)
        return _fake_state(seed)

    monkeypatch.setattr(random_init, "_compute", compute)
    random_init._compute_once.cache_clear()  # no real state memoised by an earlier test
    yield calls
    random_init._compute_once.cache_clear()  # and no fake one left for a later test


@pytest.fixture
def env_cache(tmp_path, monkeypatch):
    """The default cache location ($INCEPTION_NOTE_CACHE) for this test, and cwd in tmp."""
    root = tmp_path / "env_cache"
    monkeypatch.setenv("INCEPTION_NOTE_CACHE", str(root))
    monkeypatch.chdir(tmp_path)
    return root


class FakeNet:
    """The part of the backbone API the logits cache uses; logits from pixel statistics."""

    name = "fake"
    has_features = True
    batch_size = 3

    def forward(self, batch, features=False):
        x = np.asarray(batch, np.float64).reshape(len(batch), -1)
        logits = np.stack([x.mean(1), x.std(1), x[:, 0], x[:, -1]], 1).astype(np.float32)
        pool = np.stack([x[:, :5].sum(1), x.max(1)], 1).astype(np.float32)
        return logits, (pool if features else None)

    def cache_identity(self):
        return {"name": "fake", "version": 1}

    def provenance(self):
        return {"name": "fake"}


class FakeImages:
    """The part of the image-source API the logits cache uses: 7 fixed random images."""

    cacheable = True

    def __init__(self, n=7):
        self.x = np.random.default_rng(0).integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.x)

    def fingerprint(self):
        return f"fake-images-{len(self.x)}"

    def provenance(self):
        return {"kind": "fake"}

    def batches_range(self, start, stop, batch_size=256):
        for s in range(start, stop, batch_size):
            yield self.x[s : min(s + batch_size, stop)]


def _source(n=7):
    return FakeImages(n)


def _uncached(features=True):
    return LogitsCache(enabled=False).get(FakeNet(), _source(), features=features, progress=False)


def _disk_full_after_half(real):
    """A writer that writes half of its bytes, then fails as a full disk does."""

    def write(self, payload, *a, **k):
        with open(self, "wb") as f:
            f.write(payload[: len(payload) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def _no_temp_files(root) -> list[str]:
    return [f for f in _files(root) if pathlib.Path(f).name.startswith(".")]


# --------------------------------------------------------------------------- 1. weights
@pytest.mark.parametrize("no_disk", [NO_DISK, False])
def test_random_weights_without_disk_cache_read_and_write_nothing(
    tmp_path, env_cache, fake_compute, no_disk
):
    # a (tampered) file where the cache would be: with the cache off it must not be read
    stale = (
        env_cache / "weights" / "random" / f"iv3_random_5_v{random_init.RANDOM_INIT_VERSION}.npz"
    )
    stale.parent.mkdir(parents=True)
    np.savez(stale, **{k: np.zeros_like(v) for k, v in _fake_state(5).items()})
    before = _files(tmp_path)
    res = W.random_weights(W.WeightsSpec.parse("random:5"), 1000, cache_dir=no_disk)
    assert _files(tmp_path) == before  # nothing written anywhere (cwd, default cache)
    want = _fake_state(5)
    np.testing.assert_array_equal(res.state["fc.weight"], want["fc.weight"][:1000])
    np.testing.assert_array_equal(res.state["fc.bias"], want["fc.bias"][:1000])
    assert fake_compute == [5]


def test_random_weights_identical_with_and_without_disk_cache(tmp_path, env_cache, fake_compute):
    spec = W.WeightsSpec.parse("random:2")
    cdir = tmp_path / "run_cache"
    first = W.random_weights(spec, 1001, cache_dir=str(cdir))  # computed, written
    again = W.random_weights(spec, 1001, cache_dir=str(cdir))  # read back from the file
    memo = W.random_weights(spec, 1001, cache_dir=W.NO_DISK_CACHE)  # this process's arrays
    memo.state["fc.bias"][0] += 1  # a caller's copy: the memo is not changed through it
    memo = W.random_weights(spec, 1001, cache_dir=W.NO_DISK_CACHE)
    assert fake_compute == [2]
    np.testing.assert_array_equal(memo.state["fc.bias"], first.state["fc.bias"])
    random_init._compute_once.cache_clear()
    mem = W.random_weights(spec, 1001, cache_dir=W.NO_DISK_CACHE)
    assert fake_compute == [2, 2]  # once for the cache, once in memory
    assert _files(cdir) == [f"weights/random/iv3_random_2_v{random_init.RANDOM_INIT_VERSION}.npz"]
    assert not env_cache.exists()
    for other in (again, mem):
        assert other.sha256 == first.sha256
        assert sorted(other.state) == sorted(first.state)
        for k in first.state:
            np.testing.assert_array_equal(other.state[k], first.state[k])
            assert other.state[k].dtype == first.state[k].dtype


def test_cache_root_refuses_no_disk_cache_and_scratch_is_removed(tmp_path):
    with pytest.raises(RuntimeError, match="disabled"):
        W.cache_root(W.NO_DISK_CACHE)
    assert W.cache_root(str(tmp_path)) == tmp_path
    with W.scratch_cache(str(tmp_path)) as root:
        assert root == str(tmp_path)
    with W.scratch_cache(W.NO_DISK_CACHE) as root:
        scratch = pathlib.Path(root)
        assert scratch.is_dir() and W.cache_root(root) == scratch
        (scratch / "graph.pb").write_bytes(b"x")
    assert not scratch.exists()


class _FakeSource:
    """A source backbone for ``ported:`` whose own format is an npz of canonical arrays."""

    name = "fakesrc"
    raw_outputs = 1000
    reads = 0

    @classmethod
    def official_artifact(cls, **knobs):
        return None

    @classmethod
    def read_state(cls, path):
        cls.reads += 1
        with np.load(path) as z:
            return {k: z[k] for k in z.files}


def _target():
    return SimpleNamespace(
        name="faketarget",
        port_sources=("fakesrc",),
        ported_keeps_layout=True,
        raw_outputs=1000,
        class_layout="imagenet1000",
        adopt_layout=lambda n: None,
    )


@pytest.mark.parametrize("no_disk", [NO_DISK, False])
def test_ported_weights_without_disk_cache_read_and_write_nothing(
    tmp_path, env_cache, monkeypatch, no_disk
):
    monkeypatch.setattr(porting, "backbone_class", lambda name: _FakeSource)
    src = tmp_path / "src.npz"
    sd = {k: (v[:1000] if k.startswith("fc.") else v) for k, v in _fake_state(1).items()}
    np.savez(src, **sd)
    spec = W.WeightsSpec.parse(f"ported:fakesrc:file:{src}")
    before = _files(tmp_path)
    mem, rec = porting.ported_state(spec, _target(), cache_dir=no_disk)
    assert _files(tmp_path) == before
    assert rec["ported_cache"] is None
    cached, rec2 = porting.ported_state(spec, _target(), cache_dir=str(tmp_path / "c"))
    assert rec2["ported_cache"].startswith(str(tmp_path / "c" / "weights" / "ported"))
    assert rec["weights_sha256"] == rec2["weights_sha256"]
    for k in sd:
        np.testing.assert_array_equal(mem[k], sd[k])
        np.testing.assert_array_equal(cached[k], sd[k])


def test_ported_weights_unwritable_cache_dir_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(porting, "backbone_class", lambda name: _FakeSource)
    src = tmp_path / "src.npz"
    np.savez(src, **_fake_state(1))
    spec = W.WeightsSpec.parse(f"ported:fakesrc:file:{src}")
    with pytest.raises(HarnessError, match=r"afile is a file.*cache\.enabled=false"):
        porting.ported_state(spec, _target(), cache_dir=str(_blocked(tmp_path)))


# --------------------------------------------------------------------------- 2. npz inputs
def _arrays(path, **kw):
    """An ArraySource through the factory (the schema fills the other settings)."""
    from harness import data

    return data.load_source("arrays", path=str(path), progress=False, **kw)


def _compressed(tmp_path, name="c.npz", seed=0, **members):
    x = np.random.default_rng(seed).integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / name, images=x, **members)
    return tmp_path / name, x


def test_compressed_npz_is_extracted_under_the_runs_cache_dir(tmp_path, env_cache):
    path, x = _compressed(tmp_path)
    run_cache = tmp_path / "run_cache"
    src = _arrays(path, cache_dir=str(run_cache))
    np.testing.assert_array_equal(np.asarray(src.arr), x)
    assert not env_cache.exists()  # not $INCEPTION_NOTE_CACHE / ~/.cache
    (extracted,) = _files(run_cache)
    assert extracted.startswith("npz/") and extracted.endswith(".npy")
    assert src.provenance()["extracted_to"] == str(run_cache / extracted)


def test_compressed_npz_extraction_is_keyed_and_verified(tmp_path, env_cache):
    # two files with the same member name and size: two extracted files
    p1, x1 = _compressed(tmp_path, "a.npz", seed=1)
    p2, x2 = _compressed(tmp_path, "b.npz", seed=2)
    a = _arrays(p1)
    b = _arrays(p2)
    np.testing.assert_array_equal(np.asarray(a.arr), x1)
    np.testing.assert_array_equal(np.asarray(b.arr), x2)
    found = [env_cache / f for f in _files(env_cache)]
    assert len(found) == 2
    del a, b
    # a damaged extraction of the same size is noticed and extracted again
    for f in found:
        raw = bytearray(f.read_bytes())
        raw[-1] ^= 0xFF
        f.write_bytes(bytes(raw))
    np.testing.assert_array_equal(np.asarray(_arrays(p1).arr), x1)
    np.testing.assert_array_equal(np.asarray(_arrays(p2).arr), x2)


def test_compressed_npz_without_disk_cache_writes_only_a_removed_temp_file(
    tmp_path, env_cache, monkeypatch
):
    path, x = _compressed(tmp_path, labels=np.arange(5))
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    blocked = _blocked(tmp_path)
    before = _files(tmp_path)
    src = _arrays(path, cache_dir=NO_DISK)
    assert _files(tmp_path) == before  # the temporary file is gone already
    assert not env_cache.exists() and not blocked.exists()
    np.testing.assert_array_equal(src.read_all(), x)
    np.testing.assert_array_equal(src._all_labels(), np.arange(5))


def test_compressed_npz_unwritable_cache_dir_or_full_disk_is_one_line(tmp_path, monkeypatch):
    path, x = _compressed(tmp_path)
    with pytest.raises(HarnessError, match=r"afile is a file.*cache\.enabled=false"):
        _arrays(path, cache_dir=str(_blocked(tmp_path)))
    cdir = tmp_path / "full"
    # the disk fills while the member is copied out (part of it written)
    monkeypatch.setattr("harness.data.arrays._copy_member", _copy_then_full, raising=False)
    with pytest.raises(HarnessError, match=r"disk is full.*free space"):
        _arrays(path, cache_dir=str(cdir))
    assert _no_temp_files(cdir) == [] and not [f for f in _files(cdir) if f.endswith(".npy")]
    scratch = tmp_path / "tmpdir"  # without the on-disk cache: the temporary file's disk
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(HarnessError, match=r"disk is full.*TMPDIR="):
        _arrays(path, cache_dir=NO_DISK)
    assert _files(scratch) == []
    monkeypatch.undo()
    np.testing.assert_array_equal(np.asarray(_arrays(path, cache_dir=str(cdir)).arr), x)


def _copy_then_full(zf, info, dst):
    with zf.open(info) as src:
        dst.write(src.read(100))
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------- 3. results
def test_atomic_writers_under_a_regular_file_are_one_line(tmp_path):
    import matplotlib.pyplot as plt

    bad = _blocked(tmp_path)
    cases = [
        lambda: results.write_json(bad / "x.json", {"a": 1}),
        lambda: results.atomic_write_text(bad / "x.txt", "hi"),
        lambda: results.atomic_write_bytes(bad / "x.bin", b"hi"),
        lambda: results.write_table(pd.DataFrame({"a": [1.0, 2.0]}), bad),
        lambda: results.save_figure(plt.figure(), bad, "fig"),
        lambda: results.write_json(tmp_path / "afile" / "x.json", {"a": 1}),  # parent is a file
    ]
    for case in cases:
        with pytest.raises(HarnessError, match=r"cannot write .*afile is a file, not a directory"):
            case()
    assert _files(tmp_path) == ["afile"]


@pytest.mark.parametrize(
    "code,what",
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EDQUOT, "disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_atomic_writers_on_a_full_or_closed_disk_leave_nothing(tmp_path, monkeypatch, code, what):
    import matplotlib.pyplot as plt

    run = tmp_path / "run"
    run.mkdir()
    (run / "x.json").write_text('{"old": true}\n')

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    def half_then_fail(self, payload, *a, **k):
        with open(self, "w" if isinstance(payload, str) else "wb") as f:
            f.write(payload[: len(payload) // 2])
        fail()

    with monkeypatch.context() as m:
        m.setattr(pathlib.Path, "write_text", half_then_fail)
        m.setattr(pathlib.Path, "write_bytes", half_then_fail)
        for case in (
            lambda: results.write_json(run / "x.json", {"new": 1}),
            lambda: results.atomic_write_bytes(run / "x.bin", b"0123456789"),
        ):
            with pytest.raises(HarnessError, match=f"cannot write {run}.*{what}") as exc:
                case()
            assert "\n" not in str(exc.value)
    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_csv", fail)
        with pytest.raises(HarnessError, match=f"table.csv.*{what}"):
            results.write_table(pd.DataFrame({"a": [1.0]}), run)
    fig = plt.figure()
    with monkeypatch.context() as m:
        m.setattr(fig, "savefig", fail)
        with pytest.raises(HarnessError, match=f"fig.png.*{what}"):
            results.save_figure(fig, run, "fig")
    with monkeypatch.context() as m:  # the rename itself fails (read-only remount, ...)
        m.setattr(os, "replace", fail)
        with pytest.raises(HarnessError, match=f"y.json.*{what}"):
            results.write_json(run / "y.json", {"a": 1})
    assert _files(run) == ["x.json"]  # no temporary file, the old file intact
    assert json.loads((run / "x.json").read_text()) == {"old": True}
    assert not plt.fignum_exists(fig.number)


def test_atomic_writers_keep_other_errors_as_bugs(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(errno.EIO, "I/O error", "/elsewhere/input")

    monkeypatch.setattr(pathlib.Path, "write_text", boom)
    with pytest.raises(OSError) as exc:
        results.atomic_write_text(tmp_path / "x.txt", "hi")
    assert not isinstance(exc.value, HarnessError)
    assert _files(tmp_path) == []


# --------------------------------------------------------------------------- 3. logits cache
def test_logits_cache_unwritable_dir_is_one_line(tmp_path):
    root = _blocked(tmp_path) / "logits"
    with pytest.raises(HarnessError, match=r"cannot write .*afile is a file.*cache\.enabled=false"):
        LogitsCache(root, chunk_size=3).get(FakeNet(), _source(), progress=False)


def test_disabled_cache_never_touches_an_unwritable_cache_dir(tmp_path, monkeypatch, fake_compute):
    bad = _blocked(tmp_path)
    monkeypatch.setenv("INCEPTION_NOTE_CACHE", str(bad))  # the default location is blocked too
    monkeypatch.chdir(tmp_path)  # a relative path would land here
    before = _files(tmp_path)
    out = LogitsCache(bad / "logits", enabled=False).get(FakeNet(), _source(), progress=False)
    res = W.random_weights(W.WeightsSpec.parse("random:0"), 1000, cache_dir=NO_DISK)
    assert out.logits.shape == (7, 4) and res.state["fc.weight"].shape[0] == 1000
    assert _files(tmp_path) == before


def test_random_weights_unwritable_cache_dir_fails_before_computing(tmp_path, fake_compute):
    with pytest.raises(HarnessError, match=r"afile is a file.*cache\.enabled=false"):
        W.random_weights(W.WeightsSpec.parse("random:0"), 1000, cache_dir=str(_blocked(tmp_path)))
    assert fake_compute == []  # no 20 s calibration for a file that cannot be kept


def test_logits_cache_disk_full_while_saving_a_chunk_then_rerun(tmp_path, monkeypatch):
    cache = LogitsCache(tmp_path / "logits", chunk_size=3)
    real = pathlib.Path.write_bytes
    saved = []

    def write_bytes(self, payload):
        if saved:  # the second chunk meets a full disk
            with open(self, "wb") as f:
                f.write(payload[: len(payload) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        saved.append(self)
        return real(self, payload)

    with monkeypatch.context() as m:
        m.setattr(pathlib.Path, "write_bytes", write_bytes)
        with pytest.raises(HarnessError, match=r"cannot write .*chunks.*disk is full.*cache\.dir="):
            cache.get(FakeNet(), _source(), features=True, progress=False)
    key = cache.key(_source(), FakeNet())
    d = cache.entry_dir(key)
    assert _no_temp_files(tmp_path) == []
    assert sorted(p.name for p in (d / "chunks").iterdir()) == [cache._chunk_name(0, 3)]
    assert not (d / "sealed.json").exists()
    # space freed: the run resumes from the kept chunk and gives the uncached numbers
    got = cache.get(FakeNet(), _source(), features=True, progress=False)
    want = _uncached()
    assert got.n_computed == 4
    np.testing.assert_array_equal(got.logits, want.logits)
    np.testing.assert_array_equal(got.pool, want.pool)
    again = cache.get(FakeNet(), _source(), features=True, progress=False)
    assert again.from_cache
    np.testing.assert_array_equal(again.logits, want.logits)


@pytest.mark.parametrize("fail_on", ["logits.npy", "pool.npy", "sealed.json"])
def test_logits_cache_disk_full_while_sealing_leaves_nothing_half_sealed(
    tmp_path, monkeypatch, fail_on
):
    cache = LogitsCache(tmp_path / "logits", chunk_size=4)
    real_save, real_text = np.save, pathlib.Path.write_text

    def target_of(tmp):
        name = pathlib.Path(tmp).name  # .<target>.<random>.<suffix>
        return name[1:].rsplit(".", 2)[0] if name.startswith(".") else name

    def save(file, arr, *a, **k):
        if target_of(file) == fail_on:
            with open(file, "wb") as f:
                f.write(b"\x93NUMPY half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(file, arr, *a, **k)

    def write_text(self, text, *a, **k):
        if target_of(self) == fail_on:
            real_text(self, text[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_text(self, text, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(cache_mod.np, "save", save)
        m.setattr(pathlib.Path, "write_text", write_text)
        with pytest.raises(HarnessError, match=f"cannot write .*{fail_on}.*disk is full"):
            cache.get(FakeNet(), _source(), features=True, progress=False)
    d = cache.entry_dir(cache.key(_source(), FakeNet()))
    left = _files(d)
    assert _no_temp_files(d) == []
    assert not {"logits.npy", "pool.npy", "sealed.json"} & set(left)  # nothing half-sealed
    assert sorted(p.name for p in (d / "chunks").iterdir()) == [
        cache._chunk_name(0, 4),
        cache._chunk_name(4, 7),
    ]
    got = cache.get(FakeNet(), _source(), features=True, progress=False)
    want = _uncached()
    assert got.n_computed == 0  # sealed from the kept chunks
    np.testing.assert_array_equal(got.logits, want.logits)
    np.testing.assert_array_equal(got.pool, want.pool)
    assert cache.get(FakeNet(), _source(), features=True, progress=False).from_cache
