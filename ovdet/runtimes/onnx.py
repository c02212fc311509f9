"""ONNX Runtime: exported graphs on the CPU, or on NVIDIA GPUs through the CUDA and TensorRT execution providers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.environment import import_onnxruntime
from ..core.errors import ConfigError
from .artifact import IMAGES_INPUT, TEXT_INPUT, load_graph
from .devices import parse_device
from .exported import ExportedBackend

__all__ = ["OnnxBackend", "execution_providers"]

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def execution_providers(device: str, available: Sequence[str], half: bool = False) -> tuple[list[Any], str]:
    """onnxruntime providers, in priority order, for a device string; and the device it names.

    Args:
        device: ``"auto"`` (CUDA when this onnxruntime has it), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"N"``,
            ``"tensorrt"`` or ``"tensorrt:N"`` (TensorRT first, CUDA for what it cannot run).
        available: ``onnxruntime.get_available_providers()``.
        half: Let the TensorRT provider compute in FP16.

    Example:
        >>> execution_providers("auto", ["CPUExecutionProvider"])
        (['CPUExecutionProvider'], 'cpu')
    """
    kind, index = parse_device(device)
    if kind == "auto":
        kind = "cuda" if CUDA in available else "cpu"
    if kind == "cpu":
        return [CPU], "cpu"
    if kind not in ("cuda", "tensorrt"):
        raise ConfigError(f"unknown device {device!r} for onnxruntime: use auto, cpu, cuda, cuda:N or tensorrt:N")
    needed = CUDA if kind == "cuda" else TENSORRT
    if needed not in available:
        raise ConfigError(
            f"device {device!r} needs onnxruntime's {needed}, which this onnxruntime lacks (it has "
            f"{', '.join(available)}): pip install onnxruntime-gpu (ovdet's onnx-gpu extra) on a machine with CUDA, "
            f"or use --device cpu"
        )
    options = {"device_id": index or 0}
    providers: list[Any] = [(CUDA, options), CPU]
    if kind == "tensorrt":
        providers.insert(0, (TENSORRT, {**options, "trt_fp16_enable": half}))
    return providers, f"{kind}:{options['device_id']}"


class OnnxBackend(ExportedBackend):
    """An ``ovdet export --format onnx`` artifact, run by onnxruntime.

    Args:
        path: The artifact folder or its ``.onnx`` file.
        device: See :func:`execution_providers`.
        half: FP16 through the TensorRT provider; other providers run the precision the graph was exported in.

    Example:
        >>> backend = OnnxBackend("runs/export/yolov8s-worldv2-onnx-dynamic16")  # doctest: +SKIP
        >>> backend.max_classes  # doctest: +SKIP
        16
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], device: str = "auto", half: bool = False) -> None:
        super().__init__(path, "onnx")
        try:
            onnxruntime = import_onnxruntime()
        except ImportError as exc:
            raise self._missing("onnxruntime") from exc
        providers, self.device = execution_providers(device, onnxruntime.get_available_providers(), half)
        if not self.device.startswith("tensorrt"):
            self._warn_if_half_unavailable(half)
        path = self.artifact.model_path
        self.session = load_graph(path, self.name, lambda: onnxruntime.InferenceSession(str(path), providers=providers))
        self.artifact.check_graph(
            {node.name: node.shape for node in self.session.get_inputs()},
            {node.name: node.shape for node in self.session.get_outputs()},
        )

    def _forward(
        self, images: np.ndarray, text_embeddings: np.ndarray | None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        feeds = {IMAGES_INPUT: images}
        if text_embeddings is not None:
            feeds[TEXT_INPUT] = text_embeddings
        outputs = self.session.run(None, feeds)
        return outputs[0] if len(outputs) == 1 else (outputs[0], outputs[1])
