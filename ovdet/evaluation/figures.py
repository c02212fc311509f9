"""Figures for evaluation reports: a precision-recall curve per class and a contact sheet of the worst mistakes.

Drawn with matplotlib's object API (no pyplot), so nothing global changes and no display is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..io.images import load_image
from .labelled import LabelledDataset
from .metrics import ClassOutcome, OperatingPoint, ScoredBox

__all__ = ["Curve", "Mistake", "mistakes_sheet", "precision_recall_figure", "worst_mistakes"]

FALSE_ALARM, MISSED = "false alarm", "missed"
BOX_COLORS = {FALSE_ALARM: (40, 40, 230), MISSED: (0, 160, 255)}  # BGR: red, orange
SHEET_COLUMNS = 4
CROP_MARGIN = 0.3  # context around the box, as a fraction of its size
MIN_CROP_CONTEXT = 24  # pixels of context even around a tiny box


@dataclass(frozen=True)
class Curve:
    """One precision-recall curve of a figure: a label, the class's outcome, and the point at its threshold."""

    label: str
    outcome: ClassOutcome
    point: OperatingPoint


@dataclass(frozen=True)
class Mistake:
    """A false alarm (a detection above its class's threshold matching no object) or a missed object."""

    kind: str
    class_name: str
    box: ScoredBox


def precision_recall_figure(title: str, curves: Sequence[Curve], path: str | os.PathLike[str]) -> Path:
    """Save the precision-recall curves (IoU 0.5) of one class, each with its threshold marked, as a PNG.

    Example:
        >>> precision_recall_figure("syringe", [Curve("as written", outcome, point)], "pr.png")  # doctest: +SKIP
    """
    figure = Figure(figsize=(5, 4), layout="constrained")
    axes = figure.add_subplot()
    for curve in curves:
        recall, precision = _curve(curve.outcome)
        line = axes.step(recall, precision, where="post", label=f"{curve.label} (AP50 {_short(curve.outcome.ap50)})")
        point = curve.point
        if point.detections:
            axes.plot(point.recall, point.precision, "o", color=line[0].get_color())
            axes.annotate(
                f"threshold {point.threshold:g}",
                (point.recall, point.precision),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
    axes.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall (objects found)", ylabel="precision (boxes right)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.savefig(path, dpi=100)
    return Path(path)


def worst_mistakes(
    outcomes: Mapping[str, ClassOutcome], thresholds: Mapping[str, float], limit: int = 8
) -> tuple[list[Mistake], list[Mistake]]:
    """The most confident false alarms and the objects missed with the least confidence (larger ones first).

    Example:
        >>> false_alarms, missed = worst_mistakes(metrics.classes, {"syringe": 0.3})  # doctest: +SKIP
    """
    false_alarms = [
        Mistake(FALSE_ALARM, name, box)
        for name, outcome in outcomes.items()
        for box in outcome.detections
        if not box.correct and box.score > thresholds[name]
    ]
    missed = [
        Mistake(MISSED, name, box)
        for name, outcome in outcomes.items()
        for box in outcome.objects
        if box.score <= thresholds[name]
    ]
    false_alarms.sort(key=lambda m: -m.box.score)
    missed.sort(key=lambda m: (m.box.score, -_area(m.box)))
    return false_alarms[:limit], missed[:limit]


def mistakes_sheet(
    dataset: LabelledDataset, false_alarms: Sequence[Mistake], missed: Sequence[Mistake], path: str | os.PathLike[str]
) -> Path:
    """Save a contact sheet: annotated crops of the false alarms, then of the missed objects, as a PNG.

    Example:
        >>> mistakes_sheet(dataset, *worst_mistakes(metrics.classes, thresholds), "mistakes.png")  # doctest: +SKIP
    """
    sections = [
        (f"False alarms, most confident first ({len(false_alarms)})", false_alarms),
        (f"Missed objects, least found first ({len(missed)})", missed),
    ]
    sections = [(title, mistakes) for title, mistakes in sections if mistakes]
    rows = [max(1, -(-len(mistakes) // SHEET_COLUMNS)) for _, mistakes in sections]
    figure = Figure(figsize=(3 * SHEET_COLUMNS, 3.2 * sum(rows) + 0.5), layout="constrained")
    paths = {image.id: image.path for image in dataset.images}
    for subfigure, (title, mistakes), height in zip(_subfigures(figure, rows), sections, rows):
        subfigure.suptitle(title, fontsize=13, x=0.01, ha="left")
        axes = subfigure.subplots(height, SHEET_COLUMNS, squeeze=False).ravel()
        for ax, mistake in zip(axes, mistakes):
            ax.imshow(_crop(paths[mistake.box.image_id], mistake))
            ax.set_title(_caption(mistake, paths[mistake.box.image_id]), fontsize=8)
        for ax in axes:
            ax.axis("off")
    figure.savefig(path, dpi=100)
    return Path(path)


def _subfigures(figure: Figure, rows: Sequence[int]) -> list[Figure]:
    subfigures = figure.subfigures(len(rows), 1, height_ratios=rows, squeeze=False)
    return list(subfigures.ravel())


def _curve(outcome: ClassOutcome) -> tuple[np.ndarray, np.ndarray]:
    scores, correct = outcome.score_arrays()
    if not len(scores) or not outcome.objects:
        return np.array([0.0]), np.array([0.0])
    found = np.cumsum(correct)
    return found / len(outcome.objects), found / np.arange(1, len(scores) + 1)


def _crop(path: Path, mistake: Mistake) -> np.ndarray:
    image = load_image(path)
    height, width = image.shape[:2]
    x1, y1, x2, y2 = mistake.box.xyxy
    pad_x = max(MIN_CROP_CONTEXT, (x2 - x1) * CROP_MARGIN)
    pad_y = max(MIN_CROP_CONTEXT, (y2 - y1) * CROP_MARGIN)
    left, top = int(max(0, x1 - pad_x)), int(max(0, y1 - pad_y))
    right, bottom = int(min(width, x2 + pad_x)), int(min(height, y2 + pad_y))
    crop = image[top:bottom, left:right].copy()
    corner1, corner2 = (round(x1) - left, round(y1) - top), (round(x2) - left, round(y2) - top)
    cv2.rectangle(crop, corner1, corner2, BOX_COLORS[mistake.kind], max(1, min(crop.shape[:2]) // 100))
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def _caption(mistake: Mistake, path: Path) -> str:
    if mistake.kind == FALSE_ALARM:
        return f"{FALSE_ALARM}: {mistake.class_name} {mistake.box.score:.2f}\n{path.name}"
    found = f"found only at {mistake.box.score:.2f}" if mistake.box.score else "not found"
    return f"{MISSED}: {mistake.class_name} ({found})\n{path.name}"


def _area(box: ScoredBox) -> float:
    x1, y1, x2, y2 = box.xyxy
    return (x2 - x1) * (y2 - y1)


def _short(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"
