"""INT8 calibration scenes for ``ovdet eval --precision int8``, checked before any work: they must give a frame, and
none of their images may be a labelled image (ranges calibrated on the images INT8 is scored on would flatter it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import ConfigError, SourceError, UsageError
from ..core.files import file_digest
from ..io.sources import ImageSequence, open_source

__all__ = ["check_calibration", "labelled_among"]


def check_calibration(source: str, labelled: Sequence[Path]) -> None:
    """Refuse a calibration source that gives no frame or that holds labelled images, in one line.

    Args:
        source: What ``--calibration`` names: a video file, an image folder or one image.
        labelled: The labelled images' files.

    Raises:
        UsageError: one of its images is a labelled image: the same file (by any path or link) or a copy of one.
        SourceError: it gives no frame (an empty folder, images or a video that cannot be decoded).
        ConfigError: a live source.

    Example:
        >>> check_calibration("labelled/images", [Path("labelled/images/a.jpg")])  # doctest: +SKIP
        UsageError: --calibration labelled/images holds 1 of the labelled images (labelled/images/a.jpg is …)
    """
    try:
        frames = open_source(source)
    except SourceError as exc:
        raise SourceError(f"--calibration: {exc}") from exc
    try:
        if frames.live:
            raise ConfigError(f"--calibration {source} is a live source: calibrate on a video file or an image folder")
        if isinstance(frames, ImageSequence):
            _refuse_labelled(source, frames.paths, labelled)
        first = next(iter(frames), None)
    except SourceError as exc:
        raise SourceError(f"--calibration: {exc}") from exc
    finally:
        frames.close()
    if first is None:
        raise SourceError(f"--calibration {source}: no frame could be read; pass a video file or a folder of images")


def labelled_among(images: Sequence[Path], labelled: Sequence[Path]) -> list[tuple[Path, Path]]:
    """``(image, labelled image)`` for each of ``images`` that is a labelled image: the same file, or the same bytes.

    Only files of a labelled image's size are read.
    """
    same_file: dict[tuple[int, int], Path] = {}
    same_size: dict[int, list[Path]] = defaultdict(list)
    for path in labelled:
        stat = _stat(path)
        if stat is not None:
            same_file[(stat.st_dev, stat.st_ino)] = path
            same_size[stat.st_size].append(path)
    digests: dict[Path, str] = {}
    found = []
    for image in images:
        stat = _stat(image)
        if stat is None:
            continue
        twin = same_file.get((stat.st_dev, stat.st_ino))
        if twin is None and same_size.get(stat.st_size):
            digest = _digest(image)
            twin = next((p for p in same_size[stat.st_size] if digests.setdefault(p, _digest(p)) == digest), None)
        if twin is not None:
            found.append((image, twin))
    return found


def _refuse_labelled(source: str, images: Sequence[Path], labelled: Sequence[Path]) -> None:
    found = labelled_among(images, labelled)
    if found:
        image, twin = found[0]
        same = "is" if image.samefile(twin) else "has the bytes of"
        raise UsageError(
            f"--calibration {source} holds {len(found)} of the labelled images ({image} {same} {twin}): INT8 "
            f"calibrated on the images it is scored on would look better than it is; pass frames of your scenes "
            f"other than the labelled images"
        )


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


def _digest(path: Path) -> str:
    try:
        return file_digest(path)
    except OSError:
        return f"unreadable:{path}"
