"""Export detectors for deployment runtimes, and read what was exported.

``export_detector`` (PyTorch needed) writes an artifact folder; ``Artifact`` reads one (no PyTorch needed).

Example:
    >>> from ovdet.export import export_detector
    >>> export_detector(detector, "onnx", dynamic_vocab=True, max_classes=16)  # doctest: +SKIP
    PosixPath('runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx')
"""

from __future__ import annotations

from .artifact import METADATA_FILE, Artifact, ArtifactMetadata, TextTowerInfo
from .exporter import DEFAULT_MAX_CLASSES, FORMATS, ExportOptions, export_detector

__all__ = [
    "DEFAULT_MAX_CLASSES",
    "FORMATS",
    "METADATA_FILE",
    "Artifact",
    "ArtifactMetadata",
    "ExportOptions",
    "TextTowerInfo",
    "export_detector",
]
