"""Masks as text: boundary rings for JSONL (exact, readable) and COCO run-length encoding for COCO results.

A mask's **rings** are the boundaries of its parts, of the holes in them, of the parts inside those holes, and so
on, each a flat ``[x1, y1, x2, y2, …]`` list of the pixel centres on the boundary (OpenCV's ``findContours``, the
corners of straight runs only). Filling each ring (``cv2.fillPoly``, boundary included) and combining the fills
with exclusive or gives the mask back exactly; :func:`rings_to_mask` does that. Read as COCO polygons (their
union), the rings give the mask with its holes filled.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pycocotools import mask as coco_mask

__all__ = ["mask_to_rings", "masks_to_rle", "rings_to_mask", "rle_to_mask"]


def mask_to_rings(mask: np.ndarray) -> list[list[int]]:
    """The boundary rings of a boolean ``(H, W)`` mask, outermost first; ``[]`` for an empty mask.

    Example:
        >>> mask = np.zeros((6, 6), bool); mask[1:5, 1:5] = True; mask[2:4, 2:4] = False
        >>> mask_to_rings(mask)
        [[1, 1, 1, 4, 4, 4, 4, 1], [2, 2, 2, 3, 3, 3, 3, 2]]
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    top, left = int(rows[0]), int(cols[0])
    rest = np.ascontiguousarray(mask[top : rows[-1] + 1, left : cols[-1] + 1], dtype=np.uint8)
    offset = np.array([left, top], np.int32)
    rings: list[list[int]] = []
    for _ in range(min(rest.shape) + 1):  # each level lies strictly inside the one before
        if not rest.any():
            break
        contours, _ = cv2.findContours(rest, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        filled = np.zeros_like(rest)
        cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
        rings += [(contour.reshape(-1, 2) + offset).ravel().tolist() for contour in contours]
        rest = filled ^ rest  # the holes of this level: the next level's parts
    return rings


def rings_to_mask(rings: list[list[float]], width: int, height: int) -> np.ndarray:
    """The boolean ``(height, width)`` mask that :func:`mask_to_rings` gave ``rings`` for.

    Example:
        >>> rings_to_mask([[1, 1, 1, 4, 4, 4, 4, 1], [2, 2, 2, 3, 3, 3, 3, 2]], 6, 6).sum()
        np.int64(12)
    """
    mask = np.zeros((height, width), np.uint8)
    fill = np.empty_like(mask)
    for ring in rings:
        fill[:] = 0
        cv2.fillPoly(fill, [np.asarray(ring, np.int32).reshape(-1, 2)], 1)
        mask ^= fill
    return mask.astype(bool)


def masks_to_rle(masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO run-length encodings of boolean ``(N, H, W)`` masks, ``counts`` as text (ready for JSON).

    Example:
        >>> masks_to_rle(np.ones((1, 2, 3), bool))
        [{'size': [2, 3], 'counts': '06'}]
    """
    encoded = [coco_mask.encode(np.asfortranarray(mask.view(np.uint8))) for mask in np.asarray(masks, bool)]
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded]


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """The boolean ``(H, W)`` mask of a COCO run-length encoding (``counts`` as text or bytes).

    Example:
        >>> rle_to_mask({"size": [2, 3], "counts": "06"}).all()
        np.True_
    """
    counts = rle["counts"]
    text = counts.encode() if isinstance(counts, str) else counts
    return coco_mask.decode({"size": rle["size"], "counts": text}).astype(bool)
