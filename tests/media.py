"""Clips the tests make themselves: small, from real frames, including truncated and corrupt ones."""

from __future__ import annotations

import builtins
import errno
import os
import struct
import zlib
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


def write_vfr_clip(path: Path, frames: list[np.ndarray], stamps_ms: list[int]) -> Path:
    """Encode BGR frames shown at the given milliseconds (variable frame rate, time base 1/1000) with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image, milliseconds in zip(frames, stamps_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = milliseconds, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """A file with one AAC stream of silence and no video."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = int(44100 * seconds)
        for start in range(0, samples, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_no_frames(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A container with a video stream that holds no frame (AVI keeps such a stream; MP4 drops it)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
        container.mux(stream.encode(None))
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` RGB pixels, with almost no pixel data (decoding fails)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1000))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def refusing_open(*locked: Path):
    """A stand-in for ``builtins.open`` that refuses ``locked`` as an unreadable file does (the tests run as root)."""
    original = builtins.open
    refused = {path.resolve() for path in locked}

    def open_unless_locked(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).resolve() in refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return original(file, *args, **kwargs)

    return open_unless_locked


EMPTY_GRAY = 128  # a uniform mid-gray frame: the test model finds nothing in it (tests/test_empty_frames.py checks)


def empty_frames(count: int, like: np.ndarray) -> list[np.ndarray]:
    """``count`` uniform gray frames of ``like``'s size: frames where nothing is found."""
    return [np.full_like(like, EMPTY_GRAY) for _ in range(count)]
