"""ovdet: open-vocabulary object detection on YOLO-World — type what to find, get boxes.

Example:
    >>> from ovdet import OpenVocabDetector
    >>> detector = OpenVocabDetector()  # doctest: +SKIP
    >>> detector.set_classes(["red backpack"])  # doctest: +SKIP
    >>> detector.detect("photo.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .core import __version__
from .core.environment import set_library_defaults
from .core.errors import (
    ConfigError,
    EmbeddingSpaceError,
    MissingDependencyError,
    ModelError,
    OutputError,
    OvdetError,
    SourceError,
    UsageError,
    VocabularyError,
    WeightsError,
)

# ovdet makes no network connection but the weights download a user asks for, and never unpickles code. So, for
# the whole process: OpenVINO's usage telemetry cannot load (OpenVINO then uses its own no-op stub; see
# ovdet/core/environment.py), and Ultralytics loads checkpoints with its allow-list only (ovdet bench goes through it).
sys.modules.setdefault("openvino_telemetry", None)
for _name, _value in (("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "False")):
    os.environ.setdefault(_name, _value)
if os.environ.get("OVDET_TRUST_WEIGHTS", "").lower() not in ("1", "true", "yes"):
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
set_library_defaults()  # Ultralytics' and matplotlib's files in ovdet's cache, onnxruntime's telemetry off

__all__ = [
    "ConfigError",
    "EmbeddingSpaceError",
    "Embeddings",
    "Frame",
    "InferenceSettings",
    "MissingDependencyError",
    "ModelError",
    "OpenVocabDetector",
    "OutputError",
    "OvdetError",
    "SourceError",
    "UsageError",
    "VocabularyError",
    "WeightsError",
    "__version__",
]

# Heavy modules load on first use, so `import ovdet` (and `ovdet --help`) stays fast.
_LAZY = {
    "OpenVocabDetector": "ovdet.detector",
    "Embeddings": "ovdet.prompts.embeddings",
    "InferenceSettings": "ovdet.core.config",
    "Frame": "ovdet.io.sources",
}

if TYPE_CHECKING:
    from .core.config import InferenceSettings
    from .detector import OpenVocabDetector
    from .io.sources import Frame
    from .prompts.embeddings import Embeddings


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ovdet' has no attribute {name!r}")
