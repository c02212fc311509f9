"""The streaming pipeline: a reader thread decodes ahead, the caller's thread batches and infers, and a writer
thread feeds the sinks, so decoding, inference and writing overlap. Queues are bounded: memory stays flat however
long the video.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import supervision as sv

from ..core.files import output_error
from .sources import Frame, FrameSource
from ..core.profiling import Profiler
from ..vision.tracking import Tracker

__all__ = ["FrameReader", "Sink", "SinkWriter", "detect_stream"]

log = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.1  # how often a wait for frames checks for a stop request


class Sink(Protocol):
    """Anything that takes results frame by frame and leaves a valid file when closed."""

    def write(self, frame: Frame, detections: sv.Detections) -> None: ...

    def close(self) -> None: ...


class FrameReader:
    """Iterates a source in a background thread; warnings keep their place in order.

    A file is read ``depth`` frames ahead and every frame is kept. A live source (camera, stream) keeps only its
    newest frame waiting: a frame still waiting when the next one is decoded is stale and dropped (counted in
    ``dropped``), so the reader never holds the stream back and results lag by at most one frame and the inference
    in flight, however slow the model.
    """

    def __init__(self, source: FrameSource, depth: int, profiler: Profiler | None = None) -> None:
        self.source = source
        self.profiler = profiler
        self.decoded = 0
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovdet-reader", daemon=True)
        self._newest: Frame | None = None
        self._arrived = threading.Condition()
        self._finish: Any = None
        source.warn = lambda message: self._put(("warning", message))

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        frames = iter(self.source)
        deliver = self._replace_newest if self.source.live else self._put
        try:
            while True:
                started = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.decoded += 1
                if self.profiler is not None:
                    self.profiler.seconds["decode"] += time.perf_counter() - started
                    self.profiler.decoded(frame.source, frame.index)
                if not deliver(frame):
                    break
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it in its own thread
            self._put(("error", exc))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _replace_newest(self, frame: Frame) -> bool:
        with self._arrived:
            if self._newest is not None:
                self.dropped += 1
                if self.profiler is not None:
                    self.profiler.dropped(self._newest.source, self._newest.index)
            self._newest = frame
            self._arrived.notify()
        return not self._stop.is_set()

    def next_batch(self, size: int, stop: threading.Event | None = None) -> list[Frame]:
        """Up to ``size`` frames of a file, waiting for each; the newest frame of a live source, alone.

        Returns what it has as soon as ``stop`` is set, so a stop request is not held up by a stream that is
        reconnecting or a camera that delivers nothing.
        """
        if self.source.live:
            return self._next_live(stop)
        batch: list[Frame] = []
        while len(batch) < size and not (stop is not None and stop.is_set()):
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                self._queue.put(_END)  # the next call sees the end too
                break
            if isinstance(item, tuple):
                self._warn_or_raise(*item)
                continue
            batch.append(item)
        return batch

    def _next_live(self, stop: threading.Event | None) -> list[Frame]:
        while not (stop is not None and stop.is_set()):
            self._take_messages()
            with self._arrived:
                if self._newest is None and self._finish is None:
                    self._arrived.wait(_POLL_S)
                frame, self._newest = self._newest, None
            if frame is not None:
                return [frame]
            if self._finish is not None:  # after the last frame: the end, or the error that ended the source
                if self._finish is not _END:
                    self._warn_or_raise("error", self._finish)
                return []
        return []

    def _take_messages(self) -> None:
        """Warnings now, in order; the end or an error is kept until the frame before it has been taken."""
        while self._finish is None:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _END:
                self._finish = _END
            elif item[0] == "error":
                self._finish = item[1]
            else:
                self._warn_or_raise(*item)

    @staticmethod
    def _warn_or_raise(kind: str, payload: Any) -> None:
        if kind == "error":
            raise payload
        warnings.warn(payload, UserWarning, stacklevel=3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.source.close()
        if self.dropped:
            log.warning(
                "%s: %d of %d frame(s) dropped to stay live, the model being slower than the stream; "
                "a smaller --imgsz, --vid-stride or a faster runtime drops fewer",
                self.source.name, self.dropped, self.decoded,
            )  # fmt: skip


def detect_stream(
    infer: Callable[[Sequence[np.ndarray]], list[sv.Detections]],
    source: FrameSource,
    *,
    batch: int,
    track: bool,
    track_threshold: float,
    stop: threading.Event | None = None,
    profiler: Profiler | None = None,
    vocabulary_version: Callable[[], int] = lambda: 0,
) -> Iterator[tuple[Frame, sv.Detections]]:
    """Yield every frame of ``source`` once, in order, with its detections (tracked when ``track``).

    Args:
        infer: Detects in one batch of BGR frames: one ``Detections`` per frame, in order.
        source: The frames.
        batch: Frames per call of ``infer``.
        track: Give detections stable ``tracker_id`` values (ByteTrack, from ``track_threshold`` up).
        track_threshold: The confidence the tracker starts tracks from.
        stop: Once set, the stream ends after the batch in flight, without waiting for more frames.
        profiler: Counts decoding time and frames.
        vocabulary_version: Changes when the classes ``infer`` detects change. A change between two frames
            applies from the next frame on: frames of the current batch not yet yielded are inferred again, and
            the tracker restarts with fresh ids.
    """
    reader = FrameReader(source, depth=2 * batch + 2, profiler=profiler).start()
    fps = source.fps / getattr(source, "vid_stride", 1) if source.fps else None
    tracker = Tracker(fps, threshold=track_threshold) if track else None
    vocabulary = vocabulary_version()
    try:
        while frames := reader.next_batch(batch, stop):
            while frames:
                frames = yield from _yield_batch(infer, frames, tracker, vocabulary_version)
                if vocabulary_version() != vocabulary:
                    vocabulary = vocabulary_version()
                    if tracker is not None:
                        tracker.reset()
    finally:
        reader.stop()


def _yield_batch(
    infer: Callable[[Sequence[np.ndarray]], list[sv.Detections]],
    frames: Sequence[Frame],
    tracker: Tracker | None,
    vocabulary_version: Callable[[], int],
):
    """Infer and yield a batch; returns the frames left over when the vocabulary changed mid-batch."""
    version = vocabulary_version()
    results = infer([frame.image for frame in frames])
    for position, (frame, detections) in enumerate(zip(frames, results)):
        if tracker is not None:
            detections = tracker.update(detections, frame.timestamp)
        yield frame, detections
        if vocabulary_version() != version:
            return list(frames[position + 1 :])
    return []


class SinkWriter:
    """Feeds sinks from a background thread, in frame order; closes every sink, even after an error.

    Example:
        >>> with SinkWriter([sink]) as writer:  # doctest: +SKIP
        ...     writer.put(frame, detections)
    """

    def __init__(self, sinks: Sequence[Sink], depth: int = 8, profiler: Profiler | None = None) -> None:
        self.sinks = list(sinks)
        self.profiler = profiler
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ovdet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # re-raised in the caller's thread by put() or close()
                    self._error = exc

    def _write(self, frame: Frame, detections: sv.Detections) -> None:
        started = time.perf_counter()
        for sink in self.sinks:
            try:
                sink.write(frame, detections)
            except OSError as exc:
                raise output_error(getattr(sink, "path", type(sink).__name__), exc) from exc
        if self.profiler is not None:
            self.profiler.seconds["write"] += time.perf_counter() - started
            self.profiler.written(frame.source, frame.index)

    def put(self, frame: Frame, detections: sv.Detections) -> None:
        """Queue one frame's results; raises the first error a sink hit."""
        self._raise_pending()
        self._queue.put((frame, detections))

    def close(self) -> None:
        """Write what is queued, then close every sink."""
        self._queue.put(_END)
        self._thread.join()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                if isinstance(exc, OSError):
                    exc = output_error(getattr(sink, "path", type(sink).__name__), exc)
                if self._error is not None:  # the first error is the one reported; the rest only with --verbose
                    log.info("also could not close %s: %s", type(sink).__name__, exc)
                self._error = self._error or exc
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> SinkWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
