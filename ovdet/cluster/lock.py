"""One batch run per output folder: a second run on the same ``--output-dir`` is refused while the first lives.

The lock is ``fcntl.flock`` on ``OUT/.ovdet-batch.lock``, which holds the owner's process id. The kernel releases
it when the process ends however it ends (exit, crash, signal, ``kill -9``), so a lock left by a dead run never
blocks the next one; the file itself stays, empty of meaning once unlocked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import OutputError, UsageError

__all__ = ["LOCK_NAME", "output_dir_lock"]

LOCK_NAME = ".ovdet-batch.lock"


@contextmanager
def output_dir_lock(output_dir: Path) -> Iterator[Path]:
    """Hold the output folder's lock for the ``with`` block; refuse in one line while another run holds it.

    Example:
        >>> with output_dir_lock(Path("out")):  # doctest: +SKIP
        ...     run_the_sources()
    """
    path = output_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {path} ({exc.strerror or exc}): choose a writable "
                          f"--output-dir") from exc  # fmt: skip
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"--output-dir {output_dir} is in use by another ovdet batch run (pid {_owner(fd)}): wait for it to "
                f"finish, or choose another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _owner(fd: int) -> str:
    """The pid the running owner wrote (it writes it right after locking, so it can be a moment late)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.01)
    return "unknown"
