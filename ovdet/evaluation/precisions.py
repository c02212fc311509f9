"""Precision chosen on the user's own labels: the chosen vocabulary run in each precision over the labelled images,
its mAP, its agreement with FP32 on the same images, its frames/s, and the fastest precision that stands in for FP32:
within a mAP drop, and reporting the same boxes. Labels on which FP32 itself scores about nothing judge nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv

from ..core.config import InferenceSettings
from ..core.precision import PRECISIONS
from ..io.images import load_image
from ..prompts.vocabulary import Vocabulary
from .labelled import LabelledDataset
from .metrics import RunMetrics, coco_metrics, coco_results

if TYPE_CHECKING:
    from ..detector import OpenVocabDetector

__all__ = [
    "AGREEMENT_IOU",
    "DEFAULT_MAX_MAP_DROP",
    "MIN_AGREEMENT",
    "MIN_FP32_MAP",
    "PrecisionComparison",
    "PrecisionRun",
    "compare_precisions",
    "match_boxes",
    "recommend",
]

AGREEMENT_IOU = 0.9
DEFAULT_MAX_MAP_DROP = 1.0  # mAP50-95 points (1 point = 0.01)
MIN_AGREEMENT = 0.9  # share of FP32's boxes a precision keeps, and of its boxes FP32 has, to stand in for FP32
MIN_FP32_MAP = 0.05  # FP32's mAP50-95 under which the labels cannot tell a precision that works from one that fails


@dataclass(frozen=True)
class PrecisionRun:
    """The chosen vocabulary in one precision, over the labelled images.

    Attributes:
        precision: The precision asked for.
        computed: What the runtime computed in (``bf16`` or ``fp16`` for reduced precision, by device).
        map50_95: mAP50-95 (COCOeval), ``nan`` when nothing is labelled.
        map50: mAP50.
        fp32_boxes_kept: Share of FP32's reported boxes this run also reports (same class, IoU ≥ 0.9); ``nan``
            when FP32 reports none.
        boxes_fp32_has: Share of this run's reported boxes FP32 also reports; ``nan`` when it reports none.
        fps: Images per second through preprocessing, the forward and postprocessing.
    """

    precision: str
    computed: str
    map50_95: float
    map50: float
    fp32_boxes_kept: float
    boxes_fp32_has: float
    fps: float


@dataclass(frozen=True)
class PrecisionComparison:
    """Every precision's run, and the one recommended.

    Attributes:
        runs: FP32 first, then the others in the order asked.
        recommended: The precision :func:`recommend` chose.
        verdict: Why, in words (see :func:`recommend`).
        max_map_drop: The mAP50-95 drop allowed, in points.
        calibration: The INT8 calibration source, as given; ``None`` without INT8.
        calibration_digest: SHA-256 of its content (see :func:`~ovdet.export.quantize.calibration_digest`).
    """

    runs: tuple[PrecisionRun, ...]
    recommended: str
    verdict: str
    max_map_drop: float
    calibration: str | None = None
    calibration_digest: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON form (``metrics.json``'s ``precisions``)."""
        return {
            "recommended": self.recommended,
            "verdict": self.verdict,
            "max_map_drop": self.max_map_drop,
            "min_agreement": MIN_AGREEMENT,
            "min_fp32_map": MIN_FP32_MAP,
            "agreement_iou": AGREEMENT_IOU,
            "calibration": self.calibration,
            "calibration_digest": self.calibration_digest,
            "runs": [vars(run) for run in self.runs],
        }

    def markdown(self) -> str:
        """The report's section: one row per precision, then the recommendation."""
        header = ["precision", "computed in", "mAP50-95", "mAP50", "drop (points)", "FP32 boxes kept",
                  "boxes FP32 has", "images/s"]  # fmt: skip
        fp32 = self.runs[0].map50_95
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for run in self.runs:
            cells = [run.precision + (" ← recommended" if run.precision == self.recommended else ""), run.computed,
                     _num(run.map50_95), _num(run.map50), _num(100 * (fp32 - run.map50_95), 1),
                     _share(run.fp32_boxes_kept), _share(run.boxes_fp32_has), _num(run.fps, 1)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        return (
            "## Numeric precision: what is faster, and what it costs\n\nThe chosen vocabulary in each precision on the "
            "same images. Boxes are those reported at "
            f"the chosen thresholds, matched to FP32's by class at IoU ≥ {AGREEMENT_IOU}. Recommended: the fastest "
            f"precision whose mAP50-95 is at most {self.max_map_drop:g} point(s) under FP32's and that agrees with "
            f"FP32 on at least {MIN_AGREEMENT:.0%} of the boxes both ways, judged only where FP32's mAP50-95 is at "
            f"least {MIN_FP32_MAP:g} — **{self.recommended}**: {self.verdict}.\n\n" + "\n".join(lines)
        )


def recommend(runs: Sequence[PrecisionRun], max_map_drop: float = DEFAULT_MAX_MAP_DROP) -> tuple[str, str]:
    """The fastest precision that stands in for FP32, and why, in words.

    A precision stands in for FP32 when its mAP50-95 is at most ``max_map_drop`` points under FP32's and it agrees
    with FP32 both ways: it keeps at least :data:`MIN_AGREEMENT` of FP32's boxes, and at least that share of its
    boxes are FP32's (a share with no box to count holds). Where FP32's own mAP50-95 is under
    :data:`MIN_FP32_MAP`, or not above the drop allowed, the labels cannot judge (every precision would pass):
    FP32 is kept, and the verdict says so.

    Args:
        runs: FP32's run first, then the others.
        max_map_drop: Allowed drop in mAP50-95 points (1 point = 0.01).

    Example:
        >>> runs = [PrecisionRun("fp32", "fp32", 0.50, 0.7, 1.0, 1.0, 9.0),
        ...         PrecisionRun("bf16", "bf16", 0.497, 0.7, 0.97, 0.96, 17.7),
        ...         PrecisionRun("int8", "int8", 0.496, 0.7, 0.40, 0.38, 30.0)]
        >>> recommend(runs)[0]
        'bf16'
    """
    fp32 = runs[0]
    if not (fp32.map50_95 >= MIN_FP32_MAP and 100 * fp32.map50_95 > max_map_drop):
        return "fp32", _cannot_judge(fp32.map50_95, max_map_drop)
    failed = {run.precision: _shortfalls(run, fp32, max_map_drop) for run in runs[1:]}
    qualified = [fp32, *(run for run in runs[1:] if not failed[run.precision])]
    # fastest first; among equally fast, the more precise
    best = max(qualified, key=lambda run: (run.fps, -PRECISIONS.index(run.precision)))
    if best is not fp32:
        return best.precision, (
            f"the fastest within {max_map_drop:g} mAP50-95 point(s) of fp32 that agrees with it on at least "
            f"{MIN_AGREEMENT:.0%} of the boxes both ways"
        )
    reasons = [f"{name} {', '.join(why)}" for name, why in failed.items() if why]
    reasons += [f"{run.precision} is not faster" for run in qualified[1:]]
    if not reasons:
        return "fp32", "nothing else compared"
    return "fp32", "no other precision stands in for it: " + "; ".join(reasons)


def _shortfalls(run: PrecisionRun, fp32: PrecisionRun, max_map_drop: float) -> list[str]:
    """Why ``run`` does not stand in for FP32; empty when it does."""
    reasons = []
    drop = 100 * (fp32.map50_95 - run.map50_95)
    if not drop <= max_map_drop + 1e-9:
        reasons.append(f"loses {_num(drop, 1)} mAP50-95 points ({max_map_drop:g} allowed)")
    if run.fp32_boxes_kept < MIN_AGREEMENT:
        reasons.append(f"keeps {run.fp32_boxes_kept:.0%} of fp32's boxes ({MIN_AGREEMENT:.0%} needed)")
    if run.boxes_fp32_has < MIN_AGREEMENT:
        reasons.append(f"reports boxes fp32 does not ({run.boxes_fp32_has:.0%} are fp32's, {MIN_AGREEMENT:.0%} needed)")
    return reasons


def _cannot_judge(fp32_map: float, max_map_drop: float) -> str:
    if not math.isfinite(fp32_map):
        return "cannot judge: nothing labelled to score a precision on; keeping fp32"
    if fp32_map < MIN_FP32_MAP:
        return (
            f"cannot judge: the mAP50-95 of fp32 is {fp32_map:.3f} on these labels (under {MIN_FP32_MAP:g}), so they "
            f"cannot tell a precision that works from one that does not; keeping fp32"
        )
    return (
        f"cannot judge: the mAP50-95 of fp32 is {fp32_map:.3f} ({100 * fp32_map:.1f} points), no more than the "
        f"{max_map_drop:g} point(s) a precision may lose, so any precision would pass; keeping fp32 (allow a "
        f"smaller drop)"
    )


def compare_precisions(
    detector_for: Callable[[str], OpenVocabDetector],
    dataset: LabelledDataset,
    categories: Mapping[int, str],
    vocabulary: Vocabulary,
    precisions: Sequence[str],
    settings: InferenceSettings,
    *,
    default_conf: float,
    max_map_drop: float = DEFAULT_MAX_MAP_DROP,
) -> PrecisionComparison:
    """Run ``vocabulary`` in FP32 and each of ``precisions`` over the dataset, and recommend one.

    Args:
        detector_for: A detector in the given precision (called once per precision, FP32 first).
        dataset: The labelled images (already checked by :func:`~ovdet.evaluation.evaluate`).
        categories: Category id → class name, as :func:`~ovdet.evaluation.match_categories` pairs them.
        vocabulary: The vocabulary to run, with its thresholds (the boxes compared are those it reports).
        precisions: Precisions to compare with FP32.
        settings: Inference settings (``conf`` is the low AP threshold).
        default_conf: Threshold of classes without their own, for the boxes compared.
        max_map_drop: Allowed mAP50-95 drop, in points.
    """
    images = [load_image(image.path) for image in dataset.images]
    thresholds = {c.name: default_conf if c.conf is None else c.conf for c in vocabulary.classes}
    measured: dict[str, tuple[RunMetrics, list[sv.Detections], float, str]] = {}
    for precision in dict.fromkeys(("fp32", *precisions)):
        detector = detector_for(precision)
        detector.set_classes(vocabulary)
        measured[precision] = _measure(detector, dataset, categories, images, settings, thresholds)
    reference = measured["fp32"][1]
    runs = tuple(
        PrecisionRun(precision, computed, metrics.map50_95, metrics.map50, *_agreement(reference, reported), fps)
        for precision, (metrics, reported, fps, computed) in measured.items()
    )
    chosen, verdict = recommend(runs, max_map_drop)
    return PrecisionComparison(runs, chosen, verdict, max_map_drop)


def _measure(
    detector: OpenVocabDetector,
    dataset: LabelledDataset,
    categories: Mapping[int, str],
    images: Sequence[np.ndarray],
    settings: InferenceSettings,
    thresholds: Mapping[str, float],
) -> tuple[RunMetrics, list[sv.Detections], float, str]:
    """mAP over the dataset, the boxes reported at the thresholds, images/s, and the precision computed in."""
    settings = settings.replace(half=detector.settings.half)
    detector.detect_arrays(images[:1], settings)  # warm-up: the first call allocates
    detections: list[sv.Detections] = []
    started = time.perf_counter()
    for start in range(0, len(images), settings.batch):
        detections += detector.detect_arrays(images[start : start + settings.batch], settings)
    fps = len(images) / (time.perf_counter() - started)
    category_of = {name: category_id for category_id, name in categories.items()}
    results = [
        row for image, found in zip(dataset.images, detections) for row in coco_results(image.id, found, category_of)
    ]
    reported = [_at_thresholds(found, thresholds) for found in detections]
    return coco_metrics(dataset, results, categories), reported, fps, str(detector.backend.precision)


def _at_thresholds(detections: sv.Detections, thresholds: Mapping[str, float]) -> sv.Detections:
    names = detections.data.get("class_name", np.array([], dtype=str))
    limits = np.array([thresholds.get(str(name), 1.0) for name in names], dtype=np.float32)
    return detections[detections.confidence >= limits] if len(detections) else detections


def _agreement(fp32: Sequence[sv.Detections], other: Sequence[sv.Detections]) -> tuple[float, float]:
    """FP32's boxes the other run keeps, and the other run's boxes FP32 has."""
    return _kept(fp32, other), _kept(other, fp32)


def _kept(reference: Sequence[sv.Detections], candidate: Sequence[sv.Detections]) -> float:
    """Share of the reference's boxes the candidate also has (one to one); ``nan`` when the reference has none."""
    total = sum(len(found) for found in reference)
    matched = sum(len(match_boxes(ours, theirs)) for ours, theirs in zip(reference, candidate))
    return matched / total if total else math.nan


def match_boxes(a: sv.Detections, b: sv.Detections, iou_threshold: float = AGREEMENT_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matches ``(index in a, index in b)`` of same-class boxes, highest IoU first.

    Example:
        >>> box = sv.Detections(np.array([[0, 0, 10, 10]], float), confidence=np.array([0.5]), class_id=np.array([0]))
        >>> match_boxes(box, box)
        [(0, 0)]
    """
    if len(a) == 0 or len(b) == 0:
        return []
    iou = sv.box_iou_batch(a.xyxy, b.xyxy)
    iou[a.class_id[:, None] != b.class_id[None, :]] = 0.0
    rows, cols = np.nonzero(iou >= iou_threshold)
    pairs, used_a, used_b = [], set(), set()
    for index in np.argsort(-iou[rows, cols], kind="stable"):
        i, j = int(rows[index]), int(cols[index])
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def _num(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def _share(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.0%}"
