"""How well two configurations agree on the same frames: boxes matched one to one, and their score differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import supervision as sv

from ovdet.bench import BenchmarkError
from ovdet.evaluation.precisions import match_boxes


def agreement(
    reference: Sequence[sv.Detections], candidate: Sequence[sv.Detections], iou_threshold: float = 0.9
) -> dict[str, Any]:
    """How well two configurations agree on the same frames.

    ``matched_share`` is matched boxes over, per frame, the larger of the two box counts (1.0 when neither has a
    box); score differences are over matched boxes.

    Example:
        >>> boxes = sv.Detections(np.array([[0, 0, 10, 10]], float), confidence=np.array([0.5]), class_id=np.array([1]))
        >>> agreement([boxes], [boxes])["matched_share"]
        1.0
    """
    if len(reference) != len(candidate):
        raise BenchmarkError(f"agreement needs the same frames, got {len(reference)} and {len(candidate)}")
    matched, possible, differences = 0, 0, []
    for ours, theirs in zip(reference, candidate):
        pairs = match_boxes(ours, theirs, iou_threshold)
        matched += len(pairs)
        possible += max(len(ours), len(theirs))
        differences += [abs(float(ours.confidence[i]) - float(theirs.confidence[j])) for i, j in pairs]
    return {
        "frames": len(reference),
        "reference_boxes": sum(len(d) for d in reference),
        "candidate_boxes": sum(len(d) for d in candidate),
        "matched": matched,
        "matched_share": matched / possible if possible else 1.0,
        "max_score_diff": max(differences) if differences else None,
        "mean_score_diff": float(np.mean(differences)) if differences else None,
    }


def agreement_report(
    detections: dict[str, dict[float, list[sv.Detections]]], pairs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """:func:`agreement` of each ``(candidate, reference)`` pair at each confidence both were collected at.

    Example:
        >>> boxes = sv.Detections(np.array([[0, 0, 9, 9]], float), confidence=np.array([0.5]), class_id=np.array([0]))
        >>> report = agreement_report({"a": {0.25: [boxes]}, "b": {0.25: [boxes]}}, [("a", "b")])
        >>> report[0]["matched_share"], report[0]["conf"]
        (1.0, 0.25)
    """
    report = []
    for candidate, reference in pairs:
        if candidate not in detections or reference not in detections:
            continue
        for conf in sorted(set(detections[candidate]) & set(detections[reference]), reverse=True):
            result = agreement(detections[reference][conf], detections[candidate][conf])
            report.append({"candidate": candidate, "reference": reference, "conf": conf, **result})
    return report
