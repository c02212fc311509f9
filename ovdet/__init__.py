"""ovdet: open-vocabulary object detection on YOLO-World — type what to find, get boxes.

Example:
    >>> from ovdet import OpenVocabDetector
    >>> detector = OpenVocabDetector()  # doctest: +SKIP
    >>> detector.set_classes(["red backpack"])  # doctest: +SKIP
    >>> detector.detect("photo.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
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

__version__ = "0.1.0"

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
    "Embeddings": "ovdet.embeddings",
    "InferenceSettings": "ovdet.config",
    "Frame": "ovdet.io.sources",
}

if TYPE_CHECKING:
    from .config import InferenceSettings
    from .detector import OpenVocabDetector
    from .embeddings import Embeddings
    from .io.sources import Frame


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ovdet' has no attribute {name!r}")
