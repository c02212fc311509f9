"""Labelled images for evaluation, whichever format they came in: the dataset, its images, and what both readers
(:mod:`ovdet.evaluation.datasets` for COCO, :mod:`ovdet.evaluation.yolo_format`) build it with.

The ground truth is a COCO dictionary that pycocotools reads as is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..core.errors import SourceError, VocabularyError
from ..io.images import pillow_open

__all__ = [
    "LabelledDataset",
    "LabelledImage",
    "checked_dataset",
    "coco_annotation",
    "image_size",
    "match_categories",
    "normalize_name",
]

EXIF_ORIENTATION = 0x0112
EXIF_TRANSPOSED = frozenset({5, 6, 7, 8})  # orientations that swap width and height


def normalize_name(name: str) -> str:
    """The form class names are matched in: case-folded, runs of whitespace as one space.

    Example:
        >>> normalize_name("  Syringe   Driver ")
        'syringe driver'
    """
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class LabelledImage:
    """One image of a labelled dataset: its COCO id, its file and its size in pixels."""

    id: int
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class LabelledDataset:
    """Images with labelled boxes; the ground truth is kept as COCO annotations.

    Attributes:
        name: Where the data came from (the annotations file or the dataset folder), for messages and reports.
        images: The images, in file order.
        categories: COCO category id → class name.
        annotations: COCO annotation dicts (``id``, ``image_id``, ``category_id``, ``bbox`` as
            ``[x, y, width, height]`` in pixels, ``area`` of the box, ``iscrowd``; ``segmentation`` where the
            object has an outline: polygons in pixels or run-length encoding).

    Example:
        >>> dataset = load_dataset("labels/annotations.json")  # doctest: +SKIP
        >>> dataset.objects_per_category()  # doctest: +SKIP
        Counter({1: 57, 2: 12})
    """

    name: str
    images: tuple[LabelledImage, ...]
    categories: dict[int, str]
    annotations: tuple[dict[str, Any], ...]

    def coco(self) -> dict[str, Any]:
        """The ground truth as the dictionary ``pycocotools.coco.COCO`` indexes."""
        return {
            "images": [
                {"id": image.id, "file_name": image.path.name, "width": image.width, "height": image.height}
                for image in self.images
            ],
            "annotations": [dict(annotation) for annotation in self.annotations],
            "categories": [{"id": category_id, "name": name} for category_id, name in self.categories.items()],
        }

    def objects_per_category(self) -> Counter[int]:
        """How many labelled (non-crowd) objects each category id has."""
        return Counter(a["category_id"] for a in self.annotations if not a["iscrowd"])


def match_categories(dataset: LabelledDataset, class_names: Sequence[str]) -> dict[int, str]:
    """Pair each labelled category of the data with the vocabulary class of the same name.

    Names match case-insensitively, with runs of whitespace as one space. Categories without labelled objects
    are left out (a COCO file may list categories nobody labelled).

    Returns:
        Category id → vocabulary class name.

    Raises:
        VocabularyError: Some labelled categories have no vocabulary class; the message lists them.

    Example:
        >>> match_categories(dataset, ["Syringe Driver", "person"])  # doctest: +SKIP
        {1: 'Syringe Driver'}
    """
    by_key = {normalize_name(name): name for name in class_names}
    labelled = sorted(dataset.objects_per_category())
    unmatched = [dataset.categories[c] for c in labelled if normalize_name(dataset.categories[c]) not in by_key]
    if unmatched:
        raise VocabularyError(
            f"{dataset.name} labels {', '.join(repr(n) for n in unmatched)}, which the vocabulary "
            f"({', '.join(class_names)}) lacks: add them to the vocabulary or rename them to match"
        )
    return {c: by_key[normalize_name(dataset.categories[c])] for c in labelled}


def coco_annotation(
    annotation_id: Any, image_id: int, category_id: int, x: float, y: float, width: float, height: float
) -> dict[str, Any]:
    """A COCO annotation of a box; an outline is added as ``segmentation`` by the reader that has one."""
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x, y, width, height],
        "area": width * height,
        "iscrowd": 0,
    }


def checked_dataset(dataset: LabelledDataset) -> LabelledDataset:
    if not dataset.images:
        raise SourceError(f"{dataset.name} lists no images: add the labelled images")
    if not dataset.objects_per_category():
        raise SourceError(f"{dataset.name} has no labelled objects: label at least one object to evaluate against")
    return dataset


def image_size(path: Path) -> tuple[int, int]:
    """Width and height as decoded (EXIF rotation applied, as ``cv2.imread`` does), read from the header."""
    try:
        with pillow_open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in EXIF_TRANSPOSED:
                width, height = height, width
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise SourceError(f"image {path} cannot be read ({exc}): the file is corrupt or not an image") from exc
    return width, height
