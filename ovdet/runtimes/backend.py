"""The interface every runtime implements: what the detector asks of a loaded network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..text import TextEncoder

__all__ = ["Backend"]


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
