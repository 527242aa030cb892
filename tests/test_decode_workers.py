"""Decode worker processes die with the process that started them, and what ``skip_bad``
skipped reaches the run's ``provenance.json``."""

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import data

# (not conftest's: decode processes import this module for _pdeath_signal, without torch)
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch not installed"
)
ROOT = Path(__file__).resolve().parent.parent
N_IMAGES = 8

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc and /dev/shm (Linux)"
)


def _pngs(folder: Path, n: int, size: int = 48, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(x).save(folder / f"{i:03d}.png")


# The run that is killed: decode processes started, a batch read, then it waits.  With
# ``thread`` the processes are started by a thread that then ends (they must live on: Linux's
# parent-death signal follows the thread that started a process, not the process).
SCRIPT = textwrap.dedent(
    """
    import json
    import multiprocessing
    import sys
    import threading
    import time

    from harness import data

    if __name__ == "__main__":
        root, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        src = data.load_source(
            "folder", root=root, num_workers=2, worker_type="process", prefetch=0,
            progress=False,
        )

        def first_batch():
            it = src.batches(4)
            next(it)
            it.close()

        if where == "thread":
            t = threading.Thread(target=first_batch)
            t.start()
            t.join()
            time.sleep(0.5)
            assert sum(len(b) for b in src.batches(4)) == n  # the processes outlived it
        else:
            first_batch()
        workers = [p.pid for p in multiprocessing.active_children()]
        blocks = ["/dev/shm/" + b.name for b in src._blocks]
        print(json.dumps({"workers": workers, "blocks": blocks}), flush=True)
        time.sleep(300)
    """
)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # an unreaped zombie holds nothing


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st is not None and int(st[1]) == pid:
                out.append(int(d.name))
    return out


def _shm_inodes(pid: int) -> set[int]:
    """Inodes of the /dev/shm files a process maps: multiprocessing's named semaphores (mapped
    under glibc's temporary names, then linked as ``sem.mp-*``) and the decode blocks."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {int(ln.split()[4]) for ln in maps if " /dev/shm/" in ln}


def _shm_files(inodes: set[int]) -> list[str]:
    """The names in /dev/shm of those inodes now."""
    with os.scandir("/dev/shm") as it:
        return sorted(e.name for e in it if e.inode() in inodes)


@linux_only
@pytest.mark.parametrize("where", ["main", "thread"])
def test_kill_9_takes_the_decode_processes_and_their_shared_memory(tmp_path, where):
    """``kill -9`` of a run with decode processes: its processes exit within seconds, then the
    resource tracker (its pipe closed by all of them) unlinks the leaked shared-memory block
    and semaphores and exits.  ``main``: the parent-death signal; ``thread``: started by an
    ended thread, so the watchdog alone."""
    _pngs(tmp_path / "imgs", N_IMAGES)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "imgs"), where, str(N_IMAGES)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=tmp_path,
            env=env,
        )
    workers: list[int] = []
    trackers: list[int] = []
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        line = proc.stdout.readline() if ready else b""
        assert line, (tmp_path / "stderr.txt").read_text()[-3000:]
        info = json.loads(line)
        workers[:] = info["workers"]
        trackers[:] = [c for c in _children(proc.pid) if "resource_tracker" in _cmdline(c)]
        assert len(workers) == 2 and all(map(_alive, workers))
        assert len(trackers) == 1 and _alive(trackers[0])
        held = _shm_inodes(proc.pid)
        files = _shm_files(held)  # the semaphores of the pool's queues and the decode block
        assert len([f for f in files if f.startswith("sem.")]) >= 2, files
        assert info["blocks"] and {Path(b).name for b in info["blocks"]} <= set(files), files

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        deadline = t0 + 10
        while time.monotonic() < deadline and (
            any(map(_alive, workers + trackers)) or _shm_files(held)
        ):
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)], "decode processes outlived their parent"
        assert not [p for p in trackers if _alive(p)], "the resource tracker outlived the run"
        assert not _shm_files(held), "shared memory or semaphores leaked"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        # what this test started and is still alive (the bug): the workers first, so that the
        # resource tracker can still unlink what they leaked; the tracker only if it stays
        for group in (workers, trackers):
            for pid in group:
                if _alive(pid) and "multiprocessing" in _cmdline(pid):
                    os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 5
            while any(map(_alive, workers + trackers)) and time.monotonic() < end:
                time.sleep(0.05)


def _pdeath_signal():
    """(this process's parent-death signal, its threads' names): run in a decode process."""
    import ctypes
    import threading

    sig = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
    return sig.value, sorted(t.name for t in threading.enumerate())


@linux_only
def test_decode_processes_ask_for_the_parent_death_signal_and_keep_a_watchdog(tmp_path):
    """Started from the main thread: SIGKILL when the parent dies, and the watchdog.  Started
    from another thread (Linux would signal them when *that thread* ends): the watchdog only,
    and they outlive that thread."""
    import threading

    _pngs(tmp_path, N_IMAGES)
    kw = dict(num_workers=2, worker_type="process", prefetch=0, progress=False)
    main = data.load_source("folder", root=str(tmp_path), **kw)
    assert sum(len(b) for b in main.batches(4)) == N_IMAGES
    sig, threads = main._procs.submit(_pdeath_signal).result()
    assert sig == signal.SIGKILL and "decode-watchdog" in threads
    other = data.load_source("folder", root=str(tmp_path), **kw)
    t = threading.Thread(target=lambda: list(other.batches(4)))
    t.start()
    t.join()
    time.sleep(0.3)
    assert sum(len(b) for b in other.batches(4)) == N_IMAGES  # the same processes, alive
    sig, threads = other._procs.submit(_pdeath_signal).result()
    assert sig == 0 and "decode-watchdog" in threads


def test_a_decode_process_whose_parent_is_already_gone_exits():
    """The parent died before the parent-death signal was asked for: nobody would send it, so
    the initializer checks the parent pid and exits."""
    code = (
        "import os\n"
        "from harness.data.files import decode_process_init\n"
        "decode_process_init(os.getppid() + 1000000, True)\n"
        "print('still running')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")


def _values_of(obj, key: str) -> list:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key] + [
            x for v in obj.values() for x in _values_of(v, key)
        ]
    if isinstance(obj, list):
        return [x for v in obj for x in _values_of(v, key)]
    return []


@needs_torch
def test_skip_bad_count_reaches_provenance_json(tmp_path):
    from harness import api

    _pngs(tmp_path / "imgs", N_IMAGES, size=32, seed=1)
    (tmp_path / "imgs" / "zz_corrupt.png").write_bytes(b"not a png\n")
    out = api.run_experiment(
        "splits",
        [
            "dataset=folder",
            f"dataset.root={tmp_path / 'imgs'}",
            "dataset.skip_bad=true",
            "weights=random:0",
            "backbone.input_size=75",
            f"sample_sizes=[{N_IMAGES}]",
            "n_splits=[1,2]",
            "resamples=1",
            "progress=false",
        ],
        run_dir=tmp_path / "run",
    )
    assert out.table.n_samples.iloc[0] == N_IMAGES  # the corrupt file was skipped
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert _values_of(record, "skipped_files") == [1]
    assert _values_of(record, "skipped_examples") == [["zz_corrupt.png"]]
