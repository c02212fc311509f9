"""Dynamic batching: requests that arrive together share one forward pass of the one model in memory.

One worker thread owns the detector. It takes the oldest request, waits up to ``max_wait_s`` for more with the
same vocabulary and settings, and runs them as one ``detect_arrays`` call. Vocabularies arrive encoded (see
``ovdet.serve.encoding``): switching between them here is a swap of embeddings, never an encoding. The queue is
bounded: when it is full a request is refused at once (the app answers 503 with Retry-After) instead of waiting
without end. A request whose caller gave up (a timeout) is cancelled and skipped, never inferred.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from ..core.config import MAX_BATCH_PIXELS, InferenceSettings
from .encoding import Prepared

__all__ = ["Batcher", "QueueFull"]

log = logging.getLogger(__name__)

_STOP = object()


class QueueFull(Exception):
    """The batcher's queue holds as many requests as it may; try again shortly."""


@dataclass
class _Request:
    images: Sequence[np.ndarray]
    classes: Prepared
    settings: InferenceSettings
    future: Future = field(default_factory=Future)

    @property
    def group(self) -> tuple:
        """Requests of one group can share a forward pass: same classes and settings."""
        return self.classes.key, self.settings.replace(batch=1)


class Batcher:
    """Gathers concurrent requests into batches for one detector.

    Args:
        detector: The one :class:`~ovdet.detector.OpenVocabDetector`; only the worker thread calls it.
        max_batch: Most images per forward pass.
        max_wait_s: How long the oldest request waits for others to join its batch.
        queue_size: Most requests waiting; more are refused with :class:`QueueFull`.
        on_batch: Called with the number of images of every batch run (for metrics).

    Example:
        >>> batcher = Batcher(detector, max_batch=8, max_wait_s=0.01).start()  # doctest: +SKIP
        >>> batcher.submit([image], prepared, settings).result()  # doctest: +SKIP
        [Detections(...)]
    """

    def __init__(
        self,
        detector,
        *,
        max_batch: int = 8,
        max_wait_s: float = 0.01,
        queue_size: int = 64,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.detector = detector
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._held: list[_Request] = []  # taken from the queue but of another group than the batch being gathered
        self._vocabulary_group: tuple[str, int] | None = None
        self._thread = threading.Thread(target=self._run, name="ovdet-batcher", daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the batch in flight; requests still waiting are cancelled."""
        while True:
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                self._cancel(self._queue.get_nowait())
        self._thread.join()

    def submit(self, images: Sequence[np.ndarray], classes: Prepared, settings: InferenceSettings) -> Future:
        """Queue images for detection with encoded classes; the future's result is one ``sv.Detections`` per image.

        Raises:
            QueueFull: the queue is full.
        """
        request = _Request(images, classes, settings)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise QueueFull from None
        return request.future

    def submit_waiting(
        self, images: Sequence[np.ndarray], classes: Prepared, settings: InferenceSettings, stop: threading.Event
    ) -> list[sv.Detections] | None:
        """Like :meth:`submit`, but waits for room in the queue and for the result (for video jobs).

        Returns ``None`` if ``stop`` is set first.
        """
        while not stop.is_set():
            try:
                future = self.submit(images, classes, settings)
            except QueueFull:
                stop.wait(0.05)
                continue
            while not future.done():
                if stop.wait(0.05):
                    future.cancel()
                    return None
            return future.result()
        return None

    @property
    def waiting(self) -> int:
        return self._queue.qsize() + len(self._held)

    def _run(self) -> None:
        while (first := self._held.pop(0) if self._held else self._queue.get()) is not _STOP:
            batch = self._gather(first)
            self._infer(batch)
            if _STOP in batch:
                break

    def _gather(self, first: _Request) -> list:
        """The oldest request and those of its group that arrive within ``max_wait_s``, up to the batch's size."""
        group = first.group
        room = min(self.max_batch, MAX_BATCH_PIXELS // first.settings.imgsz**2) - len(first.images)
        batch: list = [first]
        candidates, self._held = self._held, []
        deadline = time.monotonic() + self.max_wait_s
        while room > 0:
            if candidates:
                request = candidates.pop(0)
            else:
                try:
                    request = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0001))
                except queue.Empty:
                    break
            if request is _STOP:
                batch.append(_STOP)
                break
            if request.group == group and len(request.images) <= room:
                batch.append(request)
                room -= len(request.images)
            else:
                self._held.append(request)
        self._held.extend(candidates)
        return batch

    def _infer(self, batch: list) -> None:
        live = [r for r in batch if r is not _STOP and r.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            self._use_vocabulary(live[0])
            images = [image for request in live for image in request.images]
            results = self.detector.detect_arrays(images, live[0].settings.replace(batch=1))
        except BaseException as exc:  # handed to every caller of the batch
            for request in live:
                request.future.set_exception(exc)
            return
        self.on_batch(len(images))
        start = 0
        for request in live:
            request.future.set_result(results[start : start + len(request.images)])
            start += len(request.images)

    def _use_vocabulary(self, request: _Request) -> None:
        """Set the classes only when they changed: consecutive batches of one vocabulary skip even the swap."""
        group = (request.classes.key, self.detector.vocabulary_version)  # the version: someone else set classes
        if group != self._vocabulary_group:
            self._vocabulary_group = None  # stays unset if set_classes fails half-way
            self.detector.set_classes(request.classes.classes)
            self._vocabulary_group = (group[0], self.detector.vocabulary_version)

    @staticmethod
    def _cancel(item) -> None:
        if item is not _STOP:
            item.future.cancel()
