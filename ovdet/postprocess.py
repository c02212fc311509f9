"""Raw head output → ``supervision.Detections``: confidence filter, NMS and rescaling, as Ultralytics does.

Shared by every backend: one numpy implementation means exported runtimes agree with PyTorch by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

from .preprocess import Letterbox

__all__ = ["empty_detections", "postprocess"]

MAX_NMS = 30000  # most candidates sent to NMS, as in Ultralytics
CLASS_OFFSET = 7680  # pixels between classes for class-aware NMS in one call, as in Ultralytics


def empty_detections() -> sv.Detections:
    """Detections with no boxes but the same fields as a non-empty result."""
    detections = sv.Detections.empty()
    detections.data["class_name"] = np.array([], dtype=str)
    return detections


def postprocess(
    raw: np.ndarray,
    placements: Sequence[Letterbox],
    class_names: Sequence[str],
    *,
    conf: float,
    iou: float,
    max_det: int,
    agnostic: bool,
) -> list[sv.Detections]:
    """Decode a ``(B, 4 + K, N)`` head output (xywh boxes, per-class scores) into one result per image.

    Example:
        >>> raw = np.zeros((1, 5, 1), np.float32); raw[0, :, 0] = [50, 50, 20, 20, 0.9]
        >>> placement = Letterbox(1.0, 1.0, 0, 0, 100, 100)
        >>> postprocess(raw, [placement], ["cat"], conf=0.25, iou=0.7, max_det=300, agnostic=False).xyxy
        [array([[40., 40., 60., 60.]], dtype=float32)]
    """
    names = np.asarray(class_names, dtype=str)
    return [
        _one_image(prediction, placement, names, conf, iou, max_det, agnostic)
        for prediction, placement in zip(raw, placements)
    ]


def _one_image(
    prediction: np.ndarray,
    placement: Letterbox,
    names: np.ndarray,
    conf: float,
    iou: float,
    max_det: int,
    agnostic: bool,
) -> sv.Detections:
    scores = prediction[4 : 4 + len(names)]
    class_id = scores.argmax(axis=0)
    confidence = np.take_along_axis(scores, class_id[None], axis=0)[0]
    keep = np.flatnonzero(confidence > conf)
    if keep.size == 0:
        return empty_detections()
    if keep.size > MAX_NMS:
        keep = keep[np.argsort(-confidence[keep], kind="stable")[:MAX_NMS]]
    class_id, confidence = class_id[keep], confidence[keep]
    xywh = prediction[:4, keep].T
    offset = 0 if agnostic else class_id[:, None] * float(CLASS_OFFSET)
    nms_boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2 + offset, xywh[:, 2:]], axis=1)
    kept = np.asarray(cv2.dnn.NMSBoxes(nms_boxes, confidence, 0.0, iou), dtype=np.int64).reshape(-1)[:max_det]
    xyxy = np.concatenate([xywh[kept, :2] - xywh[kept, 2:] / 2, xywh[kept, :2] + xywh[kept, 2:] / 2], axis=1)
    return sv.Detections(
        xyxy=placement.to_original(xyxy).astype(np.float32),
        confidence=confidence[kept].astype(np.float32),
        class_id=class_id[kept].astype(int),
        data={"class_name": names[class_id[kept]]},
    )
