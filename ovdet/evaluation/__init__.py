"""Evaluate a vocabulary on labelled images: COCO metrics from pycocotools, a comparison of phrasings and
templates, F1-best alert thresholds, a vocabulary file written back, and a report a non-programmer can read.

Example:
    >>> from ovdet import OpenVocabDetector
    >>> from ovdet.evaluation import evaluate, load_dataset, write_report
    >>> from ovdet.prompts.vocabulary_files import load_vocabulary
    >>> detector = OpenVocabDetector("yolov8s-worldv2")  # doctest: +SKIP
    >>> dataset, vocabulary = load_dataset("ward/annotations.json"), load_vocabulary("ward.yaml")  # doctest: +SKIP
    >>> evaluation = evaluate(detector, dataset, vocabulary)  # doctest: +SKIP
    >>> write_report(evaluation, "report/")  # doctest: +SKIP
    >>> evaluation.chosen.save("ward-tuned.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from .datasets import load_coco, load_dataset
from .labelled import LabelledDataset, LabelledImage, match_categories
from .metrics import ClassOutcome, OperatingPoint, RunMetrics, best_f1_point, coco_metrics, operating_point
from .prompts import RankedVariant, Variant, plan_variants
from .report import write_report
from .runner import AP_CONF, Evaluation, detect_dataset, evaluate
from .yolo_format import load_yolo

__all__ = [
    "AP_CONF",
    "ClassOutcome",
    "Evaluation",
    "LabelledDataset",
    "LabelledImage",
    "OperatingPoint",
    "RankedVariant",
    "RunMetrics",
    "Variant",
    "best_f1_point",
    "coco_metrics",
    "detect_dataset",
    "evaluate",
    "load_coco",
    "load_dataset",
    "load_yolo",
    "match_categories",
    "operating_point",
    "plan_variants",
    "write_report",
]
