"""Labelled images for evaluation: a COCO annotations file with its images, or a YOLO-format dataset folder.

Both load into one :class:`~ovdet.evaluation.labelled.LabelledDataset`, whose ground truth is a COCO dictionary
that pycocotools reads as is.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, SourceError
from .labelled import LabelledDataset, LabelledImage, checked_dataset, coco_annotation, image_size, normalize_name
from .segments import coco_segmentation, missing_segment
from .yolo_format import load_yolo

__all__ = ["load_coco", "load_dataset"]

log = logging.getLogger(__name__)

MISSING_SHOWN = 3


def load_dataset(
    data: str | os.PathLike[str], images: str | os.PathLike[str] | None = None, task: str = "detect"
) -> LabelledDataset:
    """Read labelled data: a COCO ``.json`` file, or a YOLO-format folder (or its ``data.yaml``).

    Args:
        data: A COCO annotations file; or a folder with ``images/``, ``labels/`` and the class names in
            ``data.yaml`` (``names:``) or ``classes.txt``; or that ``data.yaml`` itself.
        images: For COCO data, the folder its ``file_name`` entries are relative to (default: the file's folder).
        task: ``"segment"``: every object must have an outline (COCO ``segmentation``, YOLO-seg polygon lines).

    Raises:
        SourceError: The data is missing, malformed, has no images, no labelled objects, names missing images,
            or (for ``"segment"``) has an object without an outline.
        ConfigError: ``images`` is given for YOLO data.

    Example:
        >>> dataset = load_dataset("ward/annotations.json", images="ward/photos")  # doctest: +SKIP
        >>> len(dataset.images), sorted(dataset.categories.values())  # doctest: +SKIP
        (40, ['infusion pump', 'syringe driver'])
    """
    path = Path(data)
    if not path.exists():
        raise SourceError(f"data {path} does not exist: pass a COCO annotations .json or a YOLO dataset folder")
    if path.suffix.lower() == ".json":
        return load_coco(path, images, task)
    if path.is_dir() or path.suffix.lower() in (".yaml", ".yml"):
        if images is not None:
            raise ConfigError(f"--images is for COCO data; the YOLO dataset {path} keeps its images in images/")
        return load_yolo(path, task)
    raise SourceError(
        f"data {path} is neither a COCO .json file nor a YOLO dataset folder: pass annotations.json or a folder "
        f"with images/ and labels/"
    )


def load_coco(
    path: str | os.PathLike[str], images: str | os.PathLike[str] | None = None, task: str = "detect"
) -> LabelledDataset:
    """Read and check a COCO annotations file; image files are found relative to ``images`` or the file's folder.
    For ``task="segment"`` every object needs a ``segmentation``.

    Example:
        >>> dataset = load_coco("ward/annotations.json")  # doctest: +SKIP
    """
    path = Path(path)
    root = _read_json(path)
    folder = Path(images) if images is not None else path.parent
    return _CocoFile(path, folder, task == "segment").parse(root)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"annotations {path} cannot be read ({exc.strerror or exc}): check the path") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"annotations {path} is not UTF-8 text ({exc.reason}): pass a COCO .json file") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}): fix or re-export the file") from exc
    except RecursionError:
        raise SourceError(f"{path}: JSON nested too deep to be a COCO file: fix or re-export the file") from None
    except ValueError as exc:  # a number of over 4,300 digits
        raise SourceError(f"{path}: not a COCO file ({exc}): fix or re-export the file") from None


class _CocoFile:
    """Checks a parsed COCO file entry by entry, so every error names the entry and what it should be."""

    def __init__(self, path: Path, image_folder: Path, needs_outlines: bool) -> None:
        self.path = path
        self.image_folder = image_folder
        self.needs_outlines = needs_outlines

    def parse(self, root: Any) -> LabelledDataset:
        if not isinstance(root, dict):
            raise SourceError(f"{self.path}: expected a COCO object with images, annotations and categories")
        categories = self._categories(self._list(root, "categories"))
        images = self._images(self._list(root, "images"))
        self._check_files_exist(images.values())  # first: outlines are checked against the images' sizes
        annotations = self._annotations(self._list(root, "annotations"), images, categories)
        return checked_dataset(LabelledDataset(str(self.path), tuple(images.values()), categories, annotations))

    def _list(self, root: dict[str, Any], key: str) -> list[Any]:
        value = root.get(key)
        if not isinstance(value, list):
            raise SourceError(
                f"{self.path}: no {key!r} list; a COCO file has 'images', 'annotations' and 'categories' lists"
            )
        return value

    def _entry(self, entry: Any, what: str, position: int, fields: dict[str, type]) -> None:
        if not isinstance(entry, dict):
            raise SourceError(f"{self.path}: {what} {position} is {type(entry).__name__}, expected an object")
        for name, kind in fields.items():
            value = entry.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise SourceError(
                    f"{self.path}: {what} {position} has {name} {value!r}; expected {_kind_name(kind)}: fix the file"
                )

    def _categories(self, entries: list[Any]) -> dict[int, str]:
        categories: dict[int, str] = {}
        seen: dict[str, int] = {}
        for position, entry in enumerate(entries, start=1):
            self._entry(entry, "category", position, {"id": int, "name": str})
            category_id, name = entry["id"], " ".join(entry["name"].split())
            if category_id in categories:
                raise SourceError(f"{self.path}: category id {category_id} is listed twice; give each its own id")
            if normalize_name(name) in seen:
                raise SourceError(
                    f"{self.path}: categories {seen[normalize_name(name)]} and {category_id} are both named "
                    f"{name!r}; merge them or rename one"
                )
            seen[normalize_name(name)] = category_id
            categories[category_id] = name
        return categories

    def _images(self, entries: list[Any]) -> dict[int, LabelledImage]:
        images: dict[int, LabelledImage] = {}
        for position, entry in enumerate(entries, start=1):
            self._entry(entry, "image", position, {"id": int, "file_name": str})
            if entry["id"] in images:
                raise SourceError(f"{self.path}: image id {entry['id']} is listed twice; give each image its own id")
            file = self.image_folder / entry["file_name"]
            width, height = entry.get("width"), entry.get("height")
            if not (_is_positive_int(width) and _is_positive_int(height)):
                width, height = image_size(file) if file.is_file() else (0, 0)
            images[entry["id"]] = LabelledImage(entry["id"], file, width, height)
        return images

    def _annotations(
        self, entries: list[Any], images: dict[int, LabelledImage], categories: dict[int, str]
    ) -> tuple[dict[str, Any], ...]:
        annotations = []
        for position, entry in enumerate(entries, start=1):
            self._entry(entry, "annotation", position, {"image_id": int, "category_id": int, "bbox": list})
            where = f"{self.path}: annotation {position}"
            if entry["image_id"] not in images:
                raise SourceError(f"{where} refers to image id {entry['image_id']}, which 'images' does not list")
            if entry["category_id"] not in categories:
                raise SourceError(
                    f"{where} refers to category id {entry['category_id']}, which 'categories' does not list"
                )
            x, y, width, height = _checked_box(entry["bbox"], where)
            annotation = coco_annotation(entry.get("id"), entry["image_id"], entry["category_id"], x, y, width, height)
            annotation["iscrowd"] = int(bool(entry.get("iscrowd", 0)))
            segmentation = coco_segmentation(entry.get("segmentation"), where, images[entry["image_id"]])
            if segmentation is not None:
                annotation["segmentation"] = segmentation
            elif self.needs_outlines:
                raise missing_segment(where)
            annotations.append(annotation)
        return _with_usable_ids(annotations, self.path)

    def _check_files_exist(self, images: Any) -> None:
        missing = [image.path for image in images if not image.path.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:MISSING_SHOWN]) + (", …" if len(missing) > MISSING_SHOWN else "")
            raise SourceError(
                f"{len(missing)} image(s) listed in {self.path} are missing ({shown}): pass --images with the folder "
                f"their file_name entries are relative to"
            )


def _with_usable_ids(annotations: list[dict[str, Any]], path: Path) -> tuple[dict[str, Any], ...]:
    """Keep the file's annotation ids unless pycocotools would misread them, then number them from 1."""
    ids = [a["id"] for a in annotations]
    usable = all(_is_positive_int(i) for i in ids) and len(set(ids)) == len(ids)
    if not usable and annotations:
        # pycocotools marks an unmatched detection with id 0, so an object with id 0 could never count as found.
        log.warning("%s: annotation ids are missing, repeated or 0; numbering them 1 to %d", path, len(ids))
        for number, annotation in enumerate(annotations, start=1):
            annotation["id"] = number
    return tuple(annotations)


def _checked_box(box: list[Any], where: str) -> tuple[float, float, float, float]:
    numbers = [v for v in box if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(box) != 4 or len(numbers) != 4 or box[2] <= 0 or box[3] <= 0:
        raise SourceError(f"{where} has bbox {box!r}; expected [x, y, width, height] with width and height > 0")
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _kind_name(kind: type) -> str:
    return {int: "an integer", str: "text", list: "a list"}.get(kind, kind.__name__)
