"""Evaluation reports: a markdown page with the tables and figures, ``metrics.json`` with every number unrounded,
the detections as COCO results, and the chosen vocabulary written back as a file ``ovdet detect`` runs.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..io.sinks import check_writable
from .figures import Curve, mistakes_sheet, precision_recall_figure, worst_mistakes
from .metrics import OperatingPoint, RunMetrics
from .prompts import ALL_PHRASINGS, ALL_TEMPLATES, RankedVariant, describe_prompts
from .report_files import (
    METRICS_FILE,
    MISTAKES_FILE,
    PREDICTIONS_FILES,
    REPORT_FILE,
    check_report_files,
    record_report_files,
)
from .runner import AP_CONF, Evaluation
from .verdicts import MIN_OBJECTS, MIN_PRECISION, MIN_RECALL

__all__ = ["REPORT_FILE", "metrics_record", "write_report"]

GLOSSARY = """\
## How to read this

- **AP** (average precision) sums up the whole precision-recall curve of a class: 1.0 means every labelled object
  is found before any false alarm; near 0, the prompt does not find the objects. **AP50** counts a box as right
  when it overlaps the labelled box by at least half (IoU ≥ 0.5); **AP50-95** averages stricter overlaps too, so
  it also rewards tight boxes. **mAP** is the mean over classes.
- **Threshold**: boxes scoring above it are reported (and would alert). **Precision**: of those boxes, the share
  that are right. **Recall**: of the labelled objects, the share found. **F1** balances the two; the chosen
  threshold is the one with the best F1.
- Numbers from a few dozen images move a lot with a few more: a difference of a few points is not a real one.
- AP comes from pycocotools' COCOeval; the detector ran at confidence {ap_conf} so every box counts for AP.
"""


def write_report(evaluation: Evaluation, folder: str | os.PathLike[str], fps: float | None = None) -> Path:
    """Write ``report.md``, a precision-recall PNG per class, ``mistakes.png``, ``metrics.json`` and the detections;
    a file of one of those names that no earlier report wrote is never replaced.

    Args:
        evaluation: The result of :func:`~ovdet.evaluation.evaluate`.
        folder: Where to write; created if missing.
        fps: Frame rate of the video the images come from: adds false alarms per hour of video.

    Returns:
        The path of ``report.md``.

    Raises:
        UsageError: The folder holds a file named like a report file that no earlier report wrote.

    Example:
        >>> write_report(evaluation, "report/")  # doctest: +SKIP
        PosixPath('report/report.md')
    """
    folder = Path(folder)
    check_report_files(folder)
    folder = check_writable(folder, directory=True)
    predictions = _write_predictions(evaluation, folder)
    figures = _write_curves(evaluation, folder)
    mistakes = _write_mistakes(evaluation, folder)
    _write_json(folder / METRICS_FILE, metrics_record(evaluation, predictions, fps))
    report = folder / REPORT_FILE
    report.write_text(_markdown(evaluation, figures, mistakes, fps), encoding="utf-8")
    written = [*predictions.values(), *figures.values(), *([mistakes] if mistakes else []), METRICS_FILE, REPORT_FILE]
    record_report_files(folder, written)
    return report


def metrics_record(
    evaluation: Evaluation, predictions: dict[str, str] | None = None, fps: float | None = None
) -> dict[str, Any]:
    """Every number of the evaluation, unrounded, as JSON-ready data (``null`` where a value is undefined).

    Example:
        >>> metrics_record(evaluation)["as_written"]["map50_95"]  # doctest: +SKIP
        0.41234
    """
    images = len(evaluation.dataset.images)
    record = {
        "data": evaluation.dataset.name,
        "images": images,
        "objects": sum(evaluation.dataset.objects_per_category().values()),
        "model": evaluation.model,
        "imgsz": evaluation.settings.imgsz,
        "ap_conf": AP_CONF,
        "runs": evaluation.runs,
        "as_written": _run_record(evaluation.as_written, evaluation.written_points, images),
        "chosen": _run_record(evaluation.best, evaluation.chosen_points, images),
        "phrasings": {name: [_variant_record(v) for v in ranking] for name, ranking in evaluation.phrasings.items()},
        "templates": [_variant_record(v) for v in evaluation.templates],
        "vocabulary": evaluation.chosen.to_dict(),
        "fps": fps,
        "precisions": evaluation.precisions.record() if evaluation.precisions is not None else None,
        "verdicts": {
            v.name: {"reliable": v.reliable, "text": v.text, "false_alarms_per_hour": v.false_alarms_per_hour}
            for v in evaluation.verdicts(fps)
        },
    }
    for key, file in (predictions or {}).items():
        record[key]["predictions"] = file
    return _json_safe(record)


def _run_record(metrics: RunMetrics, points: dict[str, OperatingPoint], images: int) -> dict[str, Any]:
    classes = {
        name: {
            "objects": len(outcome.objects),
            "ap50_95": outcome.ap50_95,
            "ap50": outcome.ap50,
            "threshold": points[name].threshold,
            "precision": points[name].precision,
            "recall": points[name].recall,
            "f1": points[name].f1,
            "detections_per_image": points[name].detections / images,
        }
        for name, outcome in metrics.classes.items()
    }
    record = {"map50_95": metrics.map50_95, "map50": metrics.map50, "classes": classes}
    if metrics.mask_map50_95 is not None:
        record |= {"mask_map50_95": metrics.mask_map50_95, "mask_map50": metrics.mask_map50}
    return record


def _variant_record(variant: RankedVariant) -> dict[str, Any]:
    return {"label": variant.label, "prompts": list(variant.prompts), "ap50_95": variant.ap50_95, "ap50": variant.ap50}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")


def _write_predictions(evaluation: Evaluation, folder: Path) -> dict[str, str]:
    """The detections of each distinct run, as COCO results that pycocotools' ``loadRes`` reads."""
    files = {"as_written": PREDICTIONS_FILES["as_written"]}
    _write_json(folder / files["as_written"], list(evaluation.as_written.results))
    if evaluation.best is evaluation.as_written:
        files["chosen"] = files["as_written"]
    else:
        files["chosen"] = PREDICTIONS_FILES["chosen"]
        _write_json(folder / files["chosen"], list(evaluation.best.results))
    return files


