"""An export folder written whole or not at all: staged in a hidden sibling, then moved into place.

Only the files an earlier export wrote are ever replaced or removed; whatever else the user keeps there stays. The
earlier ``ovdet.json`` may have been edited: a file is removed only if that ``ovdet.json`` passes every check
that loading it does (so it names bare file names inside the folder) and the file is a regular file, not a link.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import ConfigError, OvdetError
from ..runtimes.artifact import METADATA_FILE, Artifact, read_metadata

__all__ = ["check_target", "staging"]


def check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"export folder {folder} is a file: choose another -o folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / METADATA_FILE).is_file():
        raise ConfigError(f"export folder {folder} exists and is not an ovdet export: choose another -o folder")


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A fresh hidden folder to write into; its files reach ``folder`` only if the block succeeds.

    A new ``folder`` appears whole, by one rename. In an existing one, only the files of the earlier export
    (those its ``ovdet.json`` names) are replaced or removed: whatever else the user keeps there stays.
    """
    folder = folder.resolve()
    existing = folder.is_dir()
    if not existing:
        folder.parent.mkdir(parents=True, exist_ok=True)
    staging = (folder if existing else folder.parent) / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # left over by an export that was killed
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not existing:
        os.replace(staging, folder)
        return
    earlier = _files_of_export(folder)
    written = sorted(p.name for p in staging.iterdir())
    for name in sorted(written, key=lambda name: name == METADATA_FILE):  # the metadata last: it names the rest
        os.replace(staging / name, folder / name)
    staging.rmdir()
    for name in sorted(earlier - set(written)):
        if _regular_file(folder / name):
            (folder / name).unlink()


def _files_of_export(folder: Path) -> set[str]:
    """The files an earlier export in ``folder`` wrote, as its ``ovdet.json`` names them; none if it fails a check."""
    try:
        metadata = read_metadata(folder, folder.name)
    except OvdetError:
        return set()
    return set(Artifact(folder, metadata).file_names())


def _regular_file(path: Path) -> bool:
    """A file of the folder itself: not a link (whose target ovdet did not write), a folder or a device."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False
