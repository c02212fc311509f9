"""YOLOE's text encoders: both file formats agree with each other, with Ultralytics and with the ONNX tower.

The towers are random-init MobileCLIP-B and MobileCLIP2-B (tests/mobileclip_fixtures.py), each saved as
Ultralytics' TorchScript file and as an open_clip checkpoint from the same weights.
"""

from __future__ import annotations

import hashlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from ovdet import EmbeddingSpaceError, WeightsError
from ovdet.export.text_towers import write_text_tower
from ovdet.prompts.cache import EmbeddingCache, encode_cached
from ovdet.prompts.mobileclip import MOBILECLIP_SPACES, MobileClipTextEncoder
from ovdet.prompts.spaces import SPACES as SPACE_TABLE
from ovdet.prompts.spaces import TextEncoder
from ovdet.prompts.text import text_encoder_for
from ovdet.prompts.tokenizer import ClipTokenizer
from ovdet.runtimes.text_model import OnnxTextEncoder
from tests.export.test_export_tokenizer import PROMPTS

SPACES = list(MOBILECLIP_SPACES)
CLASSES = ["red backpack", "person wearing sunglasses", "bottle"]  # three rows: not the traced batch of two


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(open_clip.tokenizer.default_bpe(), 77)


@pytest.fixture(scope="module")
def encoders(mobileclip_paths) -> dict[str, MobileClipTextEncoder]:
    """Each space's default encoder: the registry's ``.ts`` in the session's weights folder."""
    return {space: text_encoder_for(space) for space in SPACES}


@pytest.mark.parametrize("space", SPACES)
def test_open_clip_tokens_of_each_config_equal_ovdets_torch_free_tokenizer(space: str, tokenizer) -> None:
    # Ultralytics tokenizes for its .ts with clip.clip.tokenize: OpenAI's CLIP tokenizer, the same BPE, cleaning,
    # framing, truncation and padding that open_clip's SimpleTokenizer reproduces.
    ours = tokenizer(PROMPTS)
    expected = open_clip.get_tokenizer(SPACE_TABLE[space].config)(PROMPTS).numpy()
    assert ours.tolist() == expected.tolist()


