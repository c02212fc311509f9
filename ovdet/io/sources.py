"""Frame sources: image files and folders, video files, webcams and network streams, as one iterator of frames.

Every frame keeps its source, its index in the source and its timestamp in seconds, read from the container
(``None`` for still images). Video is decoded with PyAV; webcams go through OpenCV.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, OvdetError, SourceError
from .frame_index import SourceIndex, describe, spans_of
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
        vid_stride: Every n-th frame is kept.
        total: Frames the iteration will yield (after ``vid_stride``), where known.
        size: (width, height) of the first frame, where known before reading (a video's header, the first image).
    """

    name: str = ""
    live: bool = False
    fps: Fraction | None = None
    vid_stride: int = 1
    total: int | None = None
    size: tuple[int, int] | None = None

    @property
    def frame_rate(self) -> Fraction | None:
        """Frames per second of the frames this source yields (its rate over ``vid_stride``), where known."""
        return self.fps / self.vid_stride if self.fps else None

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
        source: An image, folder or glob; a video file; a webcam index (``0``, or ``"0"`` when no file or folder
            has that name); or a stream URL.
        vid_stride: Keep every n-th frame of a video or stream.
        reconnect_timeout: Seconds a dropped live stream may stay away before ovdet gives up.

    Example:
        >>> source = open_source("../shared/data/bottle-detection.mp4", vid_stride=2)  # doctest: +SKIP
        >>> next(iter(source)).index  # doctest: +SKIP
        0
    """
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, int) or vid_stride < 1:
        raise ConfigError(f"vid_stride must be a positive integer, got {vid_stride!r}")
    if isinstance(source, int) and not isinstance(source, bool):
        return Webcam(source, vid_stride=vid_stride)
    text = os.fspath(source)
    if text.isdigit() and not os.path.lexists(text):  # a file or folder named "2024" is not webcam 2024
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

    @functools.cached_property
    def size(self) -> tuple[int, int] | None:  # type: ignore[override]
        """The first image's; ``None`` if it cannot be read (it is then skipped with a warning, as it comes)."""
        try:
            first = self._first if self._first is not None else load_image(self.paths[0])
        except OvdetError:
            return None
        return first.shape[1], first.shape[0]

    def __iter__(self) -> Iterator[Frame]:
        if self._first is not None:
            yield Frame(self._first, 0, None, str(self.paths[0]))
            return
        read = 0
        for path in self.paths:
            try:
                image = load_image(path)
            except OvdetError as exc:
                self.warn(f"skipped {exc}")
                continue
            read += 1
            yield Frame(image, 0, None, str(path))
        if read == 0:
            raise SourceError(f"none of the {len(self.paths)} images in {self.name} could be read (see the warnings)")


class VideoFile(FrameSource):
    """A video file decoded with PyAV; a truncated or partly corrupt file yields every readable frame, then warns.

    ``Frame.index`` is the frame's number in the source, counted by :class:`SourceIndex`, so frames lost to damage
    leave their numbers out, and ``vid_stride`` keeps the frames whose number is a multiple of it.
    """

    def __init__(self, path: str | os.PathLike[str], *, vid_stride: int = 1) -> None:
        import av

        self.name = os.fspath(path)
        self.vid_stride = vid_stride
        try:
            self._container = av.open(self.name)
        except (av.error.FFmpegError, OSError) as exc:
            reason = _reason(exc)
            raise SourceError(f"video {self.name} could not be opened ({reason}): check that it is a video") from exc
        if not self._container.streams.video:
            kinds = ", ".join(sorted({stream.type for stream in self._container.streams}))
            self._container.close()
            found = f"only {kinds}" if kinds else "no stream at all"
            raise SourceError(f"{self.name} holds no video stream ({found}): pass a video file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = Fraction(rate) if rate else None
        declared = self._stream.frames or None
        self.declared_frames = declared
        self.total = -(-declared // vid_stride) if declared else None
        width, height = self._stream.codec_context.width, self._stream.codec_context.height
        self.size = (width, height) if width and height else None
        self.decoded = 0
        self.numbering = SourceIndex(self.fps, self._stream.time_base, self._stream.start_time)
        self._corrupt: list[int] = []  # frames the decoder concealed damage in
        self._undecodable: list[str] = []  # why each undecodable packet failed
        self._stopped: str | None = None  # where and why demuxing broke off

    def __iter__(self) -> Iterator[Frame]:
        import av

        try:
            for packet in self._packets():
                try:
                    decoded = packet.decode() if packet is not None else self._stream.codec_context.decode(None)
                except av.error.FFmpegError as exc:
                    self._undecodable.append(_reason(exc))
                    continue
                yield from self._selected(decoded)
        finally:
            self.close()
        self._report()

    def _packets(self):
        """Demuxed packets; where demuxing breaks off, ``None`` to flush the frames the decoder still holds."""
        import av

        try:
            yield from self._container.demux(self._stream)
        except av.error.FFmpegError as exc:
            where = f"after frame {self.numbering.last}" if self.numbering.last >= 0 else "before the first frame"
            self._stopped = f"reading stopped {where} ({_reason(exc)})"
            yield None

    def _selected(self, decoded) -> Iterator[Frame]:
        for frame in decoded:
            index = self.numbering.next(frame.pts)
            self.decoded += 1
            if frame.is_corrupt:
                self._corrupt.append(index)
            if index % self.vid_stride == 0:
                timestamp = float(frame.pts * self._stream.time_base) if frame.pts is not None else None
                yield Frame(frame.to_ndarray(format="bgr24"), index, timestamp, self.name)

    def _report(self) -> None:
        if self.decoded == 0:
            raise SourceError(f"no frame of video {self.name} could be decoded: the file is empty or corrupt")
        last, declared = self.numbering.last, self.declared_frames
        damage = [
            f"{describe([(last + 1, declared - 1)])} missing at the end" if declared and last + 1 < declared else "",
            f"{describe(spans_of(self._corrupt))} decoded with errors" if self._corrupt else "",
            f"{len(self._undecodable)} packet(s) undecodable ({self._undecodable[0]})" if self._undecodable else "",
            self._stopped or "",
        ]
        gaps = f"{describe(self.numbering.gaps)} missing" if self.numbering.gaps else ""
        # Gaps alone in a constant-rate file are frames the recorder dropped; in a variable-rate one, long frames.
        if any(damage) or (gaps and self.numbering.constant):
            detail = "; ".join(part for part in (gaps, *damage) if part)
            self.warn(
                f"video {self.name} is truncated or corrupt: {detail}; read {self.decoded} frame(s), the last is "
                f"frame {last}"
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
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV prints each failed probe itself
        try:
            self._capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(previous)
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
    text = (getattr(exc, "strerror", None) or str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
