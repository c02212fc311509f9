"""Output paths checked before any work: none may land on an input, on another output, or on the wrong file type.

Paths are compared as the file system sees them — relative paths, ``..``, symbolic and hard links all resolve
to the same file — so ``--output v.mp4`` can never replace the video it reads, however it is spelt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UsageError

__all__ = ["Target", "check_suffix", "check_targets"]


@dataclass(frozen=True)
class Target:
    """One path on the command line and what it is, e.g. ``Target("--events", "ev.jsonl")``.

    Attributes:
        role: How the user named it (``"--output"``, ``"the input"``, ``"--vocab"`` …), for messages.
        path: The path as given.
        folder: Whether it is a folder that outputs are written into (``--save-annotated``, ``--save-crops``).
    """

    role: str
    path: Path
    folder: bool = False


def check_suffix(role: str, path: str | os.PathLike[str], suffixes: Sequence[str]) -> None:
    """Refuse an output whose file type is not one of ``suffixes``.

    Example:
        >>> check_suffix("--coco", "results.json", [".json"])
    """
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise UsageError(
            f"{role} {path}: expected a {' or '.join(suffixes)} file, got {suffix or 'no extension'}; "
            f"name it e.g. {Path(path).with_suffix(suffixes[0]).name}"
        )


def check_targets(inputs: Iterable[Target], outputs: Sequence[Target]) -> None:
    """Refuse before any work when an output is an input, holds input images, or is another output.

    Args:
        inputs: Files read by the run (the source's files, the vocabulary, the weights).
        outputs: Files and folders it writes.

    Raises:
        UsageError: naming both paths and what to do instead.
    """
    inputs = list(inputs)
    input_folders = {_identity(target.path.parent) for target in inputs if target.role == "the input"}
    for position, output in enumerate(outputs):
        key = _identity(output.path)
        for target in inputs:
            if key == _identity(target.path):
                raise UsageError(
                    f"{output.role} {output.path} is {target.role} {target.path}: it would be overwritten; "
                    f"write {output.role} elsewhere"
                )
        if output.folder and key in input_folders:
            raise UsageError(
                f"{output.role} {output.path} is the folder of the input images: files written there could "
                f"replace them; pass another folder"
            )
        for other in outputs[:position]:
            if key == _identity(other.path):
                raise UsageError(
                    f"{output.role} {output.path} and {other.role} {other.path} are the same file: "
                    f"give each output its own path"
                )


def _identity(path: Path) -> tuple:
    """The file a path names: device and inode where it exists (links included), else its resolved path."""
    try:
        stat = path.stat()
    except OSError:
        absolute = Path(os.path.abspath(path))
        try:
            return ("path", str(absolute.resolve()))
        except (OSError, RuntimeError):  # a symbolic-link loop: as written; reading it fails later, with its reason
            return ("path", str(absolute))
    return ("inode", stat.st_dev, stat.st_ino)
