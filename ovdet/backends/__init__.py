"""Inference runtimes behind one interface; each module is the only place its heavy dependency is imported."""

from __future__ import annotations

import importlib.util
import os
from importlib import import_module
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ConfigError, WeightsError
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


def load_backend(
    model: str | os.PathLike[str], device: str = "auto", half: bool = False, runtime: str = "auto"
) -> Backend:
    """Open a weights file or an exported model with the runtime its format needs.

    Args:
        model: A YOLO-World ``.pt`` file, or an ``ovdet export`` artifact: its folder or its model file
            (``.onnx``, ``.xml``, ``.torchscript``, ``.engine``).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; each runtime documents its own.
        half: Reduced precision (see each runtime).
        runtime: For a ``.pt``: ``"torch"``, ``"openvino"`` or ``"onnxruntime"`` (converted once and cached), or
            ``"auto"`` (``$OVDET_RUNTIME`` if set; else OpenVINO on a CPU where it is installed, PyTorch otherwise).

    Example:
        >>> backend = load_backend("runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx")  # doctest: +SKIP
        >>> backend.name  # doctest: +SKIP
        'onnxruntime'
    """
    path = Path(model)
    if path.suffix == ".pt":
        return _load_weights(path, device, half, runtime)
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


RUNTIMES = ("auto", "torch", "openvino", "onnxruntime")


def _load_weights(path: Path, device: str, half: bool, runtime: str) -> Backend:
    from .torch_backend import TorchBackend, resolve_device

    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime == "auto":
        runtime = os.environ.get("OVDET_RUNTIME") or _fastest_runtime(resolve_device(device))
    if runtime == "torch":
        return TorchBackend(path, device=device, half=half)
    if runtime not in RUNTIMES[2:]:
        raise ConfigError(f"OVDET_RUNTIME={runtime!r} is not a runtime: use one of {', '.join(RUNTIMES[1:])}")
    from .compiled import CompiledBackend

    return CompiledBackend(path, runtime, device="cpu" if device == "auto" else device, half=half)


def _fastest_runtime(device: str) -> str:
    """OpenVINO on a CPU (measured: benchmarks/speed.py), PyTorch on CUDA or where OpenVINO is missing."""
    if device.startswith("cuda") or importlib.util.find_spec("openvino") is None:
        return "torch"
    return "openvino"
