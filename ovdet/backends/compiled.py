"""A ``.pt`` model converted once into a faster runtime's changeable-vocabulary graph, cached per weights file.

This is the default CPU path: OpenVINO (or onnxruntime) runs the same network faster than PyTorch, and since the
class embeddings are an input of the graph, changing the classes needs no new conversion. The graph has a fixed
number of class slots; a vocabulary that needs more converts once more with twice the slots.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from ..text import ClipTextEncoder
from ..weights import cache_dir, file_sha256

__all__ = ["RUNTIME_FORMATS", "CompiledBackend", "compiled_dir"]

log = logging.getLogger(__name__)

RUNTIME_FORMATS = {"openvino": "openvino", "onnxruntime": "onnx"}
DEFAULT_SLOTS = 80


def compiled_dir() -> Path:
    """Where converted models are kept: ``$OVDET_COMPILED_DIR``, else ``<ovdet cache>/compiled``."""
    return Path(os.environ.get("OVDET_COMPILED_DIR") or cache_dir() / "compiled").expanduser()


class CompiledBackend:
    """A YOLO-World ``.pt`` run by OpenVINO or onnxruntime through a cached changeable-vocabulary export.

    Args:
        weights: The YOLO-World ``.pt`` file.
        runtime: ``"openvino"`` or ``"onnxruntime"``.
        device: ``"auto"`` or ``"cpu"``.
        half: Let OpenVINO compute in the CPU's BF16 instead of FP32.
        slots: Class slots of the first conversion.

    Example:
        >>> backend = CompiledBackend(Path("weights/yolov8s-worldv2.pt"), "openvino")  # doctest: +SKIP
        >>> backend.name, backend.precision  # doctest: +SKIP
        ('openvino', 'f32')
    """

    rect = True
    fixed_classes = None
    max_classes = None  # grows on demand

    def __init__(
        self, weights: Path, runtime: str, device: str = "auto", half: bool = False, slots: int = DEFAULT_SLOTS
    ) -> None:
        self.weights, self.runtime, self.half, self._device = Path(weights), runtime, half, device
        self._digest = file_sha256(self.weights)
        self._open(slots)

    def _open(self, slots: int) -> None:
        from . import load_backend

        folder = compiled_dir() / f"{self.weights.stem}-{self._digest[:16]}-{self.runtime}-k{slots}"
        if not (folder / "ovdet.json").is_file():
            self._convert(folder, slots)
        self._inner = load_backend(folder, device=self._device, half=self.half)
        self.slots = slots
        for name in ("name", "space", "stride", "device", "input_dtype", "precision"):
            setattr(self, name, getattr(self._inner, name))

    def _convert(self, folder: Path, slots: int) -> None:
        from ..export.exporter import ExportOptions, export_backend
        from .torch_backend import TorchBackend

        log.warning("converting %s for %s once (%d class slots); cached in %s", self.weights.name, self.runtime,
                    slots, folder)  # fmt: skip
        options = ExportOptions(RUNTIME_FORMATS[self.runtime], dynamic_vocab=True, max_classes=slots)
        export_backend(TorchBackend(self.weights, device="cpu"), self.weights, options, folder)

    def default_text_encoder(self) -> ClipTextEncoder:
        """CLIP in PyTorch, as for the ``.pt`` itself: the same embeddings, the same cache."""
        return ClipTextEncoder(device="cpu")

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Use these embeddings; a vocabulary larger than the graph's slots converts once more, with more slots."""
        if len(vectors) > self.slots:
            self._open(2 ** math.ceil(math.log2(len(vectors))))
        self._inner.set_vocabulary(vectors)

    def infer(self, images: np.ndarray) -> np.ndarray:
        return self._inner.infer(images)
