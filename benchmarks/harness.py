"""ovdet against Ultralytics side by side, sweeps over vocabulary size, input size and batch, and long-run memory.

Built on :mod:`ovdet.bench`: every measured configuration (a ``Subject``) runs in a worker process of its own and
the subjects take turns on chunks of the clip. Importing this module loads no model and starts nothing; every
function returns data (printing is left to the scripts).

Example:
    >>> from benchmarks.configs import default_configs
    >>> from benchmarks.tables import comparison_table
    >>> files = ModelFiles("weights/yolov8s-worldv2.pt", "/tmp/bench")  # doctest: +SKIP
    >>> report = compare(default_configs(), files, "clip.mp4", ["bottle", "person"], frames=200)  # doctest: +SKIP
    >>> print(comparison_table(report["rows"]))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.agreement import agreement_report
from benchmarks.compute import add_compute, machine_gemm, machine_peaks
from benchmarks.configs import default_pairs, prompts
from benchmarks.model_files import ModelFiles
from ovdet.bench import Measurement, OvdetRunner, RunConfig, Subject, Worker, measure, process_memory

__all__ = ["compare", "long_run_memory", "sweep_batch", "sweep_imgsz", "sweep_vocabulary"]


def compare(
    configs: Sequence[RunConfig],
    files: ModelFiles,
    clip: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    frames: int = 200,
    rounds: int = 4,
    imgsz: int = 640,
    conf: float = 0.25,
    max_classes: int = 80,
    agreement_confs: Sequence[float] = (0.25, 0.05),
    agreement_frames: int = 20,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Every configuration end to end on the same clip, weights and classes, side by side.

    Returns:
        ``rows`` (see :func:`measure`, plus compute from :func:`add_compute`), ``agreement`` (see
        :func:`agreement_report`; ``pairs`` default to :func:`default_pairs`), ``gemm`` (:func:`machine_gemm`
        before and after), ``peak_gflops_per_s`` (:func:`machine_peaks` of both) and ``load_average``.

    Example:
        >>> report = compare(default_configs(), files, "clip.mp4", ["bottle"], frames=100)  # doctest: +SKIP
    """
    vectors = files.vectors(classes)
    subjects = [
        Subject(
            config.label, config, files.path(config, classes, max_classes), tuple(classes), os.fspath(clip),
            imgsz=imgsz, conf=conf, vectors=vectors,
        )
        for config in configs
    ]  # fmt: skip
    measured, report = _measure_with_compute(
        subjects, files, frames=frames, rounds=rounds, agreement_confs=agreement_confs,
        agreement_frames=agreement_frames,
    )  # fmt: skip
    pairs = default_pairs([config.label for config in configs]) if pairs is None else pairs
    return {**report, "agreement": agreement_report(measured.detections, pairs)}


def _measure_with_compute(subjects: list[Subject], files: ModelFiles, **options: Any) -> tuple[Measurement, dict]:
    """:func:`measure`, with the machine's GEMM speed measured just before and just after, and compute added."""
    before = machine_gemm()
    measured = measure(subjects, **options)
    gemm = {"before": before, "after": machine_gemm()}
    peaks = machine_peaks(gemm["before"], gemm["after"])
    add_compute(measured.rows, files.flops, peaks)
    report = {"rows": measured.rows, "peak_gflops_per_s": peaks, "gemm": gemm, "load_average": measured.load_average}
    return measured, report


def _sweep(
    subjects: list[Subject], files: ModelFiles, *, frames: int, rounds: int, multiple: int = 1
) -> dict[str, Any]:
    return _measure_with_compute(subjects, files, frames=frames, rounds=rounds, multiple=multiple)[1]


def sweep_vocabulary(
    config: RunConfig,
    files: ModelFiles,
    clip: str | os.PathLike[str],
    sizes: Sequence[int] = (1, 10, 80, 365, 1203),
    *,
    frames: int = 48,
    rounds: int = 2,
    imgsz: int = 640,
) -> dict[str, Any]:
    """Frames/s and ``set_classes`` time for each vocabulary size K (:func:`prompts`).

    Each K starts with an empty embedding cache in a fresh process, so ``set_classes_first_ms`` is cold (text
    model load and encoding); ``set_classes_warm_ms`` repeats it with every prompt cached. Exports are made with
    exactly K class slots; a configuration that converts the ``.pt`` itself does so before the timing.

    Example:
        >>> sweep_vocabulary(config, files, "clip.mp4", sizes=(1, 80))["rows"][1]["classes"]  # doctest: +SKIP
        80
    """
    subjects = []
    for size in sizes:
        names = tuple(prompts(size))
        model = files.path(config, names, max_classes=size)
        files.convert_for(config, size)
        subjects.append(Subject(f"K={size}", config, model, names, os.fspath(clip), imgsz=imgsz, empty_cache=True))
    return _sweep(subjects, files, frames=frames, rounds=rounds)


