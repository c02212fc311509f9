"""Frame sources: image files and folders, video files, webcams and network streams, as one iterator of frames.

Every frame keeps its source, its index in the source and its timestamp in seconds, read from the container
(``None`` for still images). Video is decoded with PyAV; webcams go through OpenCV.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ConfigError, OvdetError, SourceError
from .images import expand_image_source, load_image

__all__ = [
    "VIDEO_SUFFIXES",
    "Frame",
    "FrameSource",
    "ImageSequence",
    "LiveStream",
    "VideoFile",
    "Webcam",
    "open_source",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded image and where it came from.

    Attributes:
        image: HxWx3 BGR uint8 pixels.
        index: Position in the source (the frame number of a video; 0 for a still image).
        timestamp: Seconds from the start of the source, from the container; ``None`` for still images.
        source: The file, URL or device the frame came from.
    """

    image: np.ndarray
    index: int
    timestamp: float | None
    source: str

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def height(self) -> int:
        return self.image.shape[0]


class FrameSource:
    """Base of every source: iterate it for frames; ``close`` releases the device or file.

    Attributes:
        name: What the user passed, for messages and outputs.
        live: Frames arrive in real time (webcam, network stream); there is no known end.
        fps: Frames per second of the source, where known.
        total: Frames the iteration will yield (after ``vid_stride``), where known.
    """

    name: str = ""
    live: bool = False
    fps: Fraction | None = None
    total: int | None = None

    def warn(self, message: str) -> None:
        """Report a problem with the input; a reader thread replaces this to pass warnings on in frame order."""
        warnings.warn(message, UserWarning, stacklevel=3)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds; safe to call twice."""


def open_source(source: str | int | os.PathLike[str], *, vid_stride: int = 1, reconnect_timeout: float = 30.0):
    """Pick the source type for what the user passed.

    Args:
        source: An image, folder or glob; a video file; a webcam index (``0`` or ``"0"``); or a stream URL.
        vid_stride: Keep every n-th frame of a video or stream.
        reconnect_timeout: Seconds a dropped live stream may stay away before ovdet gives up.

    Example:
        >>> source = open_source("../shared/data/bottle-detection.mp4", vid_stride=2)  # doctest: +SKIP
        >>> next(iter(source)).index  # doctest: +SKIP
        0
    """
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, int) or vid_stride < 1:
        raise ConfigError(f"vid_stride must be a positive integer, got {vid_stride!r}")
    text = os.fspath(source) if not isinstance(source, int) else str(source)
    if text.isdigit():
        return Webcam(int(text), vid_stride=vid_stride)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveStream(text, vid_stride=vid_stride, reconnect_timeout=reconnect_timeout)
    if Path(text).is_file() and Path(text).suffix.lower() in VIDEO_SUFFIXES:
        return VideoFile(text, vid_stride=vid_stride)
    return ImageSequence(text)


class ImageSequence(FrameSource):
    """Still images: one file, a folder or a glob. Unreadable files in a folder are skipped with a warning."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.name = os.fspath(source)
        self.paths = expand_image_source(source)
        self.total = len(self.paths)
        # A lone image that cannot be read is the user's error, reported before any work starts.
        self._first = load_image(self.paths[0]) if len(self.paths) == 1 else None

    def __iter__(self) -> Iterator[Frame]:
        if self._first is not None:
            yield Frame(self._first, 0, None, str(self.paths[0]))
            return
        for path in self.paths:
            try:
                image = load_image(path)
            except OvdetError as exc:
                self.warn(f"skipped {exc}")
                continue
            yield Frame(image, 0, None, str(path))


