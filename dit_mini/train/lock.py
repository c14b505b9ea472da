"""A run folder belongs to one process: an advisory lock file holding the owner's PID.

Two trainers writing the same `--out` would overwrite each other's checkpoints, so `run_lock`
takes an exclusive `fcntl.flock` on `<out>/.lock` before any work and writes its PID into it.
A second process is refused with the holder's PID. The file is removed at a clean release;
the kernel drops a flock when its process dies (even by SIGKILL), so a lock file left by a dead
process is simply taken over, with a note. The same process may take the lock again (the CLI
takes it before loading the data, then `fit` inside it); it is released when the outermost
holder leaves. Where `fcntl` does not exist (Windows), the lock is a no-op.

Used by `dit_mini.train.trainer.fit` and `dit-mini train`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..storage import CheckpointError

__all__ = ["LOCK_NAME", "RunFolderBusy", "run_lock"]

# Windows has no fcntl: there the lock is a no-op and the folder is not protected.
fcntl = importlib.import_module("fcntl") if importlib.util.find_spec("fcntl") else None
LOCK_NAME = ".lock"
_HELD: dict[Path, list] = {}  # resolved folder -> [fd, depth] of this process's locks


class RunFolderBusy(CheckpointError):
    """Another live process holds the run folder's lock."""


def _pid_in(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _acquire(folder: Path) -> int:
    """Lock folder/.lock for this process; returns its descriptor. Refuses a live holder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise RunFolderBusy(
                f"{folder} is in use by {who}, which is training in it (lock file {path}); "
                f"wait for it to finish or stop it (kill {holder or 'PID'}), or choose another "
                "output folder (--out)"
            ) from None
        try:  # the holder before us may have removed the file between our open and flock
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    previous = _pid_in(fd)
    if previous is not None and previous != os.getpid():
        print(
            f"note: took over the lock of {folder} from process {previous}, which is no "
            "longer running (it was killed or crashed; its last checkpoint is kept)",
            file=sys.stderr,
        )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def run_lock(folder: str | Path | None) -> Iterator[None]:
    """Hold the lock of run folder `folder` (None: nothing to lock) for the `with` block.

    Raises RunFolderBusy naming the holder's PID when another live process holds it.
    """
    if folder is None or fcntl is None:
        yield
        return
    key = Path(folder).resolve()
    if key in _HELD:  # taken again by this process (the CLI, then fit)
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _acquire(key)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        (key / LOCK_NAME).unlink(missing_ok=True)  # removed while held: a clean release
        os.close(fd)  # closing drops the flock
