"""Where an evaluation report may go, and which of its folder's files it may replace.

A report is never written into the labelled data (its figures would replace images, or be scored as images next
time), and it replaces only files an earlier report wrote: each report lists what it wrote in ``.ovdet-report.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import UsageError

__all__ = [
    "METRICS_FILE",
    "MISTAKES_FILE",
    "PREDICTIONS_FILES",
    "REPORT_FILE",
    "check_report_files",
    "check_report_location",
    "record_report_files",
]

REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
MISTAKES_FILE = "mistakes.png"
PREDICTIONS_FILES = {"as_written": "predictions.json", "chosen": "predictions-chosen.json"}
RECORD_FILE = ".ovdet-report.json"
_REPORT_NAME = re.compile(r"pr-.*\.png")
_FIXED_NAMES = frozenset({REPORT_FILE, METRICS_FILE, MISTAKES_FILE, *PREDICTIONS_FILES.values()})


def check_report_location(report: str | os.PathLike[str], data: str | os.PathLike[str], images: str | None) -> None:
    """Refuse a report folder that is the dataset's folder or its images folder, or lies inside a YOLO dataset's
    ``images/`` (searched recursively, so figures there would be scored as images) or ``labels/``.

    A folder inside a COCO file's image folder is allowed: COCO scores only the files it lists, and no listed file
    is replaced (:func:`check_report_files`).

    Example:
        >>> check_report_location("report", "ward/annotations.json", None)
    """
    target = Path(os.path.realpath(report))
    for role, folder, inside in _data_folders(Path(data), images):
        folder = Path(os.path.realpath(folder))
        if target == folder or (inside and target.is_relative_to(folder)):
            where = "is" if target == folder else "lies inside"
            raise UsageError(
                f"--report {report} {where} {role} {folder}: its figures could replace labelled images or be read "
                f"as images; write the report to a folder outside the dataset, e.g. --report report/"
            )


def _data_folders(data: Path, images: str | None) -> list[tuple[str, Path, bool]]:
    """(what it is, folder, whether a folder inside it is refused too)."""
    if data.suffix.lower() == ".json":
        return [("the folder of the images of --data", Path(images) if images else data.parent, False)]
    root = data if data.is_dir() else data.parent
    return [("the dataset folder", root, False), ("the dataset's images/", root / "images", True),
            ("the dataset's labels/", root / "labels", True)]  # fmt: skip


def check_report_files(folder: Path) -> None:
    """Refuse a folder holding a file named like a report file (``report.md``, ``pr-*.png``, ``mistakes.png`` …)
    that no earlier report wrote: writing the report would replace it.

    Example:
        >>> check_report_files(Path("report"))  # doctest: +SKIP
    """
    if not folder.is_dir():
        return
    earlier = _recorded(folder)
    for path in sorted(folder.iterdir()):
        if _is_report_name(path.name) and (path.name not in earlier or not path.is_file() or path.is_symlink()):
            raise UsageError(
                f"--report {folder} holds {path.name}, which no earlier ovdet report wrote: the report would replace "
                f"it; write the report to an empty or new folder"
            )


def record_report_files(folder: Path, names: Iterable[str]) -> None:
    """List the files a report wrote (with those of earlier reports that are still there)."""
    written = sorted({*names, *(name for name in _recorded(folder) if (folder / name).is_file())})
    (folder / RECORD_FILE).write_text(json.dumps({"written_by": "ovdet eval", "files": written}), encoding="utf-8")


def _recorded(folder: Path) -> set[str]:
    """The report files an earlier report wrote here: its record, or (from reports older than records) every
    report file beside a ``metrics.json`` that ovdet wrote."""
    try:
        files = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8")).get("files")
        return {name for name in files if isinstance(name, str) and _is_report_name(name)}
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        pass
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return set()
    if not (isinstance(metrics, dict) and {"as_written", "chosen", "ap_conf"} <= metrics.keys()):
        return set()
    return {path.name for path in folder.iterdir() if _is_report_name(path.name)}


def _is_report_name(name: str) -> bool:
    return name in _FIXED_NAMES or bool(_REPORT_NAME.fullmatch(name))
