"""The footage in tests/data: small, credited, and frame for frame the shared clips it stands for."""

from __future__ import annotations

import cv2
import pytest

from tests.footage import DATA, EXCERPTS, Excerpt, frames_unlike_the_clip, shared_clip, shared_media

LIMIT_BYTES = 2_000_000


def test_the_footage_in_the_repository_is_small_and_credited() -> None:
    files = [path for path in DATA.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    assert sum(path.stat().st_size for path in files) <= LIMIT_BYTES
    assert {path.suffix for path in files} <= {".mp4", ".gif", ".md", ".txt", ".py"}
    credit = (DATA / "README.md").read_text()
    assert "© Intel Corporation" in credit and "5797889" in credit and "LICENSE-CC-BY-4.0.txt" in credit
    assert "Attribution 4.0 International" in (DATA / "LICENSE-CC-BY-4.0.txt").read_text()
    assert all(excerpt.name in credit for excerpt in EXCERPTS)


@pytest.mark.parametrize("excerpt", EXCERPTS, ids=lambda excerpt: excerpt.name)
def test_each_excerpt_holds_the_frames_it_stands_for(excerpt: Excerpt) -> None:
    capture = cv2.VideoCapture(str(excerpt.path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == len(excerpt.frames)


@shared_media
@pytest.mark.parametrize("excerpt", EXCERPTS, ids=lambda excerpt: excerpt.name)
def test_excerpt_frames_are_pixel_identical_to_the_shared_clip(excerpt: Excerpt) -> None:
    """What makes the suite's results the same with or without ../shared: the remux kept every pixel."""
    assert frames_unlike_the_clip(excerpt, shared_clip(excerpt.source)) == []
