"""TorchScript: exported graphs run by PyTorch alone, without Ultralytics or open_clip.

A TorchScript graph is code: ``torch.jit.load`` runs the ``__setstate__`` of its scripted classes while it loads.
So a graph is loaded only from bytes whose SHA-256 matches the digest its export recorded in ``ovdet.json``: a
swapped or altered graph file is refused. Whoever can edit ``ovdet.json`` too can record another digest; the
folder must be as trusted as any code one runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings

import numpy as np

from ..core.errors import ConfigError, WeightsError
from .artifact import METADATA_FILE, Artifact, load_graph
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
        graph = _recorded_graph(self.artifact)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript, the format this loads
            device = self.device
            module = load_graph(
                self.artifact.model_path, "torch.jit", lambda: torch.jit.load(io.BytesIO(graph), map_location=device)
            )
        self.module = module.eval()
        self._torch = torch

    def _forward(self, images: np.ndarray, text_embeddings: np.ndarray | None) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inputs = [torch.from_numpy(images).to(self.device)]
            if text_embeddings is not None:
                inputs.append(torch.from_numpy(text_embeddings).to(self.device))
            return self.module(*inputs).float().cpu().numpy()


def _recorded_graph(artifact: Artifact) -> bytes:
    """The graph file's bytes, only if they are the ones its export recorded: loading TorchScript runs its code."""
    path, recorded = artifact.model_path, artifact.metadata.model_sha256
    if recorded is None:
        raise WeightsError(
            f"{artifact.folder / METADATA_FILE} records no SHA-256 of {path.name}, and a TorchScript graph is code "
            f"that ovdet loads only when it is the one exported: re-export the model with this ovdet"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read {path} ({exc.strerror or exc}): check its permissions") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise WeightsError(
            f"{path} has SHA-256 {actual[:12]}…, but its {METADATA_FILE} records {recorded[:12]}…: the graph was "
            f"swapped or altered after export, and a TorchScript graph is code, so it was not loaded; re-export the "
            f"model with ovdet export"
        )
    return data
