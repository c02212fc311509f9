"""Annotated video out: H.264 in MP4 (or MKV/MOV) through PyAV, at the source's frame rate and size."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from typing import TYPE_CHECKING

import supervision as sv

from ..core.errors import OutputError
from ..core.files import check_writable, output_error
from .sinks import Annotator
from .sources import Frame

if TYPE_CHECKING:
    from ..prompts.vocabulary import Vocabulary

__all__ = ["VIDEO_OUTPUT_SUFFIXES", "AnnotatedVideoSink"]

log = logging.getLogger(__name__)

VIDEO_OUTPUT_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".m4v"})
DEFAULT_FPS = Fraction(30)


class AnnotatedVideoSink:
    """Draws boxes, labels and track ids on each frame and encodes them as H.264 (yuv420p, plays in browsers).

    The file is opened at once (so a bad path fails before any work) and finalised by :meth:`close`, which the
    CLI also runs on Ctrl-C and SIGTERM.

    Args:
        path: Output file; ``.mp4``, ``.mkv``, ``.mov`` or ``.m4v``.
        fps: Frame rate of the frames it will get (the source's, divided by any stride).

    Example:
        >>> sink = AnnotatedVideoSink("out.mp4", fps=Fraction(30000, 1001))  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], fps: Fraction | float | None) -> None:
        import av

        self.path = check_writable(path)
        if self.path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise OutputError(f"cannot write video {self.path}: use one of {', '.join(sorted(VIDEO_OUTPUT_SUFFIXES))}")
        self.fps = Fraction(fps).limit_denominator(100000) if fps else DEFAULT_FPS
        self._container = av.open(str(self.path), mode="w")
        self._stream = None
        self.annotator = Annotator()
        self.frames_written = 0

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Draw classes in the vocabulary's colours."""
        self.annotator.use_vocabulary(vocabulary)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        import av

        if self._stream is None:
            self._stream = self._open_stream(frame.width, frame.height)
        image = self.annotator.draw(frame.image, detections)
        if image.shape[:2] != (self._stream.height, self._stream.width):
            raise OutputError(
                f"frame {frame.index} of {frame.source} is {image.shape[1]}x{image.shape[0]} but {self.path} is "
                f"{self._stream.width}x{self._stream.height}: write videos from sources of one frame size"
            )
        video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        video_frame.pts = self.frames_written
        try:
            self._container.mux(self._stream.encode(video_frame))
        except (av.error.FFmpegError, OSError) as exc:
            raise output_error(self.path, exc) from exc
        self.frames_written += 1

    def _open_stream(self, width: int, height: int):
        if width % 2 or height % 2:
            raise OutputError(
                f"H.264 needs even frame sizes and the source is {width}x{height}: resize it or use --save-annotated"
            )
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = 1 / self.fps
        stream.options = {"preset": "veryfast", "crf": "23"}
        return stream

    def close(self) -> None:
        """Flush the encoder and write the container's index, so the file plays."""
        import av

        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            try:
                if self._stream is not None:
                    container.mux(self._stream.encode(None))
            finally:
                container.close()
        except (av.error.FFmpegError, OSError) as exc:
            raise output_error(self.path, exc) from exc
        if self.frames_written == 0:
            log.debug("no frame was written to %s", self.path)
