"""Detection metrics from pycocotools' ``COCOeval``, and operating points (precision, recall, F1) at a threshold.

AP comes from ``COCOeval`` alone. Precision, recall and the F1-best threshold are counted from the detections
``COCOeval`` matched to objects at IoU 0.5, so every number in a report rests on the same matching.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import supervision as sv
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..io.masks import masks_to_rle
from .labelled import LabelledDataset

__all__ = [
    "ClassOutcome",
    "OperatingPoint",
    "RunMetrics",
    "ScoredBox",
    "best_f1_point",
    "coco_metrics",
    "coco_results",
    "operating_point",
    "threshold_between",
]

IOU_MATCH_INDEX = 0  # COCOeval's first IoU threshold, 0.5
THRESHOLD_DECIMALS = range(1, 8)


@dataclass(frozen=True)
class ScoredBox:
    """A detection, or a labelled object, after matching at IoU 0.5.

    Attributes:
        image_id: The COCO id of its image.
        xyxy: The box in pixels.
        score: A detection's confidence; for an object, the confidence of the detection that found it (0 if none).
        correct: A detection matches an object; an object was found by a detection.
    """

    image_id: int
    xyxy: tuple[float, float, float, float]
    score: float
    correct: bool


@dataclass(frozen=True)
class OperatingPoint:
    """What a class's detector does at one confidence threshold (boxes with a score above it are kept).

    Attributes:
        threshold: The confidence threshold.
        precision: Kept detections that are correct (``nan`` when none is kept).
        recall: Labelled objects found.
        f1: Harmonic mean of precision and recall (0 when nothing correct is kept).
        detections: Detections kept.
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    detections: int


@dataclass(frozen=True)
class ClassOutcome:
    """One class's AP and its matched detections and objects.

    Attributes:
        name: The class name (as in the vocabulary).
        category_id: The data's category id.
        ap50_95: AP averaged over IoU 0.5 to 0.95 (``nan`` without labelled objects).
        ap50: AP at IoU 0.5.
        detections: Detections that count (COCO's 100 best per image), highest score first.
        objects: Labelled objects that count (crowd regions excluded).
    """

    name: str
    category_id: int
    ap50_95: float
    ap50: float
    detections: tuple[ScoredBox, ...]
    objects: tuple[ScoredBox, ...]

    def at(self, threshold: float) -> OperatingPoint:
        """Precision, recall and F1 when only detections scoring above ``threshold`` are kept."""
        scores, correct = self.score_arrays()
        return operating_point(scores, correct, len(self.objects), threshold)

    def score_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Detection scores (float32, highest first) and whether each detection is correct."""
        scores = np.array([d.score for d in self.detections], dtype=np.float32)
        return scores, np.array([d.correct for d in self.detections], dtype=bool)


@dataclass(frozen=True)
class RunMetrics:
    """The metrics of one detection run over a dataset.

    Attributes:
        map50_95: ``COCOeval.stats[0]``, mAP over IoU 0.5 to 0.95.
        map50: ``COCOeval.stats[1]``, mAP at IoU 0.5.
        classes: Per evaluated class name, its outcome.
        results: The detections as COCO results (``image_id``, ``category_id``, ``bbox``, ``score``; and
            ``segmentation`` when masks are scored).
        mask_map50_95: For masks (``COCOeval`` with ``iouType="segm"``), mAP over IoU 0.5 to 0.95; ``None`` when
            only boxes are scored.
        mask_map50: For masks, mAP at IoU 0.5; ``None`` when only boxes are scored.
    """

    map50_95: float
    map50: float
    classes: dict[str, ClassOutcome]
    results: tuple[dict[str, Any], ...]
    mask_map50_95: float | None = None
    mask_map50: float | None = None


def coco_metrics(
    dataset: LabelledDataset, results: Sequence[dict[str, Any]], class_names: Mapping[int, str], masks: bool = False
) -> RunMetrics:
    """Evaluate COCO results against the dataset with ``COCOeval`` (bbox, default parameters; and segm).

    Args:
        dataset: The ground truth.
        results: Detections as COCO results, with the dataset's category ids.
        class_names: Category id → class name, for the categories to report per class.
        masks: Also score the results' ``segmentation`` against the objects' outlines (``iouType="segm"``).

    Example:
        >>> metrics = coco_metrics(dataset, results, {1: "syringe driver"})  # doctest: +SKIP
        >>> metrics.map50, metrics.classes["syringe driver"].ap50  # doctest: +SKIP
        (0.61, 0.61)
    """
    evaluator = _evaluated(dataset, results, "bbox")
    classes = {name: _class_outcome(evaluator, category_id, name) for category_id, name in class_names.items()}
    metrics = RunMetrics(float(evaluator.stats[0]), float(evaluator.stats[1]), classes, tuple(results))
    if not masks:
        return metrics
    segm = _evaluated(dataset, results, "segm")
    return dataclasses.replace(metrics, mask_map50_95=float(segm.stats[0]), mask_map50=float(segm.stats[1]))


def _evaluated(dataset: LabelledDataset, results: Sequence[dict[str, Any]], iou_type: str) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        truth = _index(dataset.coco())
        found = truth.loadRes([dict(r) for r in results]) if results else _index({**truth.dataset, "annotations": []})
        evaluator = COCOeval(truth, found, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _index(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _class_outcome(evaluator: COCOeval, category_id: int, name: str) -> ClassOutcome:
    params = evaluator.params
    precision = evaluator.eval["precision"][:, :, params.catIds.index(category_id), 0, -1]  # IoU × recall, all areas
    detections: list[ScoredBox] = []
    objects: list[ScoredBox] = []
    all_areas = params.areaRng[0]
    for record in evaluator.evalImgs:
        if record is None or record["category_id"] != category_id or record["aRng"] != all_areas:
            continue
        detections += _matched_detections(evaluator, record)
        objects += _matched_objects(evaluator, record)
    detections.sort(key=lambda d: -d.score)
    return ClassOutcome(
        name,
        category_id,
        _mean_defined(precision),
        _mean_defined(precision[IOU_MATCH_INDEX]),
        tuple(detections),
        tuple(objects),
    )


def _matched_detections(evaluator: COCOeval, record: dict[str, Any]) -> list[ScoredBox]:
    matches, ignored = record["dtMatches"][IOU_MATCH_INDEX], record["dtIgnore"][IOU_MATCH_INDEX]
    return [
        ScoredBox(record["image_id"], _xyxy(evaluator.cocoDt.anns[dt_id]["bbox"]), float(score), bool(match))
        for dt_id, score, match, ignore in zip(record["dtIds"], record["dtScores"], matches, ignored)
        if not ignore
    ]


def _matched_objects(evaluator: COCOeval, record: dict[str, Any]) -> list[ScoredBox]:
    matches = record["gtMatches"][IOU_MATCH_INDEX]
    objects = []
    for gt_id, match, ignore in zip(record["gtIds"], matches, record["gtIgnore"]):
        if ignore:
            continue
        score = float(evaluator.cocoDt.anns[int(match)]["score"]) if match else 0.0
        objects.append(ScoredBox(record["image_id"], _xyxy(evaluator.cocoGt.anns[gt_id]["bbox"]), score, bool(match)))
    return objects


def _xyxy(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, width, height = (float(v) for v in bbox)
    return x, y, x + width, y + height


def _mean_defined(precision: np.ndarray) -> float:
    """COCOeval's own averaging: the mean of the entries that are not -1 (undefined), ``nan`` if none is."""
    defined = precision[precision > -1]
    return float(defined.mean()) if defined.size else math.nan