def sweep_imgsz(
    config: RunConfig,
    files: ModelFiles,
    clip: str | os.PathLike[str],
    classes: Sequence[str],
    sizes: Sequence[int] = (320, 480, 640, 960, 1280),
    *,
    frames: int = 48,
    rounds: int = 2,
    max_classes: int = 80,
) -> dict[str, Any]:
    """Frames/s for each input size (the longest side; the other keeps the clip's aspect).

    Example:
        >>> sweep_imgsz(config, files, "clip.mp4", ["bottle"], sizes=(320, 640))["rows"][0]["imgsz"]  # doctest: +SKIP
        320
    """
    model = files.path(config, classes, max_classes)
    base = Subject("", config, model, tuple(classes), os.fspath(clip))
    subjects = [replace(base, label=f"imgsz={size}", imgsz=size) for size in sizes]
    return _sweep(subjects, files, frames=frames, rounds=rounds)


def sweep_batch(
    config: RunConfig,
    files: ModelFiles,
    clip: str | os.PathLike[str],
    classes: Sequence[str],
    sizes: Sequence[int] = (1, 2, 4, 8, 16),
    *,
    frames: int = 48,
    rounds: int = 2,
    imgsz: int = 640,
    max_classes: int = 80,
) -> dict[str, Any]:
    """Frames/s for each batch size (frames per forward pass); turns hold whole batches of the largest size.

    Example:
        >>> sweep_batch(config, files, "clip.mp4", ["bottle"], sizes=(1, 4))["rows"][1]["batch"]  # doctest: +SKIP
        4
    """
    model = files.path(config, classes, max_classes)
    base = Subject("", config, model, tuple(classes), os.fspath(clip), imgsz=imgsz)
    subjects = [replace(base, label=f"batch={size}", batch=size) for size in sizes]
    return _sweep(subjects, files, frames=frames, rounds=rounds, multiple=max(sizes))


def long_run_memory(
    config: RunConfig,
    files: ModelFiles,
    clip: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    frames: int = 2000,
    imgsz: int = 640,
    max_classes: int = 80,
) -> dict[str, Any]:
    """RSS of a process streaming ``frames`` frames (the clip looped), sampled at 100 frames, at the end, and between.

    Returns:
        ``samples`` (``frames``, ``seconds``, ``rss_mb``, ``peak_rss_mb``), ``growth_mb`` (RSS at the end minus
        RSS at the first sample), ``peak_growth_mb``, and ``fps``.

    Example:
        >>> long_run_memory(config, files, "clip.mp4", ["bottle"], frames=300)["growth_mb"]  # doctest: +SKIP
        1.2
    """
    model = files.path(config, classes, max_classes)
    subject = Subject("long run", config, model, tuple(classes), os.fspath(clip), imgsz=imgsz)
    checkpoints = sorted({min(100, frames), *range(500, frames, 500), frames})
    worker = Worker(subject, open_long_runner)
    try:
        samples = worker.call("long_run", frames=frames, checkpoints=checkpoints)
    finally:
        worker.close()
    first, last = samples[0], samples[-1]
    return {
        "label": config.label,
        "precision": worker.description["precision"],
        "samples": samples,
        "growth_mb": last["rss_mb"] - first["rss_mb"],
        "peak_growth_mb": last["peak_rss_mb"] - first["peak_rss_mb"],
        "fps": last["frames"] / last["seconds"],
    }


class LongRunner(OvdetRunner):
    """An ovdet runner that also streams one long run, sampling its process's memory on the way."""

    def long_run(self, frames: int, checkpoints: Sequence[int]) -> list[dict[str, float]]:
        """Stream ``frames`` frames once; current and peak RSS when each checkpoint's frame has been handed on."""
        from ovdet.io.sinks import JsonlSink
        from ovdet.run import SinkWriter

        samples, started = [], time.perf_counter()
        with SinkWriter([JsonlSink(self.output)]) as writer:
            for count, (frame, detections) in enumerate(self.stream(self.clip(frames)), start=1):
                writer.put(frame, detections)
                if count in checkpoints:
                    samples.append({"frames": count, "seconds": time.perf_counter() - started, **process_memory()})
        return samples


def open_long_runner(subject: Subject, scratch: Path) -> LongRunner:
    """The worker's opener for :func:`long_run_memory` (module level, so it pickles into the worker)."""
    return LongRunner(subject, scratch)
