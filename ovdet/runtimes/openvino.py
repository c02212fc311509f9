"""OpenVINO: exported graphs on Intel and AMD CPUs (and Intel GPUs/NPUs), FP32 unless reduced precision is asked for.

On CPUs with BF16 units OpenVINO computes in BF16 by default, which moves boxes by pixels against PyTorch. ovdet
asks for FP32 (``INFERENCE_PRECISION_HINT=f32``) unless ``half=True``, which lets the device pick its reduced
precision (BF16 on such CPUs, FP16 on GPUs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.environment import import_openvino
from ..core.errors import ConfigError, WeightsError
from ..core.precision import precision_name
from .artifact import IMAGES_INPUT, TEXT_INPUT, load_graph
from .devices import parse_device
from .exported import ExportedBackend

__all__ = ["OpenVinoBackend", "openvino_device"]


def openvino_device(device: str, available: Sequence[str]) -> str:
    """The OpenVINO device name for an ovdet device string: ``auto``/``cpu`` → ``CPU``, else an available name.

    Example:
        >>> openvino_device("auto", ["CPU"])
        'CPU'
    """
    if parse_device(device)[0] in ("auto", "cpu"):
        return "CPU"
    if device.upper() in available:
        return device.upper()
    raise ConfigError(
        f"device {device!r} is not an OpenVINO device here (available: {', '.join(available)}): use --device cpu, "
        f"or export to onnx or engine for NVIDIA GPUs"
    )


def _check_ir(path: Path) -> None:
    """Refuse a ``.xml`` that is not OpenVINO IR before OpenVINO tries its other readers on it (TensorFlow's then
    writes its parse errors to stderr)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if b"<net " not in head:
        raise WeightsError(
            f"{path} is not an OpenVINO IR model (no <net> element): if the file was damaged or replaced, re-export "
            f"the model with ovdet export"
        )


def _dimensions(shape) -> list[int]:
    return [dimension.get_length() if dimension.is_static else -1 for dimension in shape]


class OpenVinoBackend(ExportedBackend):
    """An ``ovdet export --format openvino`` artifact (``.xml`` + ``.bin``), run by OpenVINO.

    Args:
        path: The artifact folder or its ``.xml`` file.
        device: ``"auto"`` or ``"cpu"`` (the CPU), or an OpenVINO device name such as ``"GPU"``.
        half: Let the device compute in its reduced precision (BF16 on CPUs that have it, FP16 on GPUs) instead of
            FP32. ``precision`` then says which ran: ``fp32``, ``bf16`` or ``fp16``, or ``int8`` for an INT8 export
            (its convolutions; the rest in the computed precision).

    Example:
        >>> backend = OpenVinoBackend("runs/export/yolov8s-worldv2-openvino-dynamic16")  # doctest: +SKIP
        >>> backend.precision  # doctest: +SKIP
        'fp32'
    """

    name = "openvino"

    def __init__(self, path: str | os.PathLike[str], device: str = "auto", half: bool = False) -> None:
        super().__init__(path, "openvino")
        openvino = import_openvino(f"running {self.artifact.model_path.name}")
        core = openvino.Core()
        self.device = openvino_device(device, core.available_devices)
        xml = self.artifact.model_path
        shown = f"{xml} with its {xml.with_suffix('.bin').name}"
        _check_ir(xml)
        model = load_graph(xml, self.name, lambda: core.read_model(str(xml)), shown)
        self.artifact.check_graph(
            {node.get_any_name(): _dimensions(node.get_partial_shape()) for node in model.inputs},
            {node.get_any_name(): _dimensions(node.get_partial_shape()) for node in model.outputs},
        )
        config = {} if half else {"INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = load_graph(xml, self.name, lambda: core.compile_model(model, self.device, config), shown)
        computed = precision_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.precision = "int8" if self.artifact.metadata.precision == "int8" else computed
        self._request = self.compiled.create_infer_request()

    def _forward(
        self, images: np.ndarray, text_embeddings: np.ndarray | None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        feeds = {IMAGES_INPUT: images}
        if text_embeddings is not None:
            feeds[TEXT_INPUT] = text_embeddings
        results = self._request.infer(feeds, share_inputs=True)
        return results[0] if len(results) == 1 else (results[0], results[1])
