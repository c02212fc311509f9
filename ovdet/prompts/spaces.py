"""The embedding spaces ovdet knows, as one table, and what a detector needs from a text encoder.

A space is what a detector's text head was trained on: a text encoder (its architecture and weights), its
tokenizer and the width of the vectors it produces. Embeddings of one space mean nothing to a detector of another.
Every place that names a space reads this table: the weights registry row of its encoder, the PyTorch encoder
(:func:`ovdet.prompts.text.text_encoder_for`), the exported tower and its tokenizer. Nothing here needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.errors import EmbeddingSpaceError

__all__ = [
    "CLIP_SPACE",
    "DEFAULT_YOLOE_SPACE",
    "MOBILECLIP2_SPACE",
    "MOBILECLIP_SPACE",
    "SPACES",
    "EmbeddingSpace",
    "TextEncoder",
    "embedding_space",
]

CLIP_SPACE = "clip:ViT-B/32"  # YOLO-World
MOBILECLIP_SPACE = "mobileclip:blt"  # YOLOE-v8 and YOLOE-11; the names are Ultralytics' own text_model names
MOBILECLIP2_SPACE = "mobileclip2:b"  # YOLOE-26
DEFAULT_YOLOE_SPACE = MOBILECLIP_SPACE  # what Ultralytics assumes where a YOLOE checkpoint names none


@dataclass(frozen=True)
class EmbeddingSpace:
    """One embedding space and everything that encodes into it.

    Attributes:
        name: The space, e.g. ``"clip:ViT-B/32"`` (Ultralytics' ``text_model`` name for YOLOE's).
        width: Width of its vectors.
        encoder: Which PyTorch text encoder runs it: ``"clip"`` (OpenAI's CLIP through open_clip) or
            ``"mobileclip"`` (open_clip's MobileCLIP text tower).
        config: open_clip's model config of that encoder (its architecture and its tokenizer).
        weights: Key of the encoder's weights file in :data:`ovdet.core.weights.WEIGHTS`.
        variable: Environment variable naming a weights file of one's own instead.
        tower: File name of the exported ONNX text tower in a changeable-vocabulary export.
        tokenizer: File name of CLIP's byte-pair merges beside it (:mod:`ovdet.prompts.tokenizer`).
        context_length: Tokens per prompt, start and end tokens included.
    """

    name: str
    width: int
    encoder: str
    config: str
    weights: str
    variable: str
    tower: str = "text-encoder.onnx"
    tokenizer: str = "bpe_simple_vocab_16e6.txt.gz"
    context_length: int = 77


SPACES: dict[str, EmbeddingSpace] = {
    space.name: space
    for space in (
        EmbeddingSpace(CLIP_SPACE, 512, "clip", "ViT-B-32-quickgelu", "clip-vit-b-32", "OVDET_CLIP_WEIGHTS"),
        EmbeddingSpace(
            MOBILECLIP_SPACE, 512, "mobileclip", "MobileCLIP-B", "mobileclip-blt", "OVDET_MOBILECLIP_WEIGHTS"
        ),
        EmbeddingSpace(
            MOBILECLIP2_SPACE, 512, "mobileclip", "MobileCLIP2-B", "mobileclip2-b", "OVDET_MOBILECLIP2_WEIGHTS"
        ),
    )
}


def embedding_space(name: str) -> EmbeddingSpace:
    """The table's row of ``name``, or an error listing the spaces ovdet knows.

    Example:
        >>> embedding_space("mobileclip2:b").config
        'MobileCLIP2-B'
    """
    try:
        return SPACES[name]
    except KeyError:
        raise EmbeddingSpaceError(
            f"ovdet has no text encoder for the embedding space {name!r} (it knows {', '.join(SPACES)}): pass "
            f"precomputed embeddings of that space as an .npz instead of words"
        ) from None


@runtime_checkable
class TextEncoder(Protocol):
    """What a detector needs from a text encoder.

    Attributes:
        space: The embedding space produced, e.g. ``"clip:ViT-B/32"``.
        cache_key: Identifies the encoder and its exact weights, so cached embeddings are never mixed up.
    """

    space: str
    cache_key: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...