class VideoFile(FrameSource):
    """A video file decoded with PyAV; a truncated or partly corrupt file yields every readable frame, then warns."""

    def __init__(self, path: str | os.PathLike[str], *, vid_stride: int = 1) -> None:
        import av

        self.name = os.fspath(path)
        self.vid_stride = vid_stride
        try:
            self._container = av.open(self.name)
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            reason = _reason(exc)
            raise SourceError(f"video {self.name} could not be opened ({reason}): check that it is a video") from exc
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = Fraction(rate) if rate else None
        declared = self._stream.frames or None
        self.declared_frames = declared
        self.total = -(-declared // vid_stride) if declared else None
        self.decoded = 0
        self._last_pts: int | None = None

    def __iter__(self) -> Iterator[Frame]:
        import av

        problems: list[str] = []
        try:
            for packet in self._packets(problems):
                try:
                    decoded = packet.decode() if packet is not None else self._stream.codec_context.decode(None)
                except av.error.FFmpegError as exc:
                    problems.append(f"undecodable data after frame {self.decoded - 1} ({_reason(exc)})")
                    continue
                yield from self._selected(decoded, problems)
        finally:
            self.close()
        self._report(problems)

    def _packets(self, problems: list[str]):
        """Demuxed packets; where demuxing breaks off, ``None`` to flush the frames the decoder still holds."""
        import av

        try:
            yield from self._container.demux(self._stream)
        except av.error.FFmpegError as exc:
            problems.append(f"reading stopped ({_reason(exc)})")
            yield None

    def _selected(self, decoded, problems: list[str]) -> Iterator[Frame]:
        for frame in decoded:
            index = self.decoded
            self.decoded += 1
            self._check_continuity(frame, index, problems)
            if index % self.vid_stride == 0:
                timestamp = float(frame.pts * self._stream.time_base) if frame.pts is not None else None
                yield Frame(frame.to_ndarray(format="bgr24"), index, timestamp, self.name)

    def _check_continuity(self, frame, index: int, problems: list[str]) -> None:
        """Note frames the decoder concealed damage in, and gaps in the timestamps (frames lost to damage)."""
        if frame.is_corrupt:
            problems.append(f"frame {index} decoded with errors")
        if frame.pts is not None and self._last_pts is not None and self.fps:
            step = 1 / (self.fps * self._stream.time_base)
            missing = round((frame.pts - self._last_pts) / step) - 1
            if missing > 0 and frame.pts - self._last_pts > 1.5 * step:
                problems.append(f"about {missing} frame(s) missing before frame {index}")
        self._last_pts = frame.pts

    def _report(self, problems: list[str]) -> None:
        if self.decoded == 0:
            raise SourceError(f"no frame of video {self.name} could be decoded: the file is empty or corrupt")
        short = self.declared_frames is not None and self.decoded < self.declared_frames
        if problems or short:
            shown = problems[:3] + ([f"{len(problems) - 3} more problem(s)"] if len(problems) > 3 else [])
            detail = "; ".join(shown) or f"the container declares {self.declared_frames} frames"
            self.warn(
                f"video {self.name} is truncated or corrupt: read {self.decoded} frames, last good frame "
                f"{self.decoded - 1} ({detail})"
            )

    def close(self) -> None:
        self._container.close()


class LiveStream(FrameSource):
    """A network stream (RTSP, RTMP, HTTP …) through PyAV that reconnects with backoff when it drops.

    It gives up once no frame has arrived for ``reconnect_timeout`` seconds; frame indices and timestamps keep
    increasing across reconnections.
    """

    live = True
    open_timeout_s = 10.0
    read_timeout_s = 10.0

    def __init__(self, url: str, *, vid_stride: int = 1, reconnect_timeout: float = 30.0) -> None:
        if reconnect_timeout < 0:
            raise ConfigError(f"reconnect timeout must be ≥ 0 seconds, got {reconnect_timeout}")
        self.name = url
        self.vid_stride = vid_stride
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._container = None

    def __iter__(self) -> Iterator[Frame]:
        import av

        received, offset, last_timestamp = 0, 0.0, None
        last_frame_at, delay = time.monotonic(), 0.5
        while True:
            first_pts = None
            try:
                for frame, timestamp in self._frames():
                    if first_pts is None:
                        first_pts = timestamp
                        offset = 0.0 if last_timestamp is None else last_timestamp + self._period() - timestamp
                    last_timestamp = timestamp + offset
                    last_frame_at, delay = time.monotonic(), 0.5
                    index = received
                    received += 1
                    if index % self.vid_stride == 0:
                        yield Frame(frame, index, last_timestamp, self.name)
                reason = "the stream ended"
            except (av.error.FFmpegError, OSError) as exc:
                reason = _reason(exc)
            finally:
                self.close()
            waited = time.monotonic() - last_frame_at
            if waited + delay > self.reconnect_timeout:
                if received == 0:
                    raise SourceError(f"stream {self.name} gave no frame ({reason}): check the URL and the server")
                log.warning("stream %s: %s; no frame for %.0f s, giving up", self.name, reason, waited)
                return
            log.warning("stream %s: %s; reconnecting in %.1f s", self.name, reason, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
            self.reconnects += 1

    def _frames(self) -> Iterator[tuple[np.ndarray, float]]:
        import av

        options = {"rtsp_transport": "tcp"} if self.name.lower().startswith("rtsp") else {}
        self._container = av.open(self.name, options=options, timeout=(self.open_timeout_s, self.read_timeout_s))
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = Fraction(rate) if rate else self.fps
        started = time.monotonic()
        for frame in self._container.decode(stream):
            pts_seconds = float(frame.pts * stream.time_base) if frame.pts is not None else None
            yield (
                frame.to_ndarray(format="bgr24"),
                (pts_seconds if pts_seconds is not None else time.monotonic() - started),
            )

    def _period(self) -> float:
        return float(1 / self.fps) if self.fps else 0.0

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class Webcam(FrameSource):
    """A local camera through OpenCV; timestamps are seconds since the first frame (the camera's clock)."""

    live = True

    def __init__(self, index: int, *, vid_stride: int = 1) -> None:
        import cv2

        self.name = f"webcam:{index}"
        self.vid_stride = vid_stride
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise SourceError(f"camera {index} could not be opened: check that it exists and is not in use")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index, started = 0, None
        try:
            while True:
                ok, image = self._capture.read()
                if not ok:
                    if index == 0:
                        raise SourceError(f"{self.name} delivered no frame: check the camera")
                    log.warning("%s stopped delivering frames after %d", self.name, index)
                    return
                milliseconds = self._capture.get(cv2.CAP_PROP_POS_MSEC)
                now = milliseconds / 1000 if milliseconds > 0 else time.monotonic()
                started = now if started is None else started
                if index % self.vid_stride == 0:
                    yield Frame(image, index, now - started, self.name)
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        self._capture.release()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
