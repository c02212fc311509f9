"""The text tower a changeable-vocabulary export ships: the detector's own encoder (CLIP or MobileCLIP) as ONNX.

Both families tokenize with CLIP's byte-pair merges, which travel beside the tower, so a deployment encodes new
classes with numpy and onnxruntime (or OpenVINO) only (``ovdet.runtimes.text_tower``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import ModelError
from ..prompts.mobileclip import MobileClipTextEncoder
from ..prompts.text import ClipTextEncoder, TextEncoder
from ..runtimes.artifact import TextTowerInfo

TowerEncoder = ClipTextEncoder | MobileClipTextEncoder

__all__ = ["TEXT_MODEL_FILE", "TOKENIZER_FILE", "tower_encoder", "write_text_tower"]

TEXT_MODEL_FILE = "text-encoder.onnx"
TOKENIZER_FILE = "bpe_simple_vocab_16e6.txt.gz"


def tower_encoder(encoder: TextEncoder, space: str) -> TowerEncoder:
    """``encoder``, checked to be one whose tower ovdet exports (CLIP or MobileCLIP), in the model's ``space``."""
    if not isinstance(encoder, (ClipTextEncoder, MobileClipTextEncoder)):
        raise ModelError(
            f"a --dynamic-vocab export ships the text tower of the detector's encoder, and ovdet cannot export "
            f"{type(encoder).__name__}: create the detector with its default text encoder"
        )
    if encoder.space != space:
        raise ModelError(
            f"the detector's text encoder is in space {encoder.space!r} but the model expects {space!r}: create "
            f"the detector with the {space} text encoder"
        )
    return encoder


def write_text_tower(encoder: TowerEncoder, folder: Path) -> TextTowerInfo:
    """Export the encoder's text tower to ONNX, with CLIP's byte-pair merges beside it (MobileCLIP uses them too)."""
    import torch

    from ..runtimes.text_tower import CONTEXT_LENGTH
    from .graphs import TextTowerGraph
    from .writers import write_text_tower as write_onnx_tower

    text_model = encoder.load()  # the encoder's own loading: same weights, same checks, same device
    import open_clip  # after load(), which names the extra to install when open_clip is missing

    example = open_clip.tokenize(["a photo of a red backpack"], context_length=CONTEXT_LENGTH)
    device = next(text_model.parameters()).device
    write_onnx_tower(TextTowerGraph(text_model), example.to(device, torch.long), folder / TEXT_MODEL_FILE)
    shutil.copyfile(open_clip.tokenizer.default_bpe(), folder / TOKENIZER_FILE)
    return TextTowerInfo(TEXT_MODEL_FILE, TOKENIZER_FILE, encoder.cache_key, CONTEXT_LENGTH)
