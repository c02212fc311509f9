"""A plain verdict per vocabulary class, for people who decide whether to rely on a prompt rather than read curves.

The rule: a class is **reliable** at its chosen threshold when the data holds at least :data:`MIN_OBJECTS` labelled
examples of it, the detector finds at least :data:`MIN_RECALL` of them, and at least :data:`MIN_PRECISION` of its
boxes are right. Otherwise it is **not reliable**, with the reason. A class without labelled examples is **not
evaluated**. With a frame rate, false alarms are also given per hour of video, as if every frame were checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .metrics import OperatingPoint

__all__ = ["MIN_OBJECTS", "MIN_PRECISION", "MIN_RECALL", "NOT_EVALUATED", "Verdict", "class_verdicts"]

MIN_OBJECTS = 10
MIN_RECALL = 0.8
MIN_PRECISION = 0.8
NOT_EVALUATED = "not evaluated: no labelled examples"
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Verdict:
    """One class's verdict.

    Attributes:
        name: The class.
        reliable: Whether it meets the rule; ``None`` when it was not evaluated.
        text: The verdict in words, e.g. ``"reliable at 0.31: finds 18 of 20, 1 false alarm per 100 images"``.
        false_alarms_per_hour: At the threshold, with a frame rate given; else ``None``.
    """

    name: str
    reliable: bool | None
    text: str
    false_alarms_per_hour: float | None = None


def class_verdicts(
    names: tuple[str, ...], points: dict[str, OperatingPoint], objects: dict[str, int], images: int, fps: float | None
) -> list[Verdict]:
    """Every class of ``names``, in that order: evaluated ones from their operating point, the rest "not evaluated".

    Args:
        names: The vocabulary's classes.
        points: Per evaluated class, what the detector does at its chosen threshold.
        objects: Per evaluated class, its labelled examples.
        images: Images in the data.
        fps: Frame rate of the video the images stand for, for false alarms per hour; ``None`` if unknown.

    Example:
        >>> point = OperatingPoint(0.31, precision=18 / 19, recall=0.9, f1=0.92, detections=19)
        >>> class_verdicts(("pump",), {"pump": point}, {"pump": 20}, 100, None)[0].text
        'reliable at 0.31: finds 18 of 20, 1 false alarm per 100 images'
    """
    return [
        _verdict(name, points[name], objects[name], images, fps)
        if name in points
        else Verdict(name, None, NOT_EVALUATED)
        for name in names
    ]


def _verdict(name: str, point: OperatingPoint, objects: int, images: int, fps: float | None) -> Verdict:
    found = round(point.recall * objects) if objects else 0
    false_alarms = point.detections - found
    per_hour = false_alarms / images * fps * SECONDS_PER_HOUR if fps and images else None
    figures = f"finds {found} of {objects}, {_count(false_alarms / images * 100, 'false alarm')} per 100 images"
    if per_hour is not None:
        figures += f" ({_count(per_hour, 'false alarm')} per hour of video at {fps:g} frames/s)"
    reasons = _shortfalls(point, objects)
    if reasons:
        return Verdict(name, False, f"not reliable at {point.threshold:.2f}: {figures}; {', '.join(reasons)}", per_hour)
    return Verdict(name, True, f"reliable at {point.threshold:.2f}: {figures}", per_hour)


def _shortfalls(point: OperatingPoint, objects: int) -> list[str]:
    reasons = []
    if objects < MIN_OBJECTS:
        reasons.append(f"only {objects} labelled example(s), {MIN_OBJECTS} needed to judge")
    if not point.recall >= MIN_RECALL:
        reasons.append(f"misses more than {1 - MIN_RECALL:.0%}")
    if point.detections == 0:
        reasons.append("no box above the threshold")
    elif not point.precision >= MIN_PRECISION:
        reasons.append(f"more than {1 - MIN_PRECISION:.0%} of its boxes are wrong")
    return reasons


def _count(value: float, noun: str) -> str:
    shown = f"{value:.0f}" if value >= 10 or math.isclose(value, round(value)) else f"{value:.1f}"
    return f"{shown} {noun}{'' if shown == '1' else 's'}"
