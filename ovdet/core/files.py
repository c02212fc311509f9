"""Output files that stay valid whatever happens: whole lines appended or none, documents replaced atomically.

A full disk, a Ctrl-C or a killed process never leaves half a JSONL line, a truncated JSON document or a
temporary file behind; the error that stops the run is one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError

__all__ = [
    "AppendFile",
    "check_name_length",
    "check_writable",
    "file_digest",
    "output_error",
    "write_atomically",
    "write_json_atomically",
]

NAME_MAX = 255  # bytes in one file or folder name (ext4, XFS, Btrfs, APFS, NTFS in UTF-16 units)
PATH_MAX = 4095  # bytes in a whole path (Linux)


def output_error(path: str | os.PathLike[str], exc: BaseException) -> OutputError:
    """The one-line error for an output that could not be written.

    Example:
        >>> str(output_error("out.jsonl", OSError(errno.ENOSPC, "No space left on device")))
        'no space left on the device of out.jsonl: free some space or write the output elsewhere'
    """
    if isinstance(exc, OutputError):
        return exc
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"no space left on the device of {path}: free some space or write the output elsewhere")
    lines = str(exc).splitlines()
    reason = getattr(exc, "strerror", None) or (lines[0] if lines else type(exc).__name__)
    return OutputError(f"could not write {path} ({reason}): check the disk and the permissions of its folder")


def check_name_length(path: str | os.PathLike[str]) -> None:
    """Refuse an output whose file name (or a folder's) is longer than a file system allows.

    Example:
        >>> check_name_length("results.jsonl")  # fits: nothing happens
    """
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise OutputError(f"output {_shortened(part)}: its name is {size} bytes, over the {NAME_MAX} a file name "
                              f"may have: choose a shorter name (or rename the input it is named after)")  # fmt: skip
    size = len(os.fsencode(os.path.abspath(path)))
    if size > PATH_MAX:
        raise OutputError(f"output {_shortened(str(path))}: its path is {size} bytes, over the {PATH_MAX} a path may "
                          f"have: write it in a folder nearer the root")  # fmt: skip


def _shortened(name: str, keep: int = 24) -> str:
    return name if len(name) <= 2 * keep + 1 else f"{name[:keep]}…{name[-keep:]}"


def check_writable(path: str | os.PathLike[str], *, directory: bool = False) -> Path:
    """Fail before any work starts if an output cannot be created: its name fits, its folder can be made, a probe
    file can be written there."""
    path = Path(path)
    check_name_length(path)
    folder = path if directory else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ovdet-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write output {path} ({exc.strerror or exc}): choose a writable location") from exc
    if not directory and path.is_dir():
        raise OutputError(f"output {path} is a folder: give a file name such as {path / 'detections.jsonl'}")
    return path


class AppendFile:
    """A file written in whole records: each :meth:`append` lands entirely on disk, or not at all.

    A write that fails part-way (a full disk) is cut back to the end of the last whole record before the error
    is raised, so readers never see half a line.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_writable(path)
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        self._size = 0

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, text: str) -> None:
        """Write ``text`` (whole records, UTF-8) at the end of the file."""
        if self._fd is None:
            raise OutputError(f"{self.path} is already closed")
        data = memoryview(text.encode("utf-8"))
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            os.ftruncate(self._fd, self._size)
            raise output_error(self.path, exc) from exc
        self._size += written

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def write_atomically(documents: Sequence[tuple[Path, bytes]], *, sync: bool = True) -> None:
    """Write files so that each is replaced whole, and none is replaced unless all were written.

    Args:
        documents: ``(path, content)`` pairs.
        sync: Flush each file to the disk before it replaces the old one (so a power cut leaves the old or the new
            file, never an empty one); caches that can be rebuilt skip it.

    Raises:
        OutputError: one line naming the file (a full disk, a missing permission); no temporary file stays.

    Example:
        >>> write_atomically([(Path("results.json"), b"[]")])  # doctest: +SKIP
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, data in documents:
            temporary = _temporary(path)
            written.append((temporary, path))
            with open(temporary, "wb") as handle:
                handle.write(data)
                if sync:
                    handle.flush()
                    os.fsync(handle.fileno())
    except BaseException as exc:  # a full disk or a Ctrl-C: no temporary file stays, no document is replaced
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(written[-1][1], exc) from exc
        raise
    for temporary, path in written:
        os.replace(temporary, path)


def _temporary(path: Path) -> Path:
    """``.NAME.PID.tmp`` beside ``path``, NAME cut short where the whole would be longer than a name may be."""
    suffix = f".{os.getpid()}.tmp"
    name = os.fsencode(path.name)[: NAME_MAX - 1 - len(suffix)]
    return path.with_name(f".{os.fsdecode(name)}{suffix}")


def write_json_atomically(documents: Sequence[tuple[Path, Any]]) -> None:
    """:func:`write_atomically` for JSON documents (UTF-8, non-ASCII kept)."""
    write_atomically([(path, json.dumps(payload, ensure_ascii=False).encode("utf-8")) for path, payload in documents])


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes in hex, read in 4 MiB chunks.

    Example:
        >>> file_digest(Path("frame.png"))  # doctest: +SKIP
        '9f86d081884c7d65…'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
