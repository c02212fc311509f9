"""Raw head output → ``supervision.Detections``: confidence filter, NMS and rescaling, as Ultralytics does.

Shared by every backend: one numpy implementation means exported runtimes agree with PyTorch by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

from .masks import instance_masks
from .preprocess import Letterbox

__all__ = ["empty_detections", "postprocess"]

MAX_NMS = 30000  # most candidates sent to NMS, as in Ultralytics
CLASS_OFFSET = 7680  # pixels between classes for class-aware NMS in one call, as in Ultralytics


def empty_detections(mask_shape: tuple[int, int] | None = None) -> sv.Detections:
    """Detections with no boxes but the same fields as a non-empty result (an empty ``mask`` of images of
    ``mask_shape`` ``(H, W)`` too, when given)."""
    detections = sv.Detections.empty()
    detections.data["class_name"] = np.array([], dtype=str)
    if mask_shape is not None:
        detections.mask = np.zeros((0, *mask_shape), dtype=bool)
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
    end2end: bool = False,
    prototypes: np.ndarray | None = None,
) -> list[sv.Detections]:
    """Decode a ``(B, 4 + K [+ M], N)`` head output (boxes, per-class scores, mask coefficients) per image.

    Args:
        raw: Boxes (xywh; xyxy for an end-to-end head), ``K`` class scores and ``M`` mask coefficients per anchor.
        placements: How each image was letterboxed.
        class_names: The ``K`` class names.
        conf: Scores must exceed it.
        iou: NMS threshold (not used by an end-to-end head).
        max_det: Most detections per image.
        agnostic: One NMS over all classes instead of one per class (an end-to-end head gives each box one class
            either way).
        end2end: A one-to-one head (YOLOE-26): top-k anchors, each with its best class, as Ultralytics' YOLOE
            selects; no NMS.
        prototypes: ``(B, M, h, w)`` mask prototypes: the detections then carry ``mask`` (``(n, H, W)`` bool, in
            original-image pixels), and those whose mask is empty are dropped, as Ultralytics does.

    Example:
        >>> raw = np.zeros((1, 5, 1), np.float32); raw[0, :, 0] = [50, 50, 20, 20, 0.9]
        >>> placement = Letterbox(1.0, 1.0, 0, 0, 100, 100)
        >>> postprocess(raw, [placement], ["cat"], conf=0.25, iou=0.7, max_det=300, agnostic=False).xyxy
        [array([[40., 40., 60., 60.]], dtype=float32)]
    """
    names = np.asarray(class_names, dtype=str)
    select = _top_k if end2end else _nms
    results = []
    for index, (prediction, placement) in enumerate(zip(raw, placements)):
        scores = prediction[4 : 4 + len(names)]
        anchors, class_id, confidence = select(prediction[:4], scores, conf, iou, max_det, agnostic)
        if anchors.size == 0:
            results.append(empty_detections((placement.height, placement.width) if prototypes is not None else None))
            continue
        boxes = prediction[:4, anchors].T
        xyxy = (
            boxes if end2end else np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1)
        )
        detections = sv.Detections(
            xyxy=placement.to_original(xyxy).astype(np.float32),
            confidence=confidence.astype(np.float32),
            class_id=class_id.astype(int),
            data={"class_name": names[class_id]},
        )
        if prototypes is not None:
            detections = _with_masks(detections, prototypes[index], prediction[4 + len(names) :, anchors].T, placement)
        results.append(detections)
    return results


def _nms(boxes, scores, conf, iou, max_det, agnostic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors, classes and scores kept by per-class (or agnostic) NMS of the best class of each anchor."""
    class_id = scores.argmax(axis=0)
    confidence = np.take_along_axis(scores, class_id[None], axis=0)[0]
    keep = np.flatnonzero(confidence > conf)
    if keep.size > MAX_NMS:
        keep = keep[np.argsort(-confidence[keep], kind="stable")[:MAX_NMS]]
    if keep.size == 0:
        return keep, keep, keep
    class_id, confidence = class_id[keep], confidence[keep]
    xywh = boxes[:, keep].T
    offset = 0 if agnostic else class_id[:, None] * float(CLASS_OFFSET)
    nms_boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2 + offset, xywh[:, 2:]], axis=1)
    kept = np.asarray(cv2.dnn.NMSBoxes(nms_boxes, confidence, 0.0, iou), dtype=np.int64).reshape(-1)[:max_det]
    return keep[kept], class_id[kept], confidence[kept]


def _top_k(boxes, scores, conf, iou, max_det, agnostic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An end-to-end head's selection, as Ultralytics' YOLOE ``predict(nms=False)`` (``Detect.get_topk_index`` with
    ``agnostic_nms``, YOLOE's default, then the confidence filter and ``max_det``): anchors by their best class
    score, each with that one class. Ultralytics' top ``max(max_det, 300)`` candidates, filtered by confidence,
    keep the first ``max_det``: the same as filtering first. An anchor is one box, so it is reported once: ``iou``
    and ``agnostic`` change nothing. A decoy that is an anchor's best class takes its box, as after NMS."""
    class_id = scores.argmax(axis=0)
    confidence = np.take_along_axis(scores, class_id[None], axis=0)[0]
    passed = np.flatnonzero(confidence > conf)
    keep = passed[np.argsort(-confidence[passed], kind="stable")[:max_det]]
    return keep, class_id[keep], confidence[keep]


def _with_masks(
    detections: sv.Detections, prototypes: np.ndarray, coefficients: np.ndarray, placement: Letterbox
) -> sv.Detections:
    masks = instance_masks(prototypes, coefficients, detections.xyxy, (placement.height, placement.width))
    detections.mask = masks
    return detections[masks.any(axis=(1, 2))]