def operating_point(scores: np.ndarray, correct: np.ndarray, objects: int, threshold: float) -> OperatingPoint:
    """Precision, recall and F1 of the detections scoring above ``threshold`` (as the detector keeps them).

    Example:
        >>> point = operating_point(np.array([0.9, 0.6, 0.3]), np.array([True, False, True]), 4, 0.5)
        >>> point.precision, point.recall, point.detections
        (0.5, 0.25, 2)
    """
    kept = np.asarray(scores, dtype=np.float32) > np.float32(threshold)
    true_positives = int(np.count_nonzero(np.asarray(correct)[kept]))
    return _point(threshold, int(np.count_nonzero(kept)), true_positives, objects)


def _point(threshold: float, detections: int, true_positives: int, objects: int) -> OperatingPoint:
    precision = true_positives / detections if detections else math.nan
    recall = true_positives / objects if objects else math.nan
    f1 = 2 * true_positives / (detections + objects) if true_positives else 0.0
    return OperatingPoint(float(threshold), precision, recall, f1, detections)


def best_f1_point(scores: np.ndarray, correct: np.ndarray, objects: int, floor: float) -> OperatingPoint | None:
    """The threshold with the highest F1, or ``None`` when no detection is correct.

    Cuts fall between distinct scores; of equally good cuts the highest wins (fewer alerts for the same F1).
    The threshold is the shortest decimal that keeps exactly the detections above the cut.

    Args:
        scores: Detection scores, all above ``floor``.
        correct: Whether each detection matches an object.
        objects: Labelled objects of the class.
        floor: The confidence the detections were run at; no threshold goes below it.

    Example:
        >>> point = best_f1_point(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 1, 0, 1, 0], bool), 4, 0.001)
        >>> point.threshold, point.detections, round(point.f1, 3)
        (0.5, 4, 0.75)
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    scores = np.asarray(scores, dtype=np.float32)[order]
    correct = np.asarray(correct, dtype=bool)[order]
    if not correct.any():
        return None
    cut_ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))  # last detection of each distinct score
    kept, true_positives = cut_ends + 1, np.cumsum(correct)[cut_ends]
    best = int(np.argmax(2 * true_positives / (kept + objects)))
    below = float(scores[cut_ends[best + 1]]) if best + 1 < len(cut_ends) else floor
    threshold = threshold_between(below, float(scores[cut_ends[best]]))
    return _point(threshold, int(kept[best]), int(true_positives[best]), objects)


def threshold_between(low: float, high: float) -> float:
    """The shortest decimal ``t`` with ``low <= t < high`` in float32, so a detector keeping scores ``> t`` keeps
    ``high`` and drops ``low``.

    Example:
        >>> threshold_between(0.41234, 0.4871)
        0.42
    """
    for decimals in THRESHOLD_DECIMALS:
        for candidate in (round(low, decimals), math.ceil(low * 10**decimals) / 10**decimals):
            if np.float32(low) <= np.float32(candidate) < np.float32(high):
                return candidate
    return float(low)


def coco_results(image_id: int, detections: sv.Detections, category_of: Mapping[str, int]) -> list[dict[str, Any]]:
    """One image's detections as COCO results, with the category id of each class paired with one (others left out)
    and, where the detections carry masks, their RLE ``segmentation``."""
    segmentations = masks_to_rle(detections.mask) if detections.mask is not None else [None] * len(detections)
    results = []
    for (x1, y1, x2, y2), score, name, segmentation in zip(
        detections.xyxy, detections.confidence, detections.data["class_name"], segmentations
    ):
        if str(name) in category_of:
            bbox = [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]
            result = {"image_id": image_id, "category_id": category_of[str(name)], "bbox": bbox, "score": float(score)}
            if segmentation is not None:
                result["segmentation"] = segmentation
            results.append(result)
    return results
