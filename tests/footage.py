"""The real footage the test suite reads: excerpts of the shared sample clips that live in the repository.

``tests/data/`` holds the bottle clip and the GIF whole, and of the people clip its first 16 seconds plus the few later
GOPs that hold the frames the test weights are calibrated on. The excerpts are remuxed (packets copied, not re-encoded,
each piece whole GOPs from a keyframe), so their frames decode pixel-identical to the same frames of the shared clips;
the default suite therefore gives the same results in a clone without ``../shared``. ``tests/data/make_excerpts.py``
writes them from ``../shared/data``; tests marked ``shared_media`` read the full clips there and skip without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Excerpt:
    """A file of ``tests/data`` holding the frames ``pieces`` (source frame indices, in order) of a shared clip."""

    name: str
    source: str
    pieces: tuple[range, ...]

    @property
    def path(self) -> Path:
        return DATA / self.name

    @property
    def frames(self) -> tuple[int, ...]:
        """The source frame index of each of the excerpt's frames."""
        return tuple(index for piece in self.pieces for index in piece)


BOTTLES_CLIP = "bottle-detection.mp4"
PEOPLE_CLIP = "one-by-one-person-detection.mp4"
PEOPLE_GIF_CLIP = "people-detection.gif"
SOURCE_FRAMES = {BOTTLES_CLIP: 1189, PEOPLE_CLIP: 1394, PEOPLE_GIF_CLIP: 23}

EXCERPTS = (
    Excerpt(BOTTLES_CLIP, BOTTLES_CLIP, (range(1189),)),  # the whole clip (505 KB), byte-identical
    Excerpt(PEOPLE_GIF_CLIP, PEOPLE_GIF_CLIP, (range(23),)),  # the whole GIF, byte-identical
    Excerpt("one-by-one-person-detection-first-16s.mp4", PEOPLE_CLIP, (range(160),)),
    # The people clip's GOPs (10 frames each) that hold the later frames the tests read: those
    # weights_fixtures.read_calibration_frames(16) and (8) take, and frame 400 (tests/test_parity.py).
    Excerpt(
        "one-by-one-person-detection-some-gops.mp4",
        PEOPLE_CLIP,
        tuple(range(start, min(start + 10, 1394)) for start in (190, 390, 400, 460, 590, 790, 920, 990, 1190, 1390)),
    ),
)
BOTTLES, PEOPLE_GIF, PEOPLE = (excerpt.path for excerpt in EXCERPTS[:3])
PEOPLE_FRAMES = len(EXCERPTS[2].frames)

shared_media = pytest.mark.shared_media
"""For tests that need the full shared clips; they skip with the reason when ``../shared/data`` is absent."""


def shared_clip(name: str) -> Path:
    """The full clip ``name`` in ``../shared/data``; skips the test when it is not there."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(
            f"needs the full sample clip {path} (../shared/data beside the checkout); tests/data holds excerpts only"
        )
    return path


def frames_unlike_the_clip(excerpt: Excerpt, clip: Path) -> list[int]:
    """The source indices of the excerpt's frames that are missing or differ from the frames of the full ``clip``;
    -1 at the end if the excerpt holds more frames than it should."""
    ours, theirs = cv2.VideoCapture(str(excerpt.path)), cv2.VideoCapture(str(clip))
    unlike, index, frame = [], -1, None
    for wanted in excerpt.frames:
        while index < wanted:
            frame = theirs.read()[1]
            index += 1
        ok, mine = ours.read()
        if not ok or frame is None or not np.array_equal(mine, frame):
            unlike.append(wanted)
    if ours.read()[0]:
        unlike.append(-1)
    ours.release()
    theirs.release()
    return unlike


def read_source_frames(source: str, indices: list[int]) -> list[np.ndarray]:
    """Frames ``indices`` of the shared clip ``source``, read from the excerpts in ``tests/data`` that hold them."""
    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    for excerpt in (e for e in EXCERPTS if e.source == source and wanted & set(e.frames)):
        capture = cv2.VideoCapture(str(excerpt.path))
        for index in excerpt.frames:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                found.setdefault(index, frame)
        capture.release()
    missing = sorted(wanted - set(found))
    if missing:
        raise LookupError(
            f"frames {missing} of {source} are in no excerpt of {DATA}: add their GOPs to EXCERPTS in "
            "tests/footage.py and run python -m tests.data.make_excerpts"
        )
    return [found[index] for index in indices]
