"""TorchScript: exported graphs run by PyTorch alone, without Ultralytics or open_clip."""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import ConfigError
from .exported import ExportedBackend

__all__ = ["TorchScriptBackend"]


class TorchScriptBackend(ExportedBackend):
    """An ``ovdet export --format torchscript`` artifact.

    Args:
        path: The artifact folder or its ``.torchscript`` file.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        half: Accepted for symmetry; the precision is the one the graph was exported in (``--half``).

    Example:
        >>> backend = TorchScriptBackend("runs/export/yolov8s-worldv2-torchscript-fixed3")  # doctest: +SKIP
        >>> backend.fixed_classes  # doctest: +SKIP
        ('bottle', 'person', 'red backpack')
    """

    name = "torchscript"

    def __init__(self, path: str | os.PathLike[str], device: str = "auto", half: bool = False) -> None:
        super().__init__(path, "torchscript")
        try:
            import torch
        except ImportError as exc:
            raise self._missing("torch") from exc
        from .torch import resolve_device

        self.device = resolve_device(device)
        if self.artifact.metadata.precision == "fp16" and not self.device.startswith("cuda"):
            raise ConfigError(
                f"{self.artifact.model_path.name} was exported in FP16, which runs on CUDA: use --device cuda, "
                f"or re-export without --half"
            )
        self._warn_if_half_unavailable(half)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript, the format this loads
            self.module = torch.jit.load(str(self.artifact.model_path), map_location=self.device).eval()
        self._torch = torch

    def _forward(self, images: np.ndarray, text_embeddings: np.ndarray | None) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inputs = [torch.from_numpy(images).to(self.device)]
            if text_embeddings is not None:
                inputs.append(torch.from_numpy(text_embeddings).to(self.device))
            return self.module(*inputs).float().cpu().numpy()
