"""A batch job: plan the sources, embed the vocabulary once, skip what is done, run the rest, keep the manifest.

Example:
    >>> request = BatchRequest(["archive/"], Path("out"), ("jsonl",), "yolov8s-worldv2.pt", vocab)  # doctest: +SKIP
    >>> report = run_batch(request, threading.Event())  # doctest: +SKIP
    >>> report.counts  # doctest: +SKIP
    {'done': 3, 'failed': 1}
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analytics.zones_yaml import ZonesFile
from ..core.config import InferenceSettings
from ..core.files import check_writable, file_digest
from ..core.weights import file_sha256, resolve_weights
from ..detector import OpenVocabDetector
from ..prompts.embeddings import Embeddings
from ..prompts.vocabulary import Vocabulary
from .lock import output_dir_lock
from .manifest import Manifest
from .plan import SourceTask, check_collisions, expand_sources, plan_tasks
from .pools import LocalPool, RayPool, check_reachable
from .worker import SourceResult, WorkerSpec

__all__ = ["BatchReport", "BatchRequest", "run_batch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRequest:
    """Everything a batch run is asked to do.

    Attributes:
        sources: Videos, image folders, folders of videos, ``@list.txt`` files.
        kinds: Outputs per source: keys of :data:`ovdet.run.outputs.OUTPUT_KINDS`.
        precision, calibration, task: As for ``ovdet detect`` (the precision as chosen for it).
        zones: The zones file read and checked; with ``analytics``, its zones and rules are applied.
        ray: ``None`` runs in this process; else a :class:`~ovdet.cluster.pools.RayPool` address.
        workers, cpus, gpus: Ray actors, and the CPUs and GPUs each reserves.
    """

    sources: Sequence[str]
    output_dir: Path
    kinds: Sequence[str]
    model: str
    classes: Vocabulary | Embeddings
    settings: InferenceSettings = field(default_factory=InferenceSettings)
    device: str = "auto"
    runtime: str = "auto"
    vid_stride: int = 1
    track: bool = False
    precision: str | None = None
    calibration: str | None = None
    task: str | None = None
    zones: ZonesFile | None = None
    zones_path: str | None = None
    analytics: bool = False
    ray: str | None = None
    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    overwrite: bool = False
    inputs: Sequence[str] = ()
    quiet: bool = False


@dataclass
class BatchReport:
    """What a run did: per-source outcomes, per-worker throughput, and the failures' one-line errors."""

    sources: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    detections: int = 0
    seconds: float = 0.0
    workers: dict[str, list[float]] = field(default_factory=dict)  # name → [sources, frames, busy seconds]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, result: SourceResult) -> None:
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.frames += result.frames
        self.detections += result.detections
        if result.worker:
            totals = self.workers.setdefault(result.worker, [0, 0, 0.0])
            totals[0] += 1
            totals[1] += result.frames
            totals[2] += result.seconds
        if result.status == "failed":
            self.failures.append((result.source, result.error or "failed"))

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_batch(request: BatchRequest, stop: threading.Event) -> BatchReport:
    """Run every source not already done; each result is recorded in the manifest as it arrives. A second run on
    the same output folder is refused while this one runs."""
    if request.ray is not None:
        check_reachable(request.ray)  # before the model loads: a wrong address is a quick one-line error
    check_writable(request.output_dir, directory=True)
    sources = expand_sources(request.sources, skip=request.output_dir)
    tasks = plan_tasks(sources, request.output_dir, request.kinds)
    check_collisions(tasks, [*request.inputs, request.model])
    with output_dir_lock(request.output_dir):
        return _run_locked(request, tasks, stop)


def _run_locked(request: BatchRequest, tasks: list[SourceTask], stop: threading.Event) -> BatchReport:
    """:func:`run_batch` while this run alone holds the output folder."""
    manifest = Manifest.open(request.output_dir, _fingerprinted(request), overwrite=request.overwrite)
    todo = [task for task in tasks if not manifest.is_done(task)]
    report = BatchReport(sources=len(tasks), skipped=len(tasks) - len(todo))
    if not todo:
        return report
    detector = OpenVocabDetector(
        request.model, device=request.device, runtime=request.runtime, precision=request.precision,
        calibration=request.calibration, task=request.task, **vars(request.settings),
    )  # fmt: skip
    detector.set_classes(request.classes)  # the one place text is embedded; workers get the vectors
    classes = detector.embeddings if detector.embeddings is not None else detector.vocabulary
    spec = WorkerSpec(
        str(detector.model_path), request.device, request.runtime, detector.settings, classes, request.vid_stride,
        request.track, detector.precision, detector.calibration, request.task, request.zones, request.analytics,
    )  # fmt: skip
    if request.ray is None:
        pool = LocalPool(spec, stop, detector)
    else:
        del detector
        pool = RayPool(spec, stop, request.ray, request.workers, request.cpus, request.gpus)
    log.info("workers: %s", "; ".join(pool.workers))
    started = time.perf_counter()
    try:
        with _progress(len(todo), request.quiet) as bar:
            for result, attempts in pool.results(todo):
                manifest.record(result.source, result.entry(attempts))
                report.add(result)
                report.seconds = time.perf_counter() - started
                for warning in result.warnings:
                    log.warning("%s: %s", result.source, warning)
                if result.status == "failed":
                    log.warning("%s failed: %s", result.source, result.error)
                bar.set_postfix_str(f"{report.rate:.1f} frames/s", refresh=False)
                bar.update()
    finally:
        manifest.save()
        pool.close()
    report.seconds = time.perf_counter() - started
    return report


def _fingerprinted(request: BatchRequest) -> dict[str, Any]:
    """The settings that decide the outputs, as the manifest records them (known before any model loads)."""
    model = resolve_weights(request.model)
    classes = request.classes
    if isinstance(classes, Embeddings):
        vocabulary = {} if classes.vocabulary is None else {"vocabulary": classes.vocabulary.to_dict()}
        meta = {**classes.meta, **vocabulary}  # as the meta held it before the vocabulary became a field
        described = classes.vectors.tobytes() + json.dumps([classes.names, meta], sort_keys=True).encode()
    else:
        described = json.dumps(classes.to_dict(), sort_keys=True).encode()
    return {
        "model": model.name,
        "model_sha256": file_sha256(model) if model.is_file() else None,
        "runtime": request.runtime,
        "device": request.device,
        **{name: value for name, value in vars(request.settings).items() if name != "half"},  # precision says it
        "precision": request.precision,
        "calibration": request.calibration,
        "task": request.task,
        "vid_stride": request.vid_stride,
        "track": request.track,
        "zones_sha256": file_digest(Path(request.zones_path)) if request.zones_path else None,
        "analytics": request.analytics,
        "vocabulary_sha256": hashlib.sha256(described).hexdigest(),
        "outputs": sorted(request.kinds),
    }


def _progress(total: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="source", disable=quiet, dynamic_ncols=True, leave=False)
