"""Embeddings: normalisation, the .npz form, and refusing another embedding space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ovdet import Embeddings, EmbeddingSpaceError, SourceError, VocabularyError
from ovdet.prompts.classes import ClassTable
from ovdet.prompts.vocabulary import BACKGROUND_PROMPT, Vocabulary, VocabularyClass


def test_rows_are_normalised_and_shapes_checked() -> None:
    embeddings = Embeddings(["a", "b"], np.array([[3.0, 4.0], [0.0, 2.0]]), "clip:ViT-B/32")
    np.testing.assert_allclose(embeddings.vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert embeddings.vectors.dtype == np.float32
    with pytest.raises(VocabularyError, match="2 names, 1 rows"):
        Embeddings(["a", "b"], np.ones((1, 4)), "clip:ViT-B/32")
    with pytest.raises(VocabularyError, match="NaN"):
        Embeddings(["a"], np.full((1, 4), np.nan), "clip:ViT-B/32")
    with pytest.raises(VocabularyError, match=r"embedding of 'b' \(row 2\) is all zeros"):
        Embeddings(["a", "b"], np.array([[1.0, 0.0], [0.0, 0.0]]), "clip:ViT-B/32")


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


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_npz_contents_are_checked_and_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def saved(**changes) -> Path:
        arrays = {"names": np.array(["a"]), "vectors": np.ones((1, 512)), "space": np.array("clip:ViT-B/32"), **changes}
        np.savez(tmp_path / "vocab.npz", **arrays)
        return tmp_path / "vocab.npz"

    with pytest.raises(VocabularyError, match=r"vocab\.npz: the embedding of 'a' \(row 1\) is all zeros"):
        Embeddings.load(saved(vectors=np.zeros((1, 512))))
    with pytest.raises(VocabularyError, match=r"vocab\.npz: embeddings are 7 wide, but space 'clip:ViT-B/32' has 512"):
        Embeddings.load(saved(vectors=np.ones((1, 7))))
    with pytest.raises(VocabularyError, match=r"vocab\.npz: vectors are of type <U1, not numbers"):
        Embeddings.load(saved(vectors=np.full((1, 512), "x")))
    with pytest.raises(VocabularyError, match=r"vocab\.npz: meta is not a JSON object"):
        Embeddings.load(saved(meta=np.array("[]")))
    names = np.empty(1, dtype=object)
    names[0] = _Payload(tmp_path / "PWNED")
    with pytest.raises(SourceError, match=r"vocab\.npz is not a readable .*allow_pickle=False"):
        Embeddings.load(saved(names=names))
    assert not (tmp_path / "PWNED").exists()
    monkeypatch.setattr("ovdet.prompts.embeddings.MAX_NPZ_BYTES", 1000)
    with pytest.raises(SourceError, match=r"vocab\.npz unpacks to 0 MiB, over the 0 MiB"):
        Embeddings.load(saved())


def test_width_is_checked_against_the_space(session_detector) -> None:
    narrow = Embeddings(["cat"], np.ones((1, 7)), "clip:ViT-B/32")
    with pytest.raises(VocabularyError, match="7 wide"):
        session_detector.set_classes(narrow)


def test_other_space_is_refused_by_the_detector(session_detector) -> None:
    foreign = Embeddings(["cat"], np.ones((1, 512)), "mobileclip:s0")
    with pytest.raises(EmbeddingSpaceError, match=r"'mobileclip:s0'.*'clip:ViT-B/32'"):
        session_detector.set_classes(foreign)


def _vocabulary_embeddings() -> tuple[Vocabulary, Embeddings]:
    vocabulary = Vocabulary(
        (VocabularyClass("pump", ("IV pump", "pump"), 0.3, "#ff0000"), VocabularyClass("person", ("person",))),
        templates=("a photo of a {}",),
        decoys=("toy pump",),
        background=(BACKGROUND_PROMPT,),
    )
    names = ("pump", "person", "decoy:toy pump", "background")
    vectors = np.random.default_rng(0).normal(size=(4, 512))
    return vocabulary, Embeddings(names, vectors, "clip:ViT-B/32", vocabulary=vocabulary)


def _save_as_before_the_class_table(embeddings: Embeddings, path: Path) -> Path:
    """Embeddings.save as it was before the class table: the vocabulary inside the meta JSON."""
    arrays = {"names": np.array(embeddings.names, dtype=str), "vectors": embeddings.vectors}
    meta = {**embeddings.meta, "vocabulary": embeddings.vocabulary.to_dict()}
    np.savez(path, **arrays, space=np.array(embeddings.space), meta=np.array(json.dumps(meta)))
    return path


def test_npz_stores_the_class_table_as_plain_arrays(tmp_path: Path) -> None:
    vocabulary, embeddings = _vocabulary_embeddings()
    with np.load(embeddings.save(tmp_path / "vocab.npz"), allow_pickle=False) as data:
        assert data["reported"].tolist() == [True, True, False, False]
        np.testing.assert_array_equal(data["thresholds"], [0.3, np.nan, np.nan, np.nan])
        assert data["colors"].tolist() == ["#ff0000", "", "", ""]
        assert json.loads(str(data["meta"])) == {}
        assert json.loads(str(data["vocabulary"])) == vocabulary.to_dict()
    loaded = ClassTable.of_embeddings(Embeddings.load(tmp_path / "vocab.npz"))
    assert loaded.vocabulary == vocabulary and loaded.rows == embeddings.names
    assert (loaded.reported, loaded.thresholds, loaded.colors) == (
        (True, True, False, False),
        (0.3, None, None, None),
        ("#ff0000", None, None, None),
    )
    np.testing.assert_array_equal(loaded.vectors, embeddings.vectors)


def test_npz_written_before_the_class_table_still_loads(tmp_path: Path) -> None:
    vocabulary, embeddings = _vocabulary_embeddings()
    old = ClassTable.of_embeddings(Embeddings.load(_save_as_before_the_class_table(embeddings, tmp_path / "old.npz")))
    new = ClassTable.of_embeddings(Embeddings.load(embeddings.save(tmp_path / "new.npz")))
    assert old.vocabulary == new.vocabulary == vocabulary
    assert (old.rows, old.reported, old.thresholds, old.colors) == (new.rows, new.reported, new.thresholds, new.colors)
    np.testing.assert_array_equal(old.vectors, new.vectors)


DATA = Path(__file__).parent / "data"  # .npz files earlier ovdet versions wrote, with Embeddings.save:
# embed-*: _vocabulary_embeddings()'s names and vocabulary (what ovdet embed writes), plain-*: ("pump", "person") in
# space mobileclip:blt without a vocabulary; e08359d stored the vocabulary inside meta, 164592d as the class table.
COMMITS = ["e08359d", "164592d"]


@pytest.mark.parametrize("commit", COMMITS)
def test_npz_files_written_by_earlier_versions_load_with_their_vocabulary(commit: str) -> None:
    vocabulary, embeddings = _vocabulary_embeddings()
    loaded = Embeddings.load(DATA / f"embed-{commit}.npz")
    assert loaded.vocabulary == vocabulary and loaded.meta == {}
    table = ClassTable.of_embeddings(loaded)
    assert (table.rows, table.reported, table.thresholds, table.colors) == (
        embeddings.names,
        (True, True, False, False),
        (0.3, None, None, None),
        ("#ff0000", None, None, None),
    )
    plain = Embeddings.load(DATA / f"plain-{commit}.npz")
    assert (plain.vocabulary, plain.space) == (None, "mobileclip:blt")
    assert plain.as_vocabulary() == Vocabulary.from_names(["pump", "person"])


def test_npz_written_now_holds_the_very_arrays_the_earlier_version_wrote(tmp_path: Path) -> None:
    """So ovdet from before the vocabulary became a field reads what ``ovdet embed`` writes now."""
    written = Embeddings.load(DATA / "embed-164592d.npz").save(tmp_path / "again.npz")
    with np.load(DATA / "embed-164592d.npz") as before, np.load(written) as now:
        assert now.files == before.files
        for name in before.files:  # the vectors are normalised again on loading: equal to a rounding
            assert now[name].dtype == before[name].dtype, name
            if name == "vectors":
                np.testing.assert_allclose(now[name], before[name], rtol=1e-6)
            else:
                np.testing.assert_array_equal(now[name], before[name], err_msg=name)