@pytest.mark.parametrize("space", SPACES)
def test_torchscript_and_open_clip_files_give_the_same_embeddings(space: str, mobileclip_paths, encoders) -> None:
    files = mobileclip_paths[space]
    assert encoders[space].cache_key == f"{space}@{hashlib.sha256(files['torchscript'].read_bytes()).hexdigest()}"
    script = encoders[space].encode(CLASSES)
    state = MobileClipTextEncoder(space, files["open_clip"]).encode(CLASSES)
    np.testing.assert_allclose(script, state, atol=1e-6)
    assert script.shape == (3, 512) and script.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(script, axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(script[0], script[1], atol=1e-3)


@pytest.mark.parametrize("space", SPACES)
def test_ultralytics_mobileclipts_gives_ovdets_embeddings(
    space: str, mobileclip_paths, encoders, tokenizer, monkeypatch
):
    # Ultralytics' text_model imports the git-only `clip` package at import time; its tokenizer is stubbed with
    # ovdet's, which the test above shows equal to CLIP's.
    clip_stub = types.ModuleType("clip")
    clip_stub.clip = types.SimpleNamespace(tokenize=lambda texts, truncate=True: torch.from_numpy(tokenizer(texts)))
    monkeypatch.setitem(sys.modules, "clip", clip_stub)
    monkeypatch.delitem(sys.modules, "ultralytics.nn.text_model", raising=False)
    from ultralytics.nn.text_model import MobileCLIPTS

    path = mobileclip_paths[space]["torchscript"]
    reference = MobileCLIPTS(torch.device("cpu"), weight=str(path))
    expected = reference.encode_text(reference.tokenize(CLASSES)).numpy()
    np.testing.assert_allclose(encoders[space].encode(CLASSES), expected, atol=1e-6)


def test_each_space_has_its_own_cache_entries(encoders) -> None:
    fresh = text_encoder_for("mobileclip:blt")
    assert isinstance(fresh, TextEncoder) and fresh.cache_key == encoders["mobileclip:blt"].cache_key
    assert not fresh.loaded  # the pinned digest names the weights without reading them
    blt, b2 = encoders["mobileclip:blt"], encoders["mobileclip2:b"]
    cache = EmbeddingCache()
    first, second = encode_cached(blt, cache, ["bottle"]), encode_cached(b2, cache, ["bottle"])
    assert not np.allclose(first, second, atol=1e-3)
    np.testing.assert_array_equal(encode_cached(blt, cache, ["bottle"]), first)


def test_apple_tensor_names_in_a_safetensors_file_load_as_the_same_tower(mobileclip_paths, encoders, tmp_path) -> None:
    """Apple's mobileclip layout (``text_encoder.embedding_layer`` …), which Ultralytics' ``.ts`` may carry, here in
    a ``.safetensors`` file (the format Hugging Face serves open_clip checkpoints in)."""
    from safetensors.torch import save_file

    space = "mobileclip:blt"
    tower = torch.load(mobileclip_paths[space]["open_clip"], weights_only=True)
    apple = {_apple_name(name): value for name, value in tower.items() if name.startswith("text.")}
    position = "text_encoder.positional_embedding.pos_embed.pos_embed"
    apple[position] = apple[position][None, None].contiguous()
    save_file(apple, tmp_path / "mobileclip_blt_apple.safetensors")
    renamed = MobileClipTextEncoder(space, tmp_path / "mobileclip_blt_apple.safetensors").encode(CLASSES)
    np.testing.assert_allclose(renamed, encoders[space].encode(CLASSES), atol=1e-6)


def _apple_name(name: str) -> str:
    name = name.removeprefix("text.")
    for ours, apple in (
        ("text_projection", "projection_layer"),
        ("token_embedding", "embedding_layer"),
        ("positional_embedding", "positional_embedding.pos_embed.pos_embed"),
        ("ln_final", "final_layer_norm"),
        ("ln_1", "pre_norm_mha.0"),
        ("attn.in_proj_", "pre_norm_mha.1.qkv_proj."),
        ("attn.", "pre_norm_mha.1."),
        ("ln_2", "pre_norm_ffn.0"),
        ("mlp.c_fc", "pre_norm_ffn.1"),
        ("mlp.c_proj", "pre_norm_ffn.4"),
    ):
        name = name.replace(ours, apple)
    return "text_encoder." + re.sub(r"resblocks\.(\d+)\.", r"\1.", name)


def test_exported_onnx_tower_equals_the_pytorch_encoder(encoders, tmp_path: Path) -> None:
    encoder = encoders["mobileclip:blt"]
    info = write_text_tower(encoder, tmp_path)
    onnx = OnnxTextEncoder(tmp_path / info.model_file, tmp_path / info.vocab_file, info.cache_key, encoder.space)
    prompts = [*CLASSES, "a much longer prompt about a person carrying a red backpack across the street"]
    np.testing.assert_allclose(onnx.encode(prompts), encoder.encode(prompts), atol=1e-4)
    assert info.cache_key == encoder.cache_key
    space = SPACE_TABLE[encoder.space]
    assert (info.model_file, info.vocab_file, info.context_length) == (space.tower, space.tokenizer, 77)


def test_a_file_of_another_kind_is_one_weights_error(mobileclip_paths, clip_path: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match=r"junk\.ts is not a MobileCLIP-B text encoder .*mobileclip_blt\.ts"):
        MobileClipTextEncoder("mobileclip:blt", junk).encode(["x"])
    torch.save({"visual.weight": torch.zeros(2)}, tmp_path / "vision_only.pt")
    with pytest.raises(WeightsError, match="holds no text tower"):
        MobileClipTextEncoder("mobileclip2:b", tmp_path / "vision_only.pt").encode(["x"])


def test_an_unknown_space_has_no_encoder() -> None:
    with pytest.raises(EmbeddingSpaceError, match=r"no text encoder for the embedding space 'siglip:b'.*mobileclip2:b"):
        text_encoder_for("siglip:b")
