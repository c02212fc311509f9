"""YOLOE's text encoders: MobileCLIP-B (space ``mobileclip:blt``, YOLOE-v8 and YOLOE-11) and MobileCLIP2-B
(``mobileclip2:b``, YOLOE-26), run as open_clip's text tower of the ``MobileCLIP-B`` / ``MobileCLIP2-B`` config.

Two file formats fill that tower:

- Ultralytics' TorchScript files ``mobileclip_blt.ts`` and ``mobileclip2_b.ts`` (the registry's, under
  ``mobileclip/`` in the weights folder);
- an open_clip checkpoint of the same config (a state dict of the whole CLIP or of its text tower, as a
  ``torch.save`` file or ``.safetensors``), named by ``$OVDET_MOBILECLIP_WEIGHTS`` or ``$OVDET_MOBILECLIP2_WEIGHTS``
  (which may also name a ``.ts``).

Tensor names may follow open_clip (``token_embedding``, ``transformer.resblocks.N``) under any prefix, or Apple's
``mobileclip`` package (``embedding_layer``, ``pre_norm_mha``), renamed as open_clip's own converter renames them.

No code of the file ever runs. A ``.ts`` archive is never given to ``torch.jit.load``, which would run the
``__setstate__`` code of its scripted classes while loading: its tensors are read from the zip without it
(:mod:`ovdet.core.script_archive`), and a state dict is unpickled restricted to tensors (``checkpoint``). ovdet loads
only bytes it has hashed: a registry file must match the SHA-256 pinned on its first use (pinned only once its
tensors loaded as this tower), a file named by the variables above is the user's own choice.

A file that holds OpenAI's CLIP ViT-B/32 (its vision tower or its TorchScript buffers show it) is refused for a
MobileCLIP space. MobileCLIP-B and MobileCLIP2-B text towers cannot be told apart: same configuration, same tensor
names and shapes; only their values differ. Which space a file is for is what its place or variable says.

Tokens are CLIP's byte-pair tokens framed by start and end tokens and zero-padded to 77, as Ultralytics'
``clip.clip.tokenize`` gives them for the ``.ts`` and open_clip's tokenizer for these configs; ovdet's torch-free
:class:`~ovdet.prompts.tokenizer.ClipTokenizer` gives them (the tests check it against open_clip's). The tower pools
the end token (the largest id) and projects; Ultralytics' ``.ts`` L2-normalises inside the graph, ovdet right after
it: the output is the same.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import checkpoint, script_archive, weights
from ..core.errors import ConfigError, WeightsError, missing_dependency
from .embeddings import normalize
from .spaces import CLIP_SPACE, MOBILECLIP_SPACE, SPACES, EmbeddingSpace
from .tokenizer import ClipTokenizer

__all__ = ["MOBILECLIP_SPACES", "MobileClipTextEncoder"]

log = logging.getLogger(__name__)

MOBILECLIP_SPACES = tuple(name for name, space in SPACES.items() if space.encoder == "mobileclip")
_OPEN_CLIP_MARKER = "token_embedding.weight"
_APPLE_MARKER = "embedding_layer.weight"
_CLIP_MARKERS = ("visual.conv1.weight", "visual.class_embedding", "input_resolution")  # OpenAI's ViT-B/32
_APPLE_RENAMES = (  # Apple's mobileclip text encoder → open_clip's TextTransformer, as open_clip/convert.py
    ("projection_layer", "text_projection"),
    ("embedding_layer", "token_embedding"),
    ("positional_embedding.pos_embed.pos_embed", "positional_embedding"),
    ("final_layer_norm", "ln_final"),
    ("pre_norm_mha.0", "ln_1"),
    ("pre_norm_mha.1", "attn"),
    ("pre_norm_ffn.0", "ln_2"),
    ("pre_norm_ffn.1", "mlp.c_fc"),
    ("pre_norm_ffn.4", "mlp.c_proj"),
    ("qkv_proj.weight", "in_proj_weight"),
    ("qkv_proj.bias", "in_proj_bias"),
)


class MobileClipTextEncoder:
    """MobileCLIP-B or MobileCLIP2-B text tower through open_clip, loaded on first use.

    Args:
        space: ``"mobileclip:blt"`` or ``"mobileclip2:b"``.
        weights_path: A ``.ts`` or open_clip checkpoint; by default the space's variable if set, else the
            registry's TorchScript file in the weights folder (downloaded, and pinned on first use).
        device: Torch device string for the text tower.

    Example:
        >>> encoder = MobileClipTextEncoder("mobileclip:blt")  # doctest: +SKIP
        >>> encoder.encode(["red backpack"]).shape  # doctest: +SKIP
        (1, 512)
    """

    batch_size = 256

    def __init__(
        self,
        space: str = MOBILECLIP_SPACE,
        weights_path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
    ) -> None:
        if space not in MOBILECLIP_SPACES:
            raise ConfigError(f"{space!r} is not a MobileCLIP space: use one of {', '.join(MOBILECLIP_SPACES)}")
        self.embedding_space = SPACES[space]
        self.space = space
        weights_path = weights_path or os.environ.get(self.embedding_space.variable) or None
        self._explicit_path = Path(weights_path).expanduser() if weights_path is not None else None
        self.device = device
        self._tower = None
        self._tokenizer: ClipTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def cache_key(self) -> str:
        """``space@sha256`` of the weights; a pinned digest is used without reading the file."""
        if self._explicit_path is not None:
            if not self._explicit_path.is_file():
                raise WeightsError(
                    f"{self.embedding_space.config} weights file {self._explicit_path} does not exist: check the "
                    f"path in {self.embedding_space.variable}"
                )
            return f"{self.space}@{weights.file_sha256(self._explicit_path)}"
        spec = weights.WEIGHTS[self.embedding_space.weights]
        digest = weights.known_sha256(spec) or weights.file_sha256(weights.resolve_spec(spec))
        return f"{self.space}@{digest}"

    @property
    def loaded(self) -> bool:
        """Whether the text tower is in memory."""
        return self._tower is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode prompts; prompts longer than 77 tokens are truncated with a warning."""
        tower = self.load()  # first: it says what to install where torch is missing
        import torch

        tokens = torch.from_numpy(self._tokenizer(list(texts)))
        rows = []
        with torch.inference_mode():
            for chunk in tokens.split(self.batch_size):
                rows.append(tower(chunk.to(self.device)).float().cpu().numpy())
        return normalize(np.concatenate(rows, axis=0))

    def load(self):
        """open_clip's text tower (``input_ids`` → features, not normalised), loaded on first use."""
        with self._lock:
            if self._tower is None:
                self._tower, self._tokenizer = self._build()
        return self._tower

    def _build(self) -> tuple[Any, ClipTokenizer]:
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise missing_dependency(exc.name or "open_clip", "torch", "encoding text prompts") from exc
        spec = weights.WEIGHTS[self.embedding_space.weights]
        path = self._explicit_path or weights.resolve_spec(spec)
        log.debug("loading the %s text encoder from %s", self.embedding_space.config, path)
        file = weights.read_weights(path, check_registry=self._explicit_path is None)
        tower = _load_tower(file, self.embedding_space)
        weights.pin_first_use(file)
        tokenizer = ClipTokenizer(open_clip.tokenizer.default_bpe(), self.embedding_space.context_length)
        return tower.to(torch.device(self.device)).eval(), tokenizer


