"""A batch worker: one detector, given its classes as embeddings, that runs whole sources into their outputs.

The same class runs in the driver's process (no ``--ray``) and as a Ray actor, so both take one code path.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..core.config import InferenceSettings
from ..prompts.embeddings import Embeddings
from ..core.errors import OvdetError, SourceError
from ..io.parquet import ParquetSink
from ..io.sources import open_source
from ..io.pipeline import SinkWriter
from ..prompts.vocabulary import Vocabulary
from .plan import SourceTask, digest, stamp

__all__ = ["SourceResult", "SourceWorker", "WorkerSpec"]


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker needs to build the same detector: no text model, the classes come as embeddings.

    Attributes:
        model: The weights file or exported model (the same path on every node).
        classes: The vocabulary's embeddings, computed once by the driver (a vocabulary for a fixed-class export).
    """

    model: str
    device: str
    runtime: str
    settings: InferenceSettings
    classes: Embeddings | Vocabulary
    vid_stride: int = 1
    track: bool = False


@dataclass
class SourceResult:
    """What became of one source: ``status`` is ``"done"``, ``"failed"`` or ``"stopped"``."""

    source: str
    status: str
    worker: str
    error: str | None = None
    frames: int = 0
    detections: int = 0
    seconds: float = 0.0
    sha256: str | None = None
    stamp: str | None = None
    warnings: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def entry(self, attempts: int) -> dict[str, Any]:
        """The source's manifest entry."""
        fields = ("status", "error", "sha256", "stamp", "frames", "detections", "seconds", "worker", "outputs")
        return {**{name: getattr(self, name) for name in fields}, "attempts": attempts}


class SourceWorker:
    """Holds one detector and runs sources through it, one at a time, into their outputs.

    Example:
        >>> worker = SourceWorker(spec)  # doctest: +SKIP
        >>> task = SourceTask("a.mp4", {"jsonl": "out/a.mp4.jsonl"}, "out/detections/a.mp4.parquet")
        >>> worker.process(task).status  # doctest: +SKIP
        'done'
    """

    def __init__(self, spec: WorkerSpec, stop: threading.Event | None = None, detector: Any = None) -> None:
        if detector is None:
            from ..detector import OpenVocabDetector

            detector = OpenVocabDetector(spec.model, device=spec.device, runtime=spec.runtime, **vars(spec.settings))
            detector.set_classes(spec.classes)
        self.spec = spec
        self.detector = detector
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = stop or threading.Event()

    def describe(self) -> str:
        """``host:pid``, and where the model runs."""
        return f"{self.name} ({self.detector.backend.name} on {self.detector.backend.device})"

    def stop(self) -> None:
        """End the source in flight after its current frames; its outputs are closed valid, its Parquet not written."""
        self._stop.set()

    def process(self, task: SourceTask) -> SourceResult:
        """Run one source into its outputs; any failure is recorded in the result, never raised."""
        result = SourceResult(task.source, "failed", self.name, outputs=task.files)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result.stamp, result.sha256 = stamp(task.source), digest(task.source)
                self._run(task, result)
            except OvdetError as exc:
                result.status, result.error = "failed", str(exc)
            except Exception as exc:  # a bug or a library's failure on this source: recorded, the job goes on
                reason = str(exc).splitlines()[0] if str(exc) else ""
                result.status, result.error = "failed", f"unexpected {type(exc).__name__}: {reason}"
        result.warnings = [str(warning.message) for warning in caught]
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    def _run(self, task: SourceTask, result: SourceResult) -> None:
        source = open_source(task.source, vid_stride=self.spec.vid_stride)
        try:
            sinks = self._open_sinks(task, source)
        except BaseException:
            source.close()
            raise
        parquet = sinks[-1]
        writer = SinkWriter(sinks)
        settings = self.spec.settings
        finished = False
        try:
            track = self.spec.track or "events" in task.outputs
            for frame, detections in self.detector.stream(source, track=track, stop=self._stop, **vars(settings)):
                writer.put(frame, detections)
                result.frames += 1
                result.detections += len(detections)
            finished = not self._stop.is_set()
        finally:
            if not finished:
                parquet.abandon()
            writer.close()
        if not finished:
            result.status = "stopped"
        elif result.frames == 0:
            raise SourceError(f"no frame or image could be read from {task.source}")
        else:
            result.status = "done"

    def _open_sinks(self, task: SourceTask, source) -> list:
        """The sinks ``ovdet detect`` opens for the same outputs, told the vocabulary as it tells them; then the
        source's Parquet file, last."""
        from ..io.sinks import CocoSink, CsvSink, EventsSink, JsonlSink
        from ..io.video import AnnotatedVideoSink
        from ..vision.tracking import lost_track_frames

        fps = source.fps / getattr(source, "vid_stride", 1) if source.fps else None
        openers = {
            "jsonl": JsonlSink,
            "csv": CsvSink,
            "coco": CocoSink,
            "events": lambda path: EventsSink(path, lost_track_frames(fps)),
            "video": lambda path: AnnotatedVideoSink(path, fps),
        }
        sinks = []
        try:
            for kind, path in task.outputs.items():
                sinks.append(openers[kind](path))
                if hasattr(sinks[-1], "use_vocabulary"):
                    sinks[-1].use_vocabulary(self.detector.vocabulary)
            sinks.append(ParquetSink(task.parquet))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        return sinks
