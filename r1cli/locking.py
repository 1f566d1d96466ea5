"""One run per OUT: an OS lock (flock) held while a stage writes its output (see artifacts.py).

    lock_output(out)     # in check_output: before OUT.partial/ is touched; refused when another run holds it
    unlock_output(out)   # when the stage ends, however it ends (a dead process's lock is dropped by the kernel)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from r1cli.errors import UserError

_LOCKS: dict[Path, tuple[int, Path]] = {}


def lock_output(out: str | os.PathLike) -> None:
    """Hold an OS lock (flock) on OUT while this process writes it, so that a second run of the same
    OUT (even with --force or --resume) is refused instead of deleting the first one's OUT.partial/.
    The lock is the hidden file `.OUT.r1lock` beside OUT, holding the run's pid; it is removed when
    the run ends. The kernel drops the lock when a process dies, however it dies: a SIGKILL may leave
    the file, never a held lock. Under accelerate/torchrun only rank 0 takes it (a run's ranks share OUT)."""
    if os.environ.get("RANK", "0") != "0":
        return
    out = Path(out).absolute()
    if out in _LOCKS or not out.parent.is_dir():  # no parent yet: stage_output locks once it made it
        return
    path = out.with_name(f".{out.name}.r1lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return  # a place we cannot write: check_output refuses it with its own message
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"{out.name} is being written by another r1 run (pid {pid}): wait for it to finish, "
                            "or stop it, before running this again") from None
        try:  # the file we locked may have been removed by a run that just ended: lock the new one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _LOCKS[out] = (fd, path)


def unlock_output(out: str | os.PathLike | None = None) -> None:
    """Release the lock on OUT (every lock of this process when None) and remove its file."""
    for key in [Path(out).absolute()] if out is not None else list(_LOCKS):
        held = _LOCKS.pop(key, None)
        if held is not None:
            fd, path = held
            Path(path).unlink(missing_ok=True)  # while still held: nobody can lock the old file after this
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
