"""Embeddings: normalisation, the .npz form, and refusing another embedding space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovdet import Embeddings, EmbeddingSpaceError, SourceError, VocabularyError


def test_rows_are_normalised_and_shapes_checked() -> None:
    embeddings = Embeddings(["a", "b"], np.array([[3.0, 4.0], [0.0, 2.0]]), "clip:ViT-B/32")
    np.testing.assert_allclose(embeddings.vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert embeddings.vectors.dtype == np.float32
    with pytest.raises(VocabularyError, match="2 names, 1 rows"):
        Embeddings(["a", "b"], np.ones((1, 4)), "clip:ViT-B/32")
    with pytest.raises(VocabularyError, match="NaN"):
        Embeddings(["a"], np.full((1, 4), np.nan), "clip:ViT-B/32")


def test_npz_round_trip(tmp_path: Path) -> None:
    original = Embeddings(["red backpack", "pump"], np.random.default_rng(0).normal(size=(2, 512)), "clip:ViT-B/32")
    path = original.save(tmp_path / "vocab.npz")
    loaded = Embeddings.load(path)
    assert loaded.names == original.names and loaded.space == original.space
    np.testing.assert_array_equal(loaded.vectors, original.vectors)
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.npz"]


def test_bad_npz_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        Embeddings.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(SourceError, match="not a readable"):
        Embeddings.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", names=np.array(["a"]))
    with pytest.raises(SourceError, match="lacks space, vectors"):
        Embeddings.load(tmp_path / "partial.npz")


def test_other_space_is_refused_by_the_detector(session_detector) -> None:
    foreign = Embeddings(["cat"], np.ones((1, 512)), "mobileclip:s0")
    with pytest.raises(EmbeddingSpaceError, match=r"'mobileclip:s0'.*'clip:ViT-B/32'"):
        session_detector.set_classes(foreign)
