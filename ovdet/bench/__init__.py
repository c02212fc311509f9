"""What ``ovdet bench`` needs to measure a detector on the user's own clip: frames/s, time per stage, latency and
memory, each configuration in a worker process of its own (optionally beside Ultralytics' PyTorch baseline).

Importing this package loads no model and starts nothing; every function returns data (printing is left to the
callers). The side-by-side comparisons, sweeps, compute and agreement tables of the project's own benchmarks live
in ``benchmarks/`` of the repository, built on this package.

Example:
    >>> subject = Subject("ovdet", RunConfig("ovdet"), "yolov8s-worldv2", ("person",), "clip.mp4")
    >>> measure([subject], frames=100).rows[0]["fps"]  # doctest: +SKIP
    21.4
"""

from __future__ import annotations

from .measure import Measurement, Worker, measure
from .runners import OvdetRunner, UltralyticsRunner, open_runner
from .subjects import OVDET, ULTRALYTICS, BenchmarkError, LoopedClip, RunConfig, Subject, process_memory, read_frames

__all__ = [
    "OVDET",
    "ULTRALYTICS",
    "BenchmarkError",
    "LoopedClip",
    "Measurement",
    "OvdetRunner",
    "RunConfig",
    "Subject",
    "UltralyticsRunner",
    "Worker",
    "measure",
    "open_runner",
    "process_memory",
    "read_frames",
]
