"""Feeds the outputs from a background thread, so writing overlaps decoding and inference."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import supervision as sv

from ..core.files import output_error
from ..core.profiling import Profiler
from ..io.pipeline import Sink
from ..io.sources import Frame

__all__ = ["SinkWriter"]

log = logging.getLogger(__name__)

_END = object()


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
