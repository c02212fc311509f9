"""Inference runtimes behind one interface; each module is the only place its heavy dependency is imported."""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import WeightsError
from ..text import TextEncoder

__all__ = ["Backend", "load_backend"]

# Export format → (module, class); each module is imported only when its format is loaded.
EXPORTED_BACKENDS = {
    "onnx": (".onnx_backend", "OnnxBackend"),
    "openvino": (".openvino_backend", "OpenVinoBackend"),
    "torchscript": (".torchscript_backend", "TorchScriptBackend"),
    "engine": (".tensorrt_backend", "TensorRTBackend"),
}


class Backend(Protocol):
    """A loaded detector network.

    Attributes:
        name: Runtime name, e.g. ``"torch"``.
        space: Embedding space of the head, e.g. ``"clip:ViT-B/32"``.
        stride: Largest stride; inputs are padded to a multiple of it.
        rect: Whether the network accepts non-square inputs (Ultralytics' minimum-rectangle letterbox).
        device: Where it runs, e.g. ``"cpu"`` or ``"cuda:0"``.
        input_dtype: numpy dtype the input batch must have.
        fixed_classes: Class names baked into an exported graph, or ``None`` where the vocabulary can change.
        max_classes: Most classes one call accepts, or ``None`` for no limit.
    """

    name: str
    space: str
    stride: int
    rect: bool
    device: str
    input_dtype: type
    fixed_classes: tuple[str, ...] | None
    max_classes: int | None

    def default_text_encoder(self) -> TextEncoder:
        """The text encoder that matches this runtime (e.g. CLIP in torch, or an exported ONNX text tower)."""
        ...

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Use these ``(K, D)`` L2-normalised text embeddings for every following :meth:`infer`."""
        ...

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Run ``(B, 3, H, W)`` RGB images in [0, 1]; return the raw ``(B, 4 + K, N)`` head output."""
        ...


def load_backend(model: str | os.PathLike[str], device: str = "auto", half: bool = False) -> Backend:
    """Open a weights file or an exported model with the runtime its format needs.

    Args:
        model: A YOLO-World ``.pt`` file, or an ``ovdet export`` artifact: its folder or its model file
            (``.onnx``, ``.xml``, ``.torchscript``, ``.engine``).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; each runtime documents its own.
        half: Reduced precision (see each runtime).

    Example:
        >>> backend = load_backend("runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx")  # doctest: +SKIP
        >>> backend.name  # doctest: +SKIP
        'onnxruntime'
    """
    path = Path(model)
    if path.suffix == ".pt":
        from .torch_backend import TorchBackend

        return TorchBackend(path, device=device, half=half)
    from ..export.artifact import artifact_format

    exported = artifact_format(path)
    if exported is None:
        raise WeightsError(
            f"{path} has an unsupported format {path.suffix or '(none)'}: ovdet loads YOLO-World .pt files and "
            f"models exported with ovdet export (.onnx, .xml, .torchscript, .engine, or their folder)"
        )
    module_name, class_name = EXPORTED_BACKENDS[exported]
    backend_class = getattr(import_module(module_name, __package__), class_name)
    return backend_class(path, device=device, half=half)
