"""The interface every runtime implements: what the detector asks of a loaded network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..prompts.spaces import TextEncoder

__all__ = ["TASKS", "Backend", "check_task"]

TASKS = ("detect", "segment")


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
        task: ``"detect"``, or ``"segment"`` where :meth:`infer` also returns mask prototypes.
        end2end: Whether the head is one-to-one (YOLOE-26): its output is top-k selected, never NMS'd.
    """

    name: str
    space: str
    stride: int
    rect: bool
    device: str
    input_dtype: type
    fixed_classes: tuple[str, ...] | None
    max_classes: int | None
    task: str
    end2end: bool

    def default_text_encoder(self) -> TextEncoder:
        """The text encoder that matches this runtime (e.g. CLIP in torch, or an exported ONNX text tower)."""
        ...

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Use these ``(K, D)`` L2-normalised text embeddings for every following :meth:`infer`."""
        ...

    def infer(self, images: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Run ``(B, 3, H, W)`` RGB images in [0, 1]; return the raw ``(B, 4 + K + M, N)`` head output (boxes, class
        scores, ``M`` mask coefficients), and with ``task == "segment"`` the ``(B, M, h, w)`` mask prototypes too."""
        ...


def check_task(task: str | None, available: str, model_name: str) -> str:
    """The task to run: ``task``, or what the model does (``available``) when ``None``.

    A segmentation model can also just detect; a detection model cannot segment.

    Example:
        >>> check_task(None, "segment", "yoloe-11s-seg.pt"), check_task("detect", "segment", "yoloe-11s-seg.pt")
        ('segment', 'detect')
    """
    if task is None:
        return available
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}: use detect or segment")
    if task == "segment" and available != "segment":
        raise ConfigError(
            f"{model_name} is a detection model and has no masks: drop --task segment, or use a -seg model such "
            f"as yoloe-11s-seg.pt"
        )
    return task
