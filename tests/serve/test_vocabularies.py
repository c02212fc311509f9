"""The vocabulary store: any name either stays a file directly inside the folder, or is refused."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovdet.core.errors import VocabularyError
from ovdet.serve.vocabularies import InvalidName, UnknownVocabulary, VocabularyStore

NAMES = st.one_of(
    st.text(max_size=70),
    st.text(alphabet="./\\-_aZ09%~ \x00", max_size=12),
    st.sampled_from(["..", "../x", "a/../../b", "/etc/passwd", "C:\\x", ".hidden", "ok-name_1.v2"]),
)


@settings(max_examples=200, deadline=None)
@given(NAMES)
def test_a_name_is_a_file_inside_the_folder_or_refused(name: str):
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "vocabularies"
        store = VocabularyStore(folder)
        try:
            store.put(name, b"classes:\n  bottle:\n")
        except InvalidName as exc:
            assert "\n" not in str(exc)
            assert sorted(Path(root).rglob("*")) == [folder]
            return
        assert [path.name for path in Path(root).rglob("*") if path.is_file()] == [f"{name}.yaml"]
        assert (folder / f"{name}.yaml").is_file() and store.names() == [name]
        assert store.load(name).names == ("bottle",)


def test_a_refused_body_stores_nothing_and_an_unknown_name_is_unknown(tmp_path: Path):
    store = VocabularyStore(tmp_path)
    with pytest.raises(VocabularyError, match=r"vocabulary ward:1: byte|not UTF-8"):
        store.put("ward", b"classes: [caf\xe9]\n")
    with pytest.raises(UnknownVocabulary, match="no vocabulary named 'ward'"):
        store.load("ward")
    assert list(tmp_path.iterdir()) == []
