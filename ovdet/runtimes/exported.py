"""What every runtime of an exported detector shares: its metadata, its vocabulary slots and its text encoder.

A changeable-vocabulary graph has ``K`` text slots. A vocabulary of ``k <= K`` classes fills the first ``k``
slots and leaves the rest zero; the graph itself makes zero slots unable to score (see ``ovdet.export.graphs``),
and :meth:`ExportedBackend.infer` returns only the ``k`` real class rows to the shared post-processing.
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from importlib import import_module

import numpy as np

from ..core.errors import MissingDependencyError, ModelError, missing_dependency
from .artifact import Artifact
from .backend import check_task
from .registry import runtime_for_format, runtime_named
from .text_model import OnnxTextEncoder

__all__ = ["ExportedBackend", "load_exported"]


class ExportedBackend(ABC):
    """Base of the runtimes that load ``ovdet export`` artifacts; subclasses only run the graph.

    Args:
        path: The artifact folder or its graph file.
        expected_format: The format this runtime loads, e.g. ``"onnx"``.

    Example:
        >>> class EchoBackend(ExportedBackend):  # doctest: +SKIP
        ...     name = "echo"
        ...     def _forward(self, images, text_embeddings):
        ...         return run_somehow(images, text_embeddings)
    """

    name: str
    rect = True  # every export takes any input height and width that is a multiple of the stride

    def __init__(self, path: str | os.PathLike[str], expected_format: str) -> None:
        self.artifact = Artifact.open(path, expected_format)
        metadata = self.artifact.metadata
        self.space = metadata.embedding_space
        self.stride = metadata.stride
        self.fixed_classes = metadata.classes if not metadata.dynamic else None
        self.max_classes = metadata.max_classes if metadata.dynamic else None
        self.input_dtype: type = np.dtype(metadata.input_dtype).type
        self.precision = metadata.precision
        self.default_imgsz = metadata.imgsz  # what it was exported for: the detector's imgsz unless one is given
        self.task = metadata.task
        self.end2end = metadata.end2end
        # (text slots or None, classes in use): replaced as one value, so a concurrent infer sees one vocabulary
        self._vocabulary: tuple[np.ndarray | None, int] = (None, 0 if metadata.dynamic else metadata.max_classes)

    def default_text_encoder(self) -> OnnxTextEncoder:
        """The artifact's exported CLIP text tower, run without torch (changeable-vocabulary exports only)."""
        metadata = self.artifact.metadata
        if metadata.text_encoder is None and metadata.dynamic:
            raise ModelError(
                f"{self.artifact.model_path.name} ships no text encoder: set its classes with embeddings made for "
                f"{metadata.embedding_space} (--vocab vocab.npz)"
            )
        if metadata.text_encoder is None:
            raise ModelError(
                f"{self.artifact.model_path.name} has no text encoder (its classes are fixed): "
                f"re-export with --dynamic-vocab to change classes after export"
            )
        return OnnxTextEncoder.from_artifact(self.artifact.folder, metadata, runtime=self.text_runtime)

    @property
    def text_runtime(self) -> str:
        """The runtime the exported text tower runs on, as the registry gives it for this runtime."""
        runtime = runtime_named(self.name)
        return (runtime.text_runtime if runtime is not None else None) or "auto"

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Fill the first ``len(vectors)`` text slots; the others stay empty (zero) and never score."""
        metadata = self.artifact.metadata
        if not metadata.dynamic:
            raise ModelError(
                f"{self.artifact.model_path.name} has the fixed classes {', '.join(metadata.classes or ())}: "
                f"re-export with --dynamic-vocab to change them"
            )
        count, dim = vectors.shape
        if dim != metadata.embedding_dim or not 1 <= count <= metadata.max_classes:
            raise ModelError(
                f"{self.artifact.model_path.name} takes 1 to {metadata.max_classes} embeddings of length "
                f"{metadata.embedding_dim}, got {count} of length {dim}: use fewer classes or re-export with a "
                f"larger --max-classes"
            )
        slots = np.zeros((metadata.max_classes, dim), dtype=self.input_dtype)
        slots[:count] = vectors
        self._vocabulary = (slots, count)

    def select_task(self, task: str | None) -> None:
        """Run ``"detect"`` or ``"segment"`` (``None``: what the graph does); a segmentation graph can just detect."""
        self.task = check_task(task, self.artifact.metadata.task, self.artifact.model_path.name)

    def infer(self, images: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Run a ``(B, 3, H, W)`` batch; returns ``(B, 4 + k + M, N)`` for the ``k`` classes set and ``M`` mask
        coefficients, and the mask prototypes when segmenting."""
        slots, count = self._vocabulary
        metadata = self.artifact.metadata
        if metadata.dynamic and slots is None:
            raise ModelError('no classes set: call set_classes(["person", ...]) before detect')
        outputs = self._forward(images, slots)
        output, prototypes = outputs if isinstance(outputs, tuple) else (outputs, None)
        self.artifact.check_output(output.shape)  # where the graph did not say its rows before running
        if count < metadata.max_classes:  # the empty slots' scores go; the mask coefficients after them stay
            output = np.concatenate([output[:, : 4 + count], output[:, 4 + metadata.max_classes :]], axis=1)
        if prototypes is not None and self.task == "segment":
            return output, prototypes
        return output[:, : 4 + count]  # without the mask coefficients, which only masks need

    def _missing(self, package: str) -> MissingDependencyError:
        """The error for a package this runtime needs and lacks; it names the extra the registry gives."""
        return missing_dependency(package, runtime_named(self.name).extra, f"running {self.artifact.model_path.name}")

    def _warn_if_half_unavailable(self, half: bool) -> None:
        """``half`` cannot turn an FP32 graph into FP16 in this runtime: the precision is chosen at export."""
        if half and self.artifact.metadata.precision != "fp16":
            warnings.warn(
                f"{self.artifact.model_path.name} was exported in FP32, so it runs in FP32: "
                f"re-export it with --half for FP16",
                UserWarning,
                stacklevel=4,
            )

    @abstractmethod
    def _forward(
        self, images: np.ndarray, text_embeddings: np.ndarray | None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Run the graph on one batch; ``text_embeddings`` is ``None`` for fixed-vocabulary graphs. A segmentation
        graph also returns its mask prototypes."""


def load_exported(
    path: str | os.PathLike[str], format: str, *, device: str, half: bool, task: str | None
) -> ExportedBackend:
    """Open an ``ovdet export`` of ``format`` (its folder or model file) with its runtime, for ``task``."""
    runtime = runtime_for_format(format)
    backend = getattr(import_module(runtime.module), runtime.class_name)(path, device=device, half=half)
    backend.select_task(task)
    return backend
