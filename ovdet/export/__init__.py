"""Export detectors for deployment runtimes.

``export_detector`` (PyTorch needed) writes an artifact folder; :class:`ovdet.runtimes.artifact.Artifact` reads
one (no PyTorch needed). The names below load on first use, so importing this package loads no exporter.

Example:
    >>> from ovdet.export import export_detector
    >>> export_detector(detector, "onnx", dynamic_vocab=True, max_classes=16)  # doctest: +SKIP
    PosixPath('runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx')
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

_LAZY = {
    "DEFAULT_MAX_CLASSES": "ovdet.export.exporter",
    "FORMATS": "ovdet.export.exporter",
    "ExportOptions": "ovdet.export.exporter",
    "export_detector": "ovdet.export.exporter",
    "METADATA_FILE": "ovdet.runtimes.artifact",
    "Artifact": "ovdet.runtimes.artifact",
    "ArtifactMetadata": "ovdet.runtimes.artifact",
    "TextTowerInfo": "ovdet.runtimes.artifact",
}

if TYPE_CHECKING:
    from ..runtimes.artifact import METADATA_FILE, Artifact, ArtifactMetadata, TextTowerInfo
    from .exporter import DEFAULT_MAX_CLASSES, FORMATS, ExportOptions, export_detector


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ovdet.export' has no attribute {name!r}")
