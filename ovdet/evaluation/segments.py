"""Object outlines in ground truth, for ``ovdet eval --task segment``: COCO ``segmentation`` (polygons or
run-length encoding) and YOLO-seg polygon lines, checked so that every error names the file and the object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..core.errors import SourceError
from .labelled import LabelledDataset, LabelledImage

__all__ = ["coco_segmentation", "missing_segment", "require_outlines", "yolo_polygon"]

OUTSIDE_TOLERANCE = 1.0  # pixels a COCO polygon may reach past the image edge (annotation tools round outwards)


def coco_segmentation(value: Any, where: str, image: LabelledImage) -> list[list[float]] | dict[str, Any] | None:
    """A COCO annotation's ``segmentation``, checked: polygons in pixels, run-length encoding, or ``None`` when
    the annotation has none (missing or ``[]``, as tools write for box-only objects).

    Example:
        >>> coco_segmentation([[0, 0, 10, 0, 10, 10]], "a.json: annotation 1", image)  # doctest: +SKIP
        [[0.0, 0.0, 10.0, 0.0, 10.0, 10.0]]
    """
    if value is None or value == []:
        return None
    if isinstance(value, dict):
        return _coco_rle(value, where, image)
    if not isinstance(value, list) or not all(isinstance(polygon, list) for polygon in value):
        raise SourceError(
            f"{where} has segmentation {_short(value)}; expected a list of polygons [[x1, y1, x2, y2, …]] or "
            f"run-length encoding {{size, counts}}: fix the file"
        )
    return [_coco_polygon(polygon, f"{where}, polygon {number}", image) for number, polygon in enumerate(value, 1)]


def _coco_polygon(polygon: list[Any], where: str, image: LabelledImage) -> list[float]:
    numbers = [v for v in polygon if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    _check_points(polygon, numbers, where)
    xs, ys = numbers[0::2], numbers[1::2]
    limit = OUTSIDE_TOLERANCE
    if min(xs) < -limit or min(ys) < -limit or max(xs) > image.width + limit or max(ys) > image.height + limit:
        raise SourceError(
            f"{where} reaches outside the {image.width}x{image.height} image (x {min(xs):g} to {max(xs):g}, "
            f"y {min(ys):g} to {max(ys):g}): polygons are in pixels of their image"
        )
    return [float(v) for v in numbers]


def _coco_rle(value: dict[str, Any], where: str, image: LabelledImage) -> dict[str, Any]:
    size, counts = value.get("size"), value.get("counts")
    if size != [image.height, image.width] or not isinstance(counts, (str, list)):
        raise SourceError(
            f"{where} has run-length encoding of size {size!r}; expected size [{image.height}, {image.width}] "
            f"(the image's height and width) and counts: fix the file"
        )
    return {"size": size, "counts": counts}


def yolo_polygon(values: Sequence[float], where: str, image: LabelledImage) -> list[float]:
    """A YOLO-seg line's ``x1 y1 x2 y2 …`` (normalised to [0, 1]), checked, as one polygon in pixels.

    Example:
        >>> yolo_polygon([0, 0, 1, 0, 1, 1], "labels/a.txt:3", image)  # doctest: +SKIP
        [0.0, 0.0, 320.0, 0.0, 320.0, 180.0]
    """
    numbers = [v for v in values if math.isfinite(v)]
    _check_points(values, numbers, where)
    outside = [v for v in numbers if not -1e-6 <= v <= 1 + 1e-6]
    if outside:
        raise SourceError(
            f"{where}: polygon coordinate {outside[0]:g} is not normalised to [0, 1]: divide x by the image width "
            f"and y by its height"
        )
    scale = (image.width, image.height)
    return [v * scale[index % 2] for index, v in enumerate(numbers)]


def _check_points(values: Sequence[Any], numbers: Sequence[float], where: str) -> None:
    if len(numbers) != len(values):
        raise SourceError(f"{where}: a polygon holds finite numbers only (x y pairs), got {_short(list(values))}")
    if len(values) % 2:
        raise SourceError(f"{where}: a polygon needs x y pairs, got {len(values)} coordinates (an odd number)")
    if len(values) < 6:
        raise SourceError(f"{where}: a polygon needs at least 3 points, got {len(values) // 2}")


def missing_segment(where: str) -> SourceError:
    """The error for an object with a box but no outline, when masks are to be scored."""
    return SourceError(
        f"{where} has a box but no polygon, and --task segment scores masks: label every object with a polygon "
        f"(YOLO-seg 'class x1 y1 x2 y2 …', COCO 'segmentation'), or use --task detect"
    )


def require_outlines(dataset: LabelledDataset) -> None:
    """Refuse data in which a labelled object has no outline (read with ``task="detect"``), naming the first."""
    for number, annotation in enumerate(dataset.annotations, start=1):
        if "segmentation" not in annotation:
            raise missing_segment(f"{dataset.name}: object {number}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
