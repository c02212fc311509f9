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

from ..analytics.stream import Analytics
from ..analytics.zones_yaml import ZonesFile
from ..core.config import InferenceSettings
from ..core.errors import OvdetError
from ..detector import OpenVocabDetector
from ..io.sources import open_source
from ..prompts.embeddings import Embeddings
from ..prompts.vocabulary import Vocabulary
from ..run import OutputSpec, Run, StopRequest
from ..run.outputs import analytics_outputs
from .plan import SourceTask, digest, stamp

__all__ = ["SourceResult", "SourceWorker", "WorkerSpec"]


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker needs to build the same detector and run: no text model, the classes come as embeddings.

    Attributes:
        model: The weights file or exported model (the same path on every node).
        settings: The driver's detector's settings (``half`` as its precision decided).
        classes: The vocabulary's embeddings, computed once by the driver (a vocabulary for a fixed-class export).
        precision, calibration, task: What the driver's detector runs (the calibration source on every node).
        zones: The zones file, read and checked by the driver.
        analytics: Apply the zones and rules (asked for by ``--zones``, ``--alerts``, ``--summary``, ``--save-crops``).
    """

    model: str
    device: str
    runtime: str
    settings: InferenceSettings
    classes: Embeddings | Vocabulary
    vid_stride: int = 1
    track: bool = False
    precision: str | None = None
    calibration: str | None = None
    task: str | None = None
    zones: ZonesFile | None = None
    analytics: bool = False


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

    def __init__(
        self, spec: WorkerSpec, stop: threading.Event | None = None, detector: OpenVocabDetector | None = None
    ) -> None:
        if detector is None:
            detector = OpenVocabDetector(
                spec.model, device=spec.device, runtime=spec.runtime, precision=spec.precision,
                calibration=spec.calibration, task=spec.task, **vars(spec.settings),
            )  # fmt: skip
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
        analytics = Analytics(self.spec.zones) if self.spec.analytics else None
        run = Run(source, self._outputs(task, analytics), analytics=analytics, track=self.spec.track,
                  stop=StopRequest(event=self._stop))  # fmt: skip
        settings = vars(self.spec.settings)
        try:
            run.execute(
                lambda stop, track: self.detector.stream(source, track=track, stop=stop, **settings),
                self.detector.vocabulary,
            )
        finally:
            result.frames, result.detections = run.counts.frames, run.counts.detections
        result.status = "stopped" if run.stopped else "done"

    def _outputs(self, task: SourceTask, analytics: Analytics | None) -> list[OutputSpec]:
        """The outputs ``ovdet detect`` writes for the same flags; then the source's Parquet file."""
        named = {kind: path for kind, path in task.outputs.items() if kind not in ("crops", "alerts", "summary")}
        specs = [OutputSpec(kind, path) for kind, path in named.items()]
        specs += analytics_outputs(
            analytics, crops=task.outputs.get("crops"), alerts=task.outputs.get("alerts"),
            summary=task.outputs.get("summary"),
        )  # fmt: skip
        return [*specs, OutputSpec("parquet", task.parquet)]