def _load_tower(file: weights.WeightsFile, space: EmbeddingSpace):
    """open_clip's text tower of ``space.config``, filled from the tensors of a ``.ts`` or an open_clip checkpoint."""
    import open_clip
    from open_clip.model import _build_text_tower  # the builder open_clip's own CLIP classes use

    config = open_clip.get_model_config(space.config)
    tower = _build_text_tower(config["embed_dim"], config["text_cfg"])
    try:
        state = _tensors(file, space)
        _refuse_clip(state, file, space)
        result = tower.load_state_dict(_text_tower_tensors(state, file, space), strict=False)
    except WeightsError:
        raise
    except Exception as exc:  # torch.load and load_state_dict raise many types for a foreign file
        raise WeightsError(
            f"{file.path} is not a {space.config} text encoder ({type(exc).__name__}): {_advice(space)}"
        ) from exc
    if result.missing_keys:
        raise WeightsError(
            f"{file.path} lacks {result.missing_keys[0]} of the {space.config} text tower: {_advice(space)}"
        )
    return tower.float()


def _advice(space: EmbeddingSpace) -> str:
    script = Path(weights.WEIGHTS[space.weights].filename).name
    return f"use Ultralytics' {script} or an open_clip {space.config} checkpoint"


def _refuse_clip(state: dict, file: weights.WeightsFile, space: EmbeddingSpace) -> None:
    """OpenAI's CLIP ViT-B/32 has a text tower of MobileCLIP's very shapes; its vision tower or its TorchScript
    buffers give it away (MobileCLIP's vision tower is timm's, named ``visual.trunk.*``)."""
    if any(isinstance(name, str) and name.endswith(_CLIP_MARKERS) for name in state):
        raise WeightsError(
            f"{file.path} is OpenAI's CLIP ViT-B/32 (space {CLIP_SPACE}), not a {space.config} text encoder "
            f"(space {space.name}): its embeddings would mean nothing to this model; {_advice(space)}"
        )


def _tensors(file: weights.WeightsFile, space: EmbeddingSpace) -> dict:
    if _is_safetensors(file.data):
        from safetensors.torch import load  # open_clip's own dependency

        return load(file.data)
    if script_archive.is_torchscript(file.data):
        return script_archive.read_tensors(file, f"{space.config} text encoder", _advice(space))
    state = checkpoint.load(file, "MobileCLIP")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    return state if isinstance(state, dict) else {}


def _is_safetensors(data: bytes) -> bool:
    """A safetensors file starts with the length of its JSON header (8 bytes, little-endian), then the header."""
    return len(data) > 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data)


def _text_tower_tensors(state: dict, file: weights.WeightsFile, space: EmbeddingSpace) -> dict:
    """The text tower's tensors under open_clip's names, from either layout, whatever prefix they carry."""
    for marker, apple in ((_OPEN_CLIP_MARKER, False), (_APPLE_MARKER, True)):
        key = next((name for name in state if isinstance(name, str) and name.endswith(marker)), None)
        if key is not None:
            prefix = key[: -len(marker)]
            tower = {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}
            return _from_apple_names(tower) if apple else tower
    raise WeightsError(f"{file.path} holds no text tower (no tensor named *{_OPEN_CLIP_MARKER}): {_advice(space)}")


def _from_apple_names(tower: dict) -> dict:
    renamed = {}
    for name, value in tower.items():
        for old, new in _APPLE_RENAMES:
            name = name.replace(old, new)
        name = re.sub(r"^transformer\.(\d+)\.", r"transformer.resblocks.\1.", name)
        renamed[name] = value.squeeze() if name == "positional_embedding" else value
    return renamed
