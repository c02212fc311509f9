"""Export detectors for deployment runtimes.

``export_backend`` (PyTorch needed) writes an artifact folder from a detector's parts: its PyTorch model, and the
classes to bake in or the text encoder whose tower a changeable vocabulary ships (``OpenVocabDetector.export``
hands them over); :class:`ovdet.runtimes.artifact.Artifact` reads one (no PyTorch needed). The names below load on
first use, so importing this package loads no exporter.

Example:
    >>> from ovdet.export import ExportOptions, export_backend
    >>> export_backend(backend, Path("yolov8s-worldv2.pt"), ExportOptions("onnx", dynamic_vocab=True))  # doctest: +SKIP
    PosixPath('runs/export/yolov8s-worldv2-onnx-dynamic80/yolov8s-worldv2.onnx')
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
    "export_backend",
]

_LAZY = {
    "DEFAULT_MAX_CLASSES": "ovdet.export.exporter",
    "FORMATS": "ovdet.export.exporter",
    "ExportOptions": "ovdet.export.exporter",
    "export_backend": "ovdet.export.exporter",
    "METADATA_FILE": "ovdet.runtimes.artifact",
    "Artifact": "ovdet.runtimes.artifact",
    "ArtifactMetadata": "ovdet.runtimes.artifact",
    "TextTowerInfo": "ovdet.runtimes.artifact",
}

if TYPE_CHECKING:
    from ..runtimes.artifact import METADATA_FILE, Artifact, ArtifactMetadata, TextTowerInfo
    from .exporter import DEFAULT_MAX_CLASSES, FORMATS, ExportOptions, export_backend


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ovdet.export' has no attribute {name!r}")
