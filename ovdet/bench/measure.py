"""Measure subjects side by side: each in a worker process of its own, taking turns on chunks of the clip.

Every subject runs in its own process, so its peak RSS is its own, while the parent hands out turns: each subject
streams a chunk of the clip in turn, round after round, so a change in the machine's load during a run hits every
subject alike.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv

from ..core.profiling import STAGES
from .runners import open_runner
from .subjects import OVDET, BenchmarkError, Subject, process_memory

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["Measurement", "Worker", "measure"]

log = logging.getLogger(__name__)

# Importing Ultralytics sets OMP_NUM_THREADS=1 where it is unset; workers start with the value from before that.
_OMP_THREADS_AT_IMPORT = os.environ.get("OMP_NUM_THREADS")

Opener = Callable[[Subject, Path], Any]


def _serve(connection: Connection, subject: Subject, opener: Opener) -> None:
    """Worker process: open the subject, warm it up, then answer ``(method, kwargs)`` requests until ``None``.

    A method is ``"memory"`` (:func:`process_memory`) or a public method of the runner ``opener`` returns.
    """
    for name, value in (("YOLO_AUTOINSTALL", "False"), ("YOLO_OFFLINE", "1"), ("YOLO_VERBOSE", "False")):
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")  # library notes would interleave with the parent's output
    with tempfile.TemporaryDirectory(prefix="ovdet-bench-") as scratch:
        try:
            runner = opener(subject, Path(scratch))
            runner.run(subject.warmup)
            connection.send(("ok", runner.describe()))
        except Exception as exc:
            connection.send(("error", _one_line(exc)))
            return
        while (request := connection.recv()) is not None:
            name, kwargs = request
            try:
                method = process_memory if name == "memory" else _public_method(runner, name)
                connection.send(("ok", method(**kwargs)))
            except Exception as exc:
                connection.send(("error", _one_line(exc)))


def _public_method(runner: object, name: str) -> Callable[..., Any]:
    if name.startswith("_") or not callable(getattr(runner, name, None)):
        raise BenchmarkError(f"{type(runner).__name__} has no method {name!r} a worker can call")
    return getattr(runner, name)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _set_environment(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def _omp_threads(value: str | None) -> Iterator[None]:
    """``OMP_NUM_THREADS`` set to ``value`` (unset for ``None``) inside the block, restored after."""
    before = os.environ.get("OMP_NUM_THREADS")
    _set_environment("OMP_NUM_THREADS", value)
    try:
        yield
    finally:
        _set_environment("OMP_NUM_THREADS", before)


class Worker:
    """The parent's handle on one subject's worker process.

    Args:
        subject: What the worker runs.
        opener: A module-level function ``(subject, scratch folder) -> runner`` (it is pickled into the worker);
            the runner has ``run(frames)`` and ``describe()``, and any public method the parent calls.

    Example:
        >>> worker = Worker(subject)  # doctest: +SKIP
        >>> worker.call("run", frames=10)["frames"]  # doctest: +SKIP
        10
    """

    def __init__(self, subject: Subject, opener: Opener = open_runner) -> None:
        context = multiprocessing.get_context("spawn")
        self.label = subject.label
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, subject, opener), name=f"ovdet-bench {subject.label}"
        )
        with _omp_threads(_OMP_THREADS_AT_IMPORT):
            self._process.start()
        child.close()
        self.description: dict[str, Any] = self._reply()

    def call(self, method: str, **kwargs: Any) -> Any:
        self._connection.send((method, kwargs))
        return self._reply()

    def _reply(self) -> Any:
        try:
            status, value = self._connection.recv()
        except EOFError:
            self._process.join(timeout=5)
            raise BenchmarkError(f"{self.label}: worker exited with code {self._process.exitcode}") from None
        if status == "error":
            raise BenchmarkError(f"{self.label}: {value}")
        return value

    def close(self) -> None:
        if self._process.is_alive():
            with suppress(OSError):
                self._connection.send(None)
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._connection.close()


@dataclass
class Measurement:
    """What :func:`measure` returns: one row per subject, and each subject's detections for agreement.

    Attributes:
        rows: Per subject: frames/s, milliseconds per stage, latency, memory (see :func:`measure`).
        detections: ``{label: {conf: [detections per frame]}}``.
        load_average: ``os.getloadavg()`` before and after.

    Example:
        >>> measured = measure(subjects, frames=60, agreement_confs=(0.25,))  # doctest: +SKIP
        >>> sorted(measured.detections["ovdet torch"])  # doctest: +SKIP
        [0.25]
    """

    rows: list[dict[str, Any]]
    detections: dict[str, dict[float, list[sv.Detections]]]
    load_average: dict[str, list[float]]


def measure(
    subjects: Sequence[Subject],
    *,
    frames: int,
    rounds: int = 4,
    multiple: int = 1,
    settle: float = 0.2,
    agreement_confs: Sequence[float] = (),
    agreement_frames: int = 20,
    agreement_step: int = 5,
) -> Measurement:
    """Measure subjects side by side: each in its own process, taking turns on chunks of ``frames``.

    Args:
        subjects: What to measure; labels must be distinct.
        frames: Timed frames per subject, split over the rounds (rounded up to whole turns).
        rounds: Turns each subject takes; their order rotates every round.
        multiple: Frames per turn are a multiple of this (the largest batch).
        settle: Seconds of pause between turns, so one runtime's idling threads do not slow the next.
        agreement_confs: Confidence thresholds of the detections kept for agreement. They are detected once, at
            the lowest; a higher threshold keeps the boxes scoring at least that much, which equals detecting at
            it (non-maximum suppression only lets a box suppress lower-scoring ones) unless ``max_det`` cuts.
        agreement_frames: Frames (every ``agreement_step``-th of the clip's start) those detections cover.

    Returns:
        A :class:`Measurement`. A row holds ``label``, ``engine``, ``runtime``, ``precision``, ``input_shape``,
        ``classes``, ``slots``, ``batch``, ``frames``, ``seconds``, ``fps``, ``fps_best_turn``, ``ms_per_frame``
        (per stage), ``latency_ms_p50``/``p95``, ``live`` and ``frames_dropped`` (stale frames a live subject
        skipped), ``overhead`` (share of wall time outside the runtime's forward),
        ``rss_mb``/``peak_rss_mb`` of its process, and ``error`` when it failed.

    Example:
        >>> result = measure([subject], frames=60, rounds=3)  # doctest: +SKIP
        >>> result.rows[0]["fps"]  # doctest: +SKIP
        21.4
    """
    if len({subject.label for subject in subjects}) != len(subjects):
        raise BenchmarkError("subjects need distinct labels")
    load_before = list(os.getloadavg())
    workers, errors = _start_workers(subjects)
    turns: dict[str, list[dict[str, Any]]] = {label: [] for label in workers}
    detections: dict[str, dict[float, list[sv.Detections]]] = {}
    memory: dict[str, dict[str, float]] = {}
    try:
        _take_turns(workers, turns, errors, _turn_sizes(frames, rounds, multiple), settle)
        for label, worker in workers.items():
            if label in errors:
                continue
            try:
                detections[label] = _detections_at(worker, agreement_confs, agreement_frames, agreement_step)
                memory[label] = worker.call("memory")
            except BenchmarkError as exc:
                errors[label] = str(exc)
    finally:
        for worker in workers.values():
            worker.close()
    rows = [
        {"label": s.label, "error": errors[s.label]}
        if s.label in errors
        else _summarize(s, workers[s.label].description, turns[s.label], memory[s.label])
        for s in subjects
    ]
    return Measurement(rows, detections, {"before": load_before, "after": list(os.getloadavg())})


def _detections_at(worker: Worker, confs: Sequence[float], count: int, step: int) -> dict[float, list[sv.Detections]]:
    if not confs:
        return {}
    found = worker.call("detections", conf=min(confs), count=count, step=step)
    return {conf: [detections[detections.confidence >= conf] for detections in found] for conf in confs}


def _start_workers(subjects: Sequence[Subject]) -> tuple[dict[str, Worker], dict[str, str]]:
    workers, errors = {}, {}
    for subject in subjects:
        started = time.perf_counter()
        try:
            workers[subject.label] = Worker(subject)
            log.debug("%s ready (%.1f s)", subject.label, time.perf_counter() - started)
        except BenchmarkError as exc:
            errors[subject.label] = str(exc)
            log.warning("%s", exc)
    return workers, errors


def _turn_sizes(frames: int, rounds: int, multiple: int) -> list[int]:
    per_turn = max(multiple, math.ceil(frames / rounds / multiple) * multiple)
    return [per_turn] * rounds


def _take_turns(
    workers: dict[str, Worker],
    turns: dict[str, list[dict[str, Any]]],
    errors: dict[str, str],
    sizes: Sequence[int],
    settle: float,
) -> None:
    labels = list(workers)
    for round_index, size in enumerate(sizes):
        shift = round_index % len(labels) if labels else 0
        for label in labels[shift:] + labels[:shift]:
            if label in errors:
                continue
            try:
                turns[label].append(workers[label].call("run", frames=size))
            except BenchmarkError as exc:
                errors[label] = str(exc)
                log.warning("%s", exc)
            time.sleep(settle)
        log.info("round %d/%d done, load average %.2f", round_index + 1, len(sizes), os.getloadavg()[0])


def _summarize(
    subject: Subject, description: dict[str, Any], turns: list[dict[str, Any]], memory: dict[str, float]
) -> dict[str, Any]:
    frames = sum(turn["frames"] for turn in turns)
    seconds = sum(turn["seconds"] for turn in turns)
    stages = {stage: sum(turn["stages"].get(stage, 0.0) for turn in turns) for stage in STAGES}
    has_write = subject.config.engine == OVDET
    latencies = np.array([value for turn in turns for value in turn["latencies"]] or [np.nan]) * 1000
    return {
        "label": subject.label,
        "engine": subject.config.engine,
        **description,
        "classes": len(subject.classes),
        "batch": subject.batch,
        "imgsz": subject.imgsz,
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "fps_best_turn": max(turn["frames"] / turn["seconds"] for turn in turns),
        "ms_per_frame": {
            stage: (total * 1000 / frames if stage != "write" or has_write else None) for stage, total in stages.items()
        },
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "live": subject.live,
        "frames_dropped": sum(turn.get("dropped", 0) for turn in turns),
        "overhead": (seconds - stages["inference"]) / seconds,
        **memory,
    }
