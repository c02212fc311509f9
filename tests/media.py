"""Clips the tests make themselves: small, from real frames, including truncated and corrupt ones."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.conftest import BOTTLES, PEOPLE, read_frames


def small_frames(count: int, size: tuple[int, int] = (192, 112), people: bool = False) -> list[np.ndarray]:
    """``count`` consecutive real frames of the bottle (or people) clip, resized to ``size`` (width, height)."""
    return [cv2.resize(frame, size) for frame in read_frames(PEOPLE if people else BOTTLES, count, step=2)]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: Fraction = Fraction(25),
    codec: str = "libx264",
    keyframe_interval: int = 250,
    **options: str,
) -> Path:
    """Encode BGR frames into ``path`` (container from the suffix, container ``options``) with PyAV."""
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.options = {"g": str(keyframe_interval)}
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p" if codec != "gif" else "rgb8"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def truncate(path: Path, keep: float) -> Path:
    """Cut the file to its first ``keep`` fraction of bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def corrupt_middle(path: Path, start: float = 0.4, length: int = 4000) -> Path:
    """Overwrite ``length`` bytes from ``start`` (fraction of the file) with noise."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * start)
    data[offset : offset + length] = np.random.default_rng(0).integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path
