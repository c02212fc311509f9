"""Text encoders in PyTorch behind one small interface (:class:`~ovdet.prompts.spaces.TextEncoder`):
``encode(texts) -> (N, D) float32``, L2-normalised.

:func:`text_encoder_for` picks the encoder of an embedding space from :data:`~ovdet.prompts.spaces.SPACES`:
OpenAI's CLIP ViT-B/32 (YOLO-World) here, run through open_clip from OpenAI's own JIT checkpoint (the
``ViT-B-32.pt`` that Ultralytics caches) or an open_clip state dict; MobileCLIP-B and MobileCLIP2-B (YOLOE) in
:mod:`ovdet.prompts.mobileclip`. Both tokenize with :mod:`ovdet.prompts.tokenizer`, reading open_clip's merges file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import checkpoint, script_archive, weights
from ..core.errors import WeightsError, missing_dependency
from .embeddings import normalize
from .mobileclip import MobileClipTextEncoder
from .spaces import CLIP_SPACE, SPACES, TextEncoder, embedding_space
from .tokenizer import ClipTokenizer

__all__ = ["ClipTextEncoder", "text_encoder_for"]

log = logging.getLogger(__name__)

CLIP_ADVICE = "use OpenAI's ViT-B-32.pt or an open_clip ViT-B-32-quickgelu state dict"


def text_encoder_for(space: str, device: str = "cpu") -> TextEncoder:
    """The text encoder whose embeddings a detector of ``space`` was trained on, loaded on first use.

    Args:
        space: A space of :data:`~ovdet.prompts.spaces.SPACES`: ``"clip:ViT-B/32"`` (YOLO-World),
            ``"mobileclip:blt"`` (YOLOE-v8, YOLOE-11) or ``"mobileclip2:b"`` (YOLOE-26).
        device: Torch device string for the text tower.

    Example:
        >>> text_encoder_for("mobileclip:blt").space
        'mobileclip:blt'
    """
    return _ENCODERS[embedding_space(space).encoder](space, device)


class ClipTextEncoder:
    """CLIP ViT-B/32 text tower (OpenAI weights) through open_clip, loaded on first use.

    Args:
        weights_path: A checkpoint file; by default ``$OVDET_CLIP_WEIGHTS`` if set, else the registry's
            ``clip/ViT-B-32.pt`` in the weights folder (downloaded and SHA-256-checked).
        device: Torch device string for the text tower.

    Example:
        >>> encoder = ClipTextEncoder()  # doctest: +SKIP
        >>> encoder.encode(["red backpack"]).shape  # doctest: +SKIP
        (1, 512)
    """

    space = CLIP_SPACE
    batch_size = 256

    def __init__(self, weights_path: str | os.PathLike[str] | None = None, device: str = "cpu") -> None:
        weights_path = weights_path or os.environ.get(SPACES[self.space].variable) or None
        self._explicit_path = Path(weights_path).expanduser() if weights_path is not None else None
        self.device = device
        self._model = None
        self._tokenizer: ClipTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def cache_key(self) -> str:
        """``space@sha256`` of the weights; the published digest is used without reading the file."""
        if self._explicit_path is None:
            return f"{self.space}@{weights.WEIGHTS[SPACES[self.space].weights].sha256}"
        if not self._explicit_path.is_file():
            raise WeightsError(f"CLIP weights file {self._explicit_path} does not exist: check the path")
        return f"{self.space}@{weights.file_sha256(self._explicit_path)}"

    @property
    def loaded(self) -> bool:
        """Whether the text tower is in memory."""
        return self._model is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode prompts; prompts longer than CLIP's 77 tokens are truncated with a warning."""
        model = self.load()  # first: it says what to install where torch is missing
        import torch

        tokens = torch.from_numpy(self._tokenizer(list(texts)))
        rows = []
        with torch.inference_mode():
            for chunk in tokens.split(self.batch_size):
                rows.append(model.encode_text(chunk.to(self.device)).float().cpu().numpy())
        return normalize(np.concatenate(rows, axis=0))

    def load(self):
        """The open_clip CLIP model (text tower only), loaded on first use."""
        with self._lock:
            if self._model is None:
                self._model, self._tokenizer = self._build()
        return self._model

    def _build(self) -> tuple[Any, ClipTokenizer]:
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise missing_dependency(exc.name or "open_clip", "torch", "encoding text prompts") from exc
        path = self._explicit_path or weights.resolve_spec(weights.WEIGHTS[SPACES[self.space].weights])
        log.debug("loading CLIP text encoder from %s", path)
        model = _load_clip(weights.read_weights(path, check_registry=self._explicit_path is None))
        if model.transformer.width != 512 or model.text_projection.shape[-1] != SPACES[self.space].width:
            raise WeightsError(f"{path} is a CLIP model of another size: ovdet's detectors need ViT-B/32")
        model.visual = None  # only the text tower is used; frees memory
        tokenizer = ClipTokenizer(open_clip.tokenizer.default_bpe(), SPACES[self.space].context_length)
        return model.to(torch.device(self.device)).eval(), tokenizer


def _load_clip(file: weights.WeightsFile):
    """CLIP from OpenAI's TorchScript release or an open_clip state dict, read from checked bytes.

    Reads both as ``open_clip.load_openai_model`` does, except that neither can run code: the archive's tensors are
    read without loading it (``torch.jit.load`` would run its code), a state dict is unpickled restricted to tensors.
    """
    from open_clip.model import build_model_from_openai_state_dict

    try:
        state_dict = _clip_state_dict(file)
        try:
            model = build_model_from_openai_state_dict(state_dict, cast_dtype=None)
        except KeyError:  # a training checkpoint: {"state_dict": {"module.<key>": ...}}
            unwrapped = {key[len("module.") :]: value for key, value in state_dict["state_dict"].items()}
            model = build_model_from_openai_state_dict(unwrapped, cast_dtype=None)
    except WeightsError:
        raise
    except Exception as exc:  # TorchScript, torch.load and open_clip raise many unrelated types for a foreign file
        raise WeightsError(
            f"{file.path} is not a CLIP ViT-B/32 checkpoint ({type(exc).__name__}): {CLIP_ADVICE}"
        ) from exc
    return model.float()


def _clip_state_dict(file: weights.WeightsFile):
    """OpenAI's TorchScript archive is read for its tensors only (:mod:`ovdet.core.script_archive`), never loaded."""
    if script_archive.is_torchscript(file.data):
        return script_archive.read_tensors(file, "CLIP ViT-B/32 checkpoint", CLIP_ADVICE)
    return checkpoint.load(file, "CLIP")


_ENCODERS: dict[str, Callable[[str, str], TextEncoder]] = {  # EmbeddingSpace.encoder → the encoder of a space
    "clip": lambda space, device: ClipTextEncoder(device=device),
    "mobileclip": lambda space, device: MobileClipTextEncoder(space, device=device),
}
