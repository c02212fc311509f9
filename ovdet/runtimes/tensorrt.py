"""TensorRT: engines built by ``ovdet export --format engine``, run on an NVIDIA GPU through PyTorch's CUDA memory.

An engine is specific to the GPU model and TensorRT version that built it; build it on the machine that runs it.
"""

from __future__ import annotations

import os

import numpy as np

from ..core.errors import ConfigError
from .artifact import IMAGES_INPUT, OUTPUT, TEXT_INPUT
from .exported import ExportedBackend

__all__ = ["TensorRTBackend"]


class TensorRTBackend(ExportedBackend):
    """An ``ovdet export --format engine`` artifact (TensorRT 10 or newer).

    Args:
        path: The artifact folder or its ``.engine`` file.
        device: ``"auto"``, ``"cuda"`` or ``"cuda:N"``; engines do not run on the CPU.
        half: Accepted for symmetry; the precision is the one the engine was built with (``--half``).

    Example:
        >>> backend = TensorRTBackend("runs/export/yolov8s-worldv2-engine-dynamic16", device="cuda")  # doctest: +SKIP
        >>> backend.max_classes  # doctest: +SKIP
        16
    """

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike[str], device: str = "auto", half: bool = False) -> None:
        super().__init__(path, "engine")
        try:
            import tensorrt
            import torch
        except ImportError as exc:
            raise self._missing(exc.name or "tensorrt") from exc
        from .torch import resolve_device

        self.device = resolve_device(device)
        if not self.device.startswith("cuda"):
            raise ConfigError(
                f"{self.artifact.model_path.name} is a TensorRT engine, which runs on CUDA: use --device cuda"
            )
        self._warn_if_half_unavailable(half)
        self._torch = torch
        self._logger = tensorrt.Logger(tensorrt.Logger.WARNING)  # TensorRT keeps pointers to both: keep them alive
        self._runtime = tensorrt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.artifact.model_path.read_bytes())
        if self.engine is None:
            raise ConfigError(
                f"TensorRT {tensorrt.__version__} cannot load {self.artifact.model_path}: engines only run with the "
                f"TensorRT version and GPU model that built them; re-export on this machine"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        shapes = {name: list(self.engine.get_tensor_shape(name)) for name in names}
        inputs = {name for name in names if self.engine.get_tensor_mode(name) == tensorrt.TensorIOMode.INPUT}
        self.artifact.check_graph(
            {name: shape for name, shape in shapes.items() if name in inputs},
            {name: shape for name, shape in shapes.items() if name not in inputs},
        )
        self._output_dtype = torch.from_numpy(np.empty(0, tensorrt.nptype(self.engine.get_tensor_dtype(OUTPUT)))).dtype

    def _forward(self, images: np.ndarray, text_embeddings: np.ndarray | None) -> np.ndarray:
        self._check_shape(images.shape)
        torch = self._torch
        feeds = {IMAGES_INPUT: torch.from_numpy(images).to(self.device)}
        if text_embeddings is not None:
            feeds[TEXT_INPUT] = torch.from_numpy(text_embeddings).to(self.device)
        for name, tensor in feeds.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        output = torch.empty(tuple(self.context.get_tensor_shape(OUTPUT)), dtype=self._output_dtype, device=self.device)
        self.context.set_tensor_address(OUTPUT, output.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ConfigError(f"TensorRT failed to run {self.artifact.model_path.name} on a batch of {images.shape}")
        stream.synchronize()
        return output.float().cpu().numpy()

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        metadata = self.artifact.metadata
        if shape[0] > (metadata.max_batch or shape[0]) or max(shape[2:]) > metadata.imgsz:
            raise ConfigError(
                f"{self.artifact.model_path.name} was built for at most {metadata.max_batch} image(s) of "
                f"{metadata.imgsz} pixels, got {shape[0]} of {shape[3]}x{shape[2]}: lower batch or imgsz, "
                f"or re-export with larger --batch/--imgsz"
            )
