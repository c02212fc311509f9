"""Crops are named by track id and class; whatever a class is called, the file lands in the crops folder."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from ovdet.io.crops import crop_name


@example(name="\U00020000" * 200, track=10**9)  # letters of four bytes each
@given(name=st.text(max_size=200), track=st.one_of(st.none(), st.integers(0, 10**9)))
def test_any_class_name_gives_one_plain_file_name(name: str, track: int | None) -> None:
    stem = crop_name(track, name)
    assert os.sep not in stem and "/" not in stem and "\0" not in stem
    assert Path(stem).name == stem and stem not in ("", ".", "..") and len(stem.encode()) < 255 - 30
    assert stem.startswith("untracked_" if track is None else f"track-{track:06d}_")
