"""The decode processes of the file sources: each decodes its share of a batch straight into a
shared-memory block the parent reads (no pickling of pixels), exits when its parent dies, and
leaves no block behind (:func:`decode_into`, :func:`decode_process_init`)."""

from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import HarnessError
from .decoding import DecodeSpec, decode_file

#: shared-memory blocks a decode process keeps attached (the newest; blocks are reused)
_ATTACHED: dict = {}
_ATTACHED_MAX = 4
#: name prefix of the shared-memory blocks (``/dev/shm/<prefix><pid>-...`` on Linux; the pid of
#: the process that created the block, so a leak is traceable to its run)
SHM_PREFIX = "inception-note-decode-"


def _attach(name: str):
    """A shared-memory block created by the main process, attached once per decode process."""
    from multiprocessing import shared_memory

    shm = _ATTACHED.get(name)
    if shm is None:
        try:
            shm = shared_memory.SharedMemory(name=name, track=False)  # Python >= 3.13
        except TypeError:
            # before 3.13 attaching registers the block with the resource tracker, which a
            # spawned process shares with its parent: a no-op (already registered by the
            # creator, whose unlink unregisters it once)
            shm = shared_memory.SharedMemory(name=name)
        while len(_ATTACHED) >= _ATTACHED_MAX:  # blocks replaced by larger ones: let go
            _ATTACHED.pop(next(iter(_ATTACHED))).close()
        _ATTACHED[name] = shm
    return shm


#: ``prctl`` option: a signal sent to this process when its parent (thread) ends (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: seconds between the watchdog's checks that the main process still exists
WATCHDOG_INTERVAL = 0.5


class SpawnedInMainThread:
    """In the decode processes' initargs: pickled as each process is spawned, in the thread
    that spawns it (the one calling ``submit``), it arrives as whether that is the main thread.

    Linux sends the parent-death signal when the *thread* that started the process ends, not
    the process: a process started by another thread (a consumer iterating batches in a
    thread) would be killed when that thread ends, so it relies on the watchdog alone.
    """

    def __reduce__(self):
        import threading

        return (bool, (threading.current_thread() is threading.main_thread(),))


def _parent_death_signal() -> bool:
    """Linux: SIGKILL this process when its parent ends (``prctl(PR_SET_PDEATHSIG)``)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc or no prctl: the watchdog alone
        return False


def _parent_gone(parent_pid: int, parent) -> bool:
    # POSIX: an orphan is re-parented (getppid changes); everywhere: the sentinel of
    # multiprocessing's parent_process() (a pipe only the parent holds) becomes ready
    return os.getppid() != parent_pid or (parent is not None and not parent.is_alive())


def _watch_parent(parent_pid: int, interval: float = WATCHDOG_INTERVAL) -> None:
    """Watchdog thread of a decode process: exit at once when the main process is gone."""
    import multiprocessing
    import time

    parent = multiprocessing.parent_process()
    while not _parent_gone(parent_pid, parent):
        if parent is not None:
            parent.join(interval)  # returns as soon as the parent's end of the pipe closes
        else:
            time.sleep(interval)
    os._exit(1)  # nobody is left to read results; the resource tracker frees the blocks


def decode_process_init(parent_pid: int, spawned_in_main_thread: bool = False) -> None:
    """Initializer of each decode process: it dies with the main process, also when that is
    killed (``kill -9``, the OOM killer), instead of living on, adopted by init, with a
    shared-memory block attached.  Once they are gone, multiprocessing's resource tracker (whose
    pipe they hold too) reads EOF, unlinks the leaked block and semaphores, and exits.

    Linux: a parent-death signal (SIGKILL), then ``getppid`` checked against ``parent_pid``
    (the parent may have died before the signal was asked for); everywhere: a watchdog thread.
    """
    import threading

    # `is True`: only what SpawnedInMainThread unpickles to (not the object itself, which a
    # process started without pickling would get)
    if spawned_in_main_thread is True and sys.platform.startswith("linux"):
        _parent_death_signal()
    if _parent_gone(parent_pid, None):
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="decode-watchdog", daemon=True
    ).start()


def decode_into(spec: DecodeSpec, paths: list[str], block: str, shape: tuple, start: int):
    """Decode ``paths`` into rows ``start...`` of the uint8 array of ``shape`` at the start of
    the shared-memory block ``block`` (run in a decode process: the pixels travel through
    shared memory, not a pipe); returns what decoding did per image."""
    out = np.ndarray(tuple(shape), np.uint8, buffer=_attach(block).buf)
    try:
        dones = []
        for k, f in enumerate(paths):
            x, done = decode_file(f, spec)
            if x.shape != out.shape[1:]:
                raise HarnessError(
                    f"{spec.kind}: image {f} decoded to {x.shape[1]}x{x.shape[0]}, but it was "
                    f"{out.shape[2]}x{out.shape[1]} when the folder was scanned; was it "
                    "replaced while running? Start again"
                )
            out[start + k] = x
            dones.append(done)
        return dones
    finally:
        del out


def shm_free_bytes() -> int | None:
    """Free bytes of /dev/shm (where shared-memory blocks live on Linux), or None elsewhere."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def release_blocks(blocks: list) -> None:
    """Unlink the main process's shared-memory blocks (the source is gone, or at exit)."""
    for shm in blocks:
        try:  # the name first: a view still alive somewhere must not keep the file
            shm.unlink()
        except FileNotFoundError:
            pass
        try:
            shm.close()
        except BufferError:  # an exported view: the memory goes with it
            pass
    blocks.clear()
