"""YOLO-format datasets for evaluation: ``images/``, ``labels/`` with one box a line, and the class names."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import yaml

from ..core.errors import SourceError
from ..io.images import IMAGE_SUFFIXES
from .labelled import LabelledDataset, LabelledImage, checked_dataset, coco_annotation, image_size
from .segments import missing_segment, yolo_polygon

__all__ = ["load_yolo"]

log = logging.getLogger(__name__)

YOLO_NAME_FILES = ("data.yaml", "data.yml", "classes.txt")
MAX_TEXT_BYTES = 16 << 20  # a label or names file: 16 MiB is some 400,000 boxes


def load_yolo(path: str | os.PathLike[str], task: str = "detect") -> LabelledDataset:
    """Read and check a YOLO-format dataset: ``images/`` (searched recursively), ``labels/`` and class names.

    Each image ``images/a/b.jpg`` has its boxes in ``labels/a/b.txt``, one ``class x_center y_center width height``
    line per object, or a YOLO-seg ``class x1 y1 x2 y2 x3 y3 …`` polygon line (at least 3 points), normalised to
    [0, 1]. A polygon is the object's outline and its bounding box its box; for ``task="segment"`` every object
    needs one. An image without a label file has no objects.

    Example:
        >>> dataset = load_yolo("ward-yolo/")  # doctest: +SKIP
    """
    path = Path(path)
    root = path if path.is_dir() else path.parent
    if not root.is_dir():
        raise SourceError(f"YOLO dataset {path} does not exist: check the path")
    names = _yolo_names(path)
    image_dir, label_dir = root / "images", root / "labels"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise SourceError(
                f"YOLO dataset {root} has no {folder.name}/ folder: put images in images/, boxes in labels/"
            )
    files = sorted(p for p in image_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    images, annotations, labels = [], [], set()
    for image_id, file in enumerate(files, start=1):
        image = LabelledImage(image_id, file, *image_size(file))
        images.append(image)
        label = (label_dir / file.relative_to(image_dir)).with_suffix(".txt")
        labels.add(label)
        for box, polygon in _yolo_objects(label, image, len(names), task == "segment"):
            annotation = coco_annotation(len(annotations) + 1, image_id, *box)
            if polygon is not None:
                annotation["segmentation"] = [polygon]
            annotations.append(annotation)
    _warn_about_orphans(sorted(set(label_dir.rglob("*.txt")) - labels), root)
    categories = {index + 1: name for index, name in enumerate(names)}
    return checked_dataset(LabelledDataset(str(root), tuple(images), categories, tuple(annotations)))


def _warn_about_orphans(orphans: list[Path], root: Path) -> None:
    if orphans:
        log.warning(
            "%s: %d label file(s) have no image of the same name (e.g. %s): their objects are not evaluated; check "
            "the file names",
            root,
            len(orphans),
            orphans[0].relative_to(root),
        )


def _yolo_names(path: Path) -> list[str]:
    candidates = [path] if path.is_file() else [path / name for name in YOLO_NAME_FILES]
    for file in candidates:
        if file.is_file():
            names = _names_from_txt(file) if file.suffix == ".txt" else _names_from_yaml(file)
            if not names:
                raise SourceError(f"{file} lists no class names: add one name per class")
            return names
    raise SourceError(
        f"YOLO dataset {path} has no class names: add data.yaml (names: [syringe, pump]) or classes.txt (a name a line)"
    )


def _read_text(file: Path) -> str:
    """A label or names file's text: UTF-8, at most :data:`MAX_TEXT_BYTES`."""
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            raise SourceError(f"{file} is over {MAX_TEXT_BYTES >> 20} MiB: a YOLO label or names file is short text")
        return data.decode("utf-8")
    except OSError as exc:
        raise SourceError(f"{file} cannot be read ({exc.strerror or exc}): check the file") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"{file} is not UTF-8 text ({exc.reason}): save it as UTF-8") from exc


def _names_from_txt(file: Path) -> list[str]:
    return [" ".join(line.split()) for line in _read_text(file).splitlines() if line.strip()]


def _names_from_yaml(file: Path) -> list[str]:
    try:
        data = yaml.safe_load(_read_text(file))
    except (yaml.YAMLError, RecursionError) as exc:
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SourceError(f"{file}: not valid YAML ({reason}): fix the file") from exc
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and set(names) == set(range(len(names))):
        names = [names[index] for index in range(len(names))]
    if isinstance(names, list) and all(isinstance(name, (str, int, float)) for name in names):
        return [" ".join(str(name).split()) for name in names]
    raise SourceError(f"{file}: 'names' must be a list of class names or a mapping 0: name, 1: name, …")


YoloObject = tuple[tuple[int, float, float, float, float], list[float] | None]


def _yolo_objects(label: Path, image: LabelledImage, classes: int, needs_outlines: bool) -> list[YoloObject]:
    """The label file's objects: ``(category id, x, y, width, height)`` in pixels, and the polygon in pixels if
    the line is one; none when there is no file."""
    if not label.is_file():
        return []
    objects = []
    for number, line in enumerate(_read_text(label).splitlines(), start=1):
        if line.strip():
            objects.append(_yolo_object(line, f"{label}:{number}", image, classes, needs_outlines))
    return objects


def _yolo_object(line: str, where: str, image: LabelledImage, classes: int, needs_outlines: bool) -> YoloObject:
    fields = line.split()
    try:
        class_index, values = int(fields[0]), [float(v) for v in fields[1:]]
    except ValueError:
        raise SourceError(f"{where}: expected 'class x_center y_center width height' numbers, got {line!r}") from None
    if not 0 <= class_index < classes:
        raise SourceError(f"{where}: class {class_index} is outside the {classes} names (0 to {classes - 1})")
    if len(values) == 4:
        if needs_outlines:
            raise missing_segment(where)
        return _yolo_box(values, line, where, image, class_index), None
    if len(values) < 4:
        raise SourceError(
            f"{where}: expected 'class x_center y_center width height' (or a polygon), got {line!r}: a polygon "
            f"needs at least 3 points (x y pairs)"
        )
    polygon = yolo_polygon(values, where, image)
    xs, ys = polygon[0::2], polygon[1::2]
    if max(xs) <= min(xs) or max(ys) <= min(ys):
        raise SourceError(f"{where}: the polygon {line!r} encloses no area: its points lie on one line")
    return (class_index + 1, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), polygon


def _yolo_box(
    values: list[float], line: str, where: str, image: LabelledImage, class_index: int
) -> tuple[int, float, float, float, float]:
    x_center, y_center, width, height = values
    x1, y1, x2, y2 = x_center - width / 2, y_center - height / 2, x_center + width / 2, y_center + height / 2
    if not all(math.isfinite(v) and -1e-6 <= v <= 1 + 1e-6 for v in values) or x2 <= x1 or y2 <= y1:
        raise SourceError(f"{where}: the box {line!r} is empty or not normalised to [0, 1]: divide by the image size")
    w, h = image.width, image.height
    return class_index + 1, x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h
