"""Fixtures the hostile-input suites share."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.media import small_frames


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """One real frame as ``inputs/frame.png``: the input that every case checks is left byte-identical."""
    path = tmp_path / "inputs" / "frame.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), small_frames(1)[0])
    return path
