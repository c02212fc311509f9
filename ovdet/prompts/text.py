"""Text encoders behind one small interface: ``encode(texts) -> (N, D) float32``, L2-normalised.

:func:`text_encoder_for` picks the encoder of an embedding space: OpenAI's CLIP ViT-B/32 (YOLO-World) here, run
through open_clip from OpenAI's own JIT checkpoint (the ``ViT-B-32.pt`` that Ultralytics caches) or an open_clip
state dict; MobileCLIP-B and MobileCLIP2-B (YOLOE) in :mod:`ovdet.prompts.mobileclip`.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..core import checkpoint, script_archive, weights
from .embeddings import normalize
from ..core.errors import EmbeddingSpaceError, WeightsError, missing_dependency

__all__ = ["ClipTextEncoder", "TextEncoder", "clip_tokens", "text_encoder_for"]

log = logging.getLogger(__name__)

CONTEXT_LENGTH = 77
CLIP_ADVICE = "use OpenAI's ViT-B-32.pt or an open_clip ViT-B-32-quickgelu state dict"


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


def text_encoder_for(space: str, device: str = "cpu") -> TextEncoder:
    """The text encoder whose embeddings a detector of ``space`` was trained on, loaded on first use.

    Args:
        space: ``"clip:ViT-B/32"`` (YOLO-World), ``"mobileclip:blt"`` (YOLOE-v8, YOLOE-11) or ``"mobileclip2:b"``
            (YOLOE-26).
        device: Torch device string for the text tower.

    Example:
        >>> text_encoder_for("mobileclip:blt").space
        'mobileclip:blt'
    """
    from .mobileclip import MOBILECLIP_MODELS, MobileClipTextEncoder

    if space == weights.CLIP_SPACE:
        return ClipTextEncoder(device=device)
    if space in MOBILECLIP_MODELS:
        return MobileClipTextEncoder(space, device=device)
    known = ", ".join((weights.CLIP_SPACE, *MOBILECLIP_MODELS))
    raise EmbeddingSpaceError(
        f"ovdet has no text encoder for the embedding space {space!r} (it knows {known}): pass precomputed "
        f"embeddings of that space as an .npz instead of words"
    )


def clip_tokens(config: str, texts: list[str], stacklevel: int = 2):
    """CLIP's byte-pair tokens of ``texts`` as open_clip's tokenizer for ``config`` gives them: ``(N, 77)`` int64.

    A text over 77 tokens is truncated (its last token becomes the end token) with a warning.
    """
    import open_clip

    tokenizer = open_clip.get_tokenizer(config)
    for text in texts:
        length = len(tokenizer.encode(text)) + 2  # start and end tokens
        if length > CONTEXT_LENGTH:
            warnings.warn(
                f"prompt {text[:40]!r}… is {length} CLIP tokens, over the limit of {CONTEXT_LENGTH}: "
                f"it was truncated; shorten it to keep its end",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
    return tokenizer(texts)


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

    space = weights.CLIP_SPACE
    batch_size = 256

    def __init__(self, weights_path: str | os.PathLike[str] | None = None, device: str = "cpu") -> None:
        weights_path = weights_path or os.environ.get("OVDET_CLIP_WEIGHTS") or None
        self._explicit_path = Path(weights_path).expanduser() if weights_path is not None else None
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @property
    def cache_key(self) -> str:
        """``space@sha256`` of the weights; the published digest is used without reading the file."""
        if self._explicit_path is None:
            return f"{self.space}@{weights.WEIGHTS['clip-vit-b-32'].sha256}"
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

        tokens = self._tokenize(list(texts))
        rows = []
        with torch.inference_mode():
            for chunk in tokens.split(self.batch_size):
                rows.append(model.encode_text(chunk.to(self.device)).float().cpu().numpy())
        return normalize(np.concatenate(rows, axis=0))

    def _tokenize(self, texts: list[str]):
        return clip_tokens("ViT-B-32-quickgelu", texts, stacklevel=4)

    def load(self):
        """The open_clip CLIP model (text tower only), loaded on first use."""
        with self._lock:
            if self._model is None:
                self._model = self._build()
        return self._model

    def _build(self):
        try:
            import open_clip  # noqa: F401
            import torch
        except ImportError as exc:
            raise missing_dependency(exc.name or "open_clip", "torch", "encoding text prompts") from exc
        path = self._explicit_path or weights.resolve_spec(weights.WEIGHTS["clip-vit-b-32"])
        log.debug("loading CLIP text encoder from %s", path)
        model = _load_clip(weights.read_weights(path, check_registry=self._explicit_path is None))
        if model.transformer.width != 512 or model.text_projection.shape[-1] != 512:
            raise WeightsError(f"{path} is a CLIP model of another size: ovdet's detectors need ViT-B/32")
        model.visual = None  # only the text tower is used; frees memory
        return model.to(torch.device(self.device)).eval()


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