def _write_curves(evaluation: Evaluation, folder: Path) -> dict[str, str]:
    """One precision-recall PNG per class: as written, and as chosen when the prompts changed."""
    files, used = {}, set()
    for name in evaluation.class_names:
        curves = [Curve("as written", evaluation.as_written.classes[name], evaluation.written_points[name])]
        if evaluation.best is not evaluation.as_written:
            curves.append(Curve("chosen", evaluation.best.classes[name], evaluation.chosen_points[name]))
        file = _unique(f"pr-{_slug(name)}.png", used)
        precision_recall_figure(f"{name}: precision and recall at IoU 0.5", curves, folder / file)
        files[name] = file
    return files


def _write_mistakes(evaluation: Evaluation, folder: Path) -> str | None:
    thresholds = {name: point.threshold for name, point in evaluation.chosen_points.items()}
    false_alarms, missed = worst_mistakes(evaluation.best.classes, thresholds)
    if not false_alarms and not missed:
        return None
    mistakes_sheet(evaluation.dataset, false_alarms, missed, folder / MISTAKES_FILE)
    return MISTAKES_FILE


def _markdown(evaluation: Evaluation, curves: dict[str, str], mistakes: str | None, fps: float | None) -> str:
    sections = [
        _heading(evaluation),
        _verdict_section(evaluation, fps),
        _summary(evaluation),
        _class_table(evaluation),
        _phrasing_tables(evaluation),
        _template_table(evaluation),
        _threshold_table(evaluation),
        evaluation.precisions.markdown() if evaluation.precisions is not None else "",
        "## Precision and recall\n\n" + "\n".join(f"![{name}]({file})" for name, file in curves.items()),
        _mistakes_section(mistakes),
        "## Chosen vocabulary\n\nWritten back with `ovdet eval --write-vocab FILE.yaml`; run it with "
        "`ovdet detect VIDEO --vocab FILE.yaml`.\n\n```yaml\n"
        + yaml.safe_dump(evaluation.chosen.to_dict(), sort_keys=False, allow_unicode=True)
        + "```",
        GLOSSARY.format(ap_conf=AP_CONF),
    ]
    return "\n\n".join(section.strip() for section in sections if section) + "\n"


def _heading(evaluation: Evaluation) -> str:
    dataset, settings = evaluation.dataset, evaluation.settings
    objects = sum(dataset.objects_per_category().values())
    return (
        f"# Evaluation on {dataset.name}\n\n"
        f"- vocabulary: {evaluation.vocabulary.origin}\n"
        f"- data: {len(dataset.images)} images, {objects} labelled objects of {len(evaluation.class_names)} class(es)\n"
        f"- model: {evaluation.model}, image size {settings.imgsz}, NMS IoU {settings.iou}\n"
        f"- passes over the images: {evaluation.runs} (as written, one per variant, and the best combination if new)"
    )


