"""The CLIP text encoder: both checkpoint formats, normalised output, clear errors."""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet import WeightsError
from ovdet.core import weights
from ovdet.prompts.spaces import TextEncoder
from ovdet.prompts.text import ClipTextEncoder
from tests import weights_fixtures


def test_openai_jit_and_open_clip_formats_give_the_same_embeddings(clip_path: Path, tmp_path: Path) -> None:
    state_dict = weights_fixtures.build_clip_checkpoint(tmp_path / "open_clip.pt", fmt="open_clip")
    jit = ClipTextEncoder(clip_path).encode(["a cat", "red backpack"])
    plain = ClipTextEncoder(state_dict).encode(["a cat", "red backpack"])
    np.testing.assert_allclose(jit, plain, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(jit, axis=1), 1.0, rtol=1e-5)
    assert jit.shape == (2, 512) and jit.dtype == np.float32
    assert not np.allclose(jit[0], jit[1])


def test_default_encoder_follows_ovdet_clip_weights(clip_path: Path) -> None:
    encoder = ClipTextEncoder()
    assert encoder.cache_key.endswith(weights.file_sha256(clip_path))
    assert isinstance(encoder, TextEncoder)
    assert encoder.space == "clip:ViT-B/32"
    assert not encoder.loaded
    assert encoder.encode(["bottle"]).shape == (1, 512)


def test_wrong_file_is_a_weights_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a CLIP ViT-B/32 checkpoint"):
        ClipTextEncoder(junk).encode(["x"])
    with pytest.raises(WeightsError, match="does not exist"):
        _ = ClipTextEncoder(tmp_path / "missing.pt").cache_key


def test_registry_clip_loads_from_bytes_that_match_its_published_digest(
    clip_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "weights" / "clip" / "ViT-B-32.pt"
    target.parent.mkdir(parents=True)
    target.symlink_to(clip_path)
    published = hashlib.sha256(clip_path.read_bytes()).hexdigest()
    spec = weights.WEIGHTS["clip-vit-b-32"]
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.delenv("OVDET_CLIP_WEIGHTS")
    monkeypatch.setitem(weights.WEIGHTS, "clip-vit-b-32", replace(spec, sha256=published))
    assert ClipTextEncoder().encode(["bottle"]).shape == (1, 512)


def test_clip_state_dict_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker, evil = tmp_path / "PAYLOAD-RAN", tmp_path / "clip.pt"
    torch.save({"visual.proj": _Touch(marker)}, evil)
    with pytest.raises(WeightsError, match=r"pathlib\.Path.*OVDET_TRUST_WEIGHTS=1"):
        ClipTextEncoder(evil).encode(["x"])
    assert not marker.exists()


class _Touch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)
