"""``ovdet detect``'s defaults for a first run: with no source, Ultralytics' sample images; with no output, a results
folder, ``runs/detect/predict``, then ``predict2``, ``predict3`` … as Ultralytics numbers its runs. The folder gets
the detections as JSONL and the annotated images (or, for a video, webcam or stream, the annotated video).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..core.errors import UsageError
from ..io.samples import SAMPLE_CLASSES, sample_images_folder

__all__ = [
    "DETECTIONS_FILE",
    "RESULTS_FOLDER_ROLE",
    "add_arguments",
    "next_run_folder",
    "with_default_outputs",
    "with_default_source",
]

DETECTIONS_FILE = "detections.jsonl"
EXPLICIT_OUTPUTS = ("output", "coco", "events", "save_annotated", "alerts", "save_crops", "summary")
RESULTS_FOLDER_ROLE = "the results folder (--project/--name)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--project``, ``--name``, ``--exist-ok`` and ``--no-save``, with Ultralytics' names and meanings."""
    group = parser.add_argument_group(
        "results folder",
        "unless an output is named (--output, --coco, --events, --save-annotated, --alerts, --save-crops, "
        "--summary), results go to PROJECT/NAME",
    )
    group.add_argument("--project", default="runs/detect", help="parent folder of the results (default %(default)s)")
    group.add_argument(
        "--name", default="predict", help="results folder; predict2, predict3 … if taken (default %(default)s)"
    )
    group.add_argument("--exist-ok", action="store_true", help="write into PROJECT/NAME even if it exists")
    group.add_argument("--no-save", action="store_true", help="save nothing: a dry run that prints the summary")


def with_default_source(args: argparse.Namespace) -> argparse.Namespace:
    """No source: Ultralytics' sample images, and (without --classes or --vocab) what they show. A source of the
    user's own needs its classes — only the user knows what to look for there — unless the model is an export with
    its classes baked in."""
    args = argparse.Namespace(**vars(args))
    if not (args.classes or args.vocab) and (baked := _baked_classes(Path(args.model))):
        args.classes = ",".join(baked)
    if args.source is None:
        args.source = str(sample_images_folder())
        if not (args.classes or args.vocab):
            args.classes = SAMPLE_CLASSES
    if not (args.classes or args.vocab):
        raise UsageError(f'say what to find in {args.source}: add --classes "person,bottle" or --vocab FILE.yaml')
    return args


def _baked_classes(model: Path) -> tuple[str, ...] | None:
    """The classes a fixed-vocabulary export was made with: what it detects when no classes are given."""
    from ..runtimes.artifact import exported_metadata

    metadata = exported_metadata(model)
    return metadata.classes if metadata is not None else None


def with_default_outputs(args: argparse.Namespace, source) -> tuple[argparse.Namespace, Path | None]:
    """``args`` with the default outputs filled in, and their folder; unchanged (and ``None``) when the user named
    an output or passed ``--no-save``. The folder is only chosen here; the sinks create it when they open.
    """
    if args.no_save or any(getattr(args, name) for name in EXPLICIT_OUTPUTS):
        return args, None
    folder = next_run_folder(Path(args.project), args.name, args.exist_ok)
    outputs = [str(folder / DETECTIONS_FILE)]
    save_annotated = None
    if source.fps is not None or source.live:
        outputs.append(str(folder / f"{_file_stem(source.name)}.mp4"))
    else:
        save_annotated = str(folder)
    defaults = {"output": outputs, "save_annotated": save_annotated, "save_annotated_role": RESULTS_FOLDER_ROLE}
    return argparse.Namespace(**{**vars(args), **defaults}), folder


def next_run_folder(project: Path, name: str, exist_ok: bool = False) -> Path:
    """``project/name`` if it is free (or ``exist_ok``), else the first free ``project/name2``, ``name3`` …

    Example:
        >>> next_run_folder(Path("runs/detect"), "predict")  # doctest: +SKIP
        PosixPath('runs/detect/predict2')
    """
    folder = project / name
    if exist_ok or not folder.exists():
        return folder
    number = 2
    while (project / f"{name}{number}").exists():
        number += 1
    return project / f"{name}{number}"


def _file_stem(source_name: str) -> str:
    """A file name for the annotated video of ``source_name`` (a path, ``webcam:0`` or a URL)."""
    stem = Path(source_name).stem if "://" not in source_name else source_name.rsplit("/", 1)[-1]
    return re.sub(r"[^\w.-]+", "_", stem).strip("._") or "video"