def _verdict_section(evaluation: Evaluation, fps: float | None) -> str:
    rows = [[verdict.name, verdict.text] for verdict in evaluation.verdicts(fps)]
    per_hour = (
        f"False alarms per hour assume every frame of a {fps:g} frames/s video is checked."
        if fps
        else "Give the video's frame rate (`ovdet eval --fps 10`) for false alarms per hour of video."
    )
    return (
        "## Can we rely on it?\n\nEach class at its chosen threshold. **Reliable** means: at least "
        f"{MIN_OBJECTS} labelled examples, at least {MIN_RECALL:.0%} of them found, and at least "
        f"{MIN_PRECISION:.0%} of its boxes right. {per_hour}\n\n" + _table(["class", "verdict"], rows)
    )


def _summary(evaluation: Evaluation) -> str:
    rows = [("as written", evaluation.as_written)]
    if evaluation.best is not evaluation.as_written:
        rows.append(("chosen (best phrasings and templates)", evaluation.best))
    if evaluation.as_written.mask_map50_95 is None:
        return "## In short\n\n" + _table(
            ["vocabulary", "mAP50-95", "mAP50"], [[label, _num(m.map50_95), _num(m.map50)] for label, m in rows]
        )
    return "## In short\n\n" + _table(
        ["vocabulary", "box mAP50-95", "box mAP50", "mask mAP50-95", "mask mAP50"],
        [[label, _num(m.map50_95), _num(m.map50), _num(m.mask_map50_95), _num(m.mask_map50)] for label, m in rows],
    )


def _class_table(evaluation: Evaluation) -> str:
    images = len(evaluation.dataset.images)
    rows = []
    for name in evaluation.class_names:
        outcome, point = evaluation.as_written.classes[name], evaluation.written_points[name]
        rows.append(
            [name, len(outcome.objects), _num(outcome.ap50_95), _num(outcome.ap50), *_point_cells(point, images)]
        )
    header = ["class", "objects", "AP50-95", "AP50", "threshold", "precision", "recall", "F1", "boxes per image"]
    return "## Per class, as written\n\n" + _table(header, rows)


def _phrasing_tables(evaluation: Evaluation) -> str:
    if not evaluation.phrasings:
        return "## Which phrasing works best\n\nEvery class has one phrasing: there is nothing to compare."
    parts = ["## Which phrasing works best\n\nEach phrasing alone, against all of them averaged (the ensemble)."]
    for name, ranking in evaluation.phrasings.items():
        rows = [
            [rank, _variant_label(v, ALL_PHRASINGS), _num(v.ap50_95), _num(v.ap50)]
            for rank, v in enumerate(ranking, start=1)
        ]
        parts.append(f"### {name}\n\n" + _table(["rank", "phrasing", "AP50-95", "AP50"], rows))
    return "\n\n".join(parts)


def _template_table(evaluation: Evaluation) -> str:
    if not evaluation.templates:
        return ""
    rows = [
        [rank, _variant_label(v, ALL_TEMPLATES), _num(v.ap50_95), _num(v.ap50)]
        for rank, v in enumerate(evaluation.templates, start=1)
    ]
    return (
        "## Which templates work best\n\nEvery class under each template alone, against all templates averaged.\n\n"
        + _table(["rank", "templates", "mAP50-95", "mAP50"], rows)
    )


def _threshold_table(evaluation: Evaluation) -> str:
    images = len(evaluation.dataset.images)
    prompts = {c.name: c.prompts for c in evaluation.chosen.classes}
    rows = [
        [name, ", ".join(prompts[name]), *_point_cells(evaluation.chosen_points[name], images)]
        for name in evaluation.class_names
    ]
    header = ["class", "phrasings", "threshold", "precision", "recall", "F1", "boxes per image"]
    return (
        "## Alert thresholds, chosen vocabulary\n\nPer class, the threshold with the best F1 (a class with no correct "
        "box keeps its own).\n\n" + _table(header, rows)
    )


def _mistakes_section(mistakes: str | None) -> str:
    if mistakes is None:
        return "## Worst mistakes\n\nNo false alarms and no missed objects at the chosen thresholds."
    return (
        "## Worst mistakes\n\nAt the chosen thresholds: the most confident false alarms (red boxes) and the objects "
        f"missed (orange boxes).\n\n![worst mistakes]({mistakes})"
    )


def _point_cells(point: OperatingPoint, images: int) -> list[str]:
    return [
        f"{point.threshold:.2f}",
        _num(point.precision),
        _num(point.recall),
        _num(point.f1),
        f"{point.detections / images:.2f}",
    ]


def _variant_label(variant: RankedVariant, written: str) -> str:
    prompts = describe_prompts(variant.prompts)
    return f"{written}: {prompts}" if variant.label == written else prompts


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "class"


def _unique(file: str, used: set[str]) -> str:
    stem, suffix = file.rsplit(".", 1)
    candidate, number = file, 2
    while candidate in used:
        candidate, number = f"{stem}-{number}.{suffix}", number + 1
    used.add(candidate)
    return candidate
