"""Where the time goes: seconds per pipeline stage and per-frame latency, for benchmarks and ``ovdet bench``.

Off unless a :class:`Profiler` is attached (``detector.profiler = Profiler()``); then each stage adds two
``perf_counter`` calls per batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["STAGES", "Profiler"]

STAGES = ("decode", "preprocess", "inference", "postprocess", "write")


class Profiler:
    """Accumulates seconds per stage, and each frame's latency from decoded to written.

    Example:
        >>> profiler = Profiler()
        >>> with profiler.stage("inference"):
        ...     pass
        >>> sorted(profiler.summary(frames=1)["ms_per_frame"])[:2]
        ['decode', 'inference']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.latencies: list[float] = []
        self.frames_dropped = 0
        self._decoded_at: dict[tuple[str, int], float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def decoded(self, source: str, index: int) -> None:
        self._decoded_at[(source, index)] = time.perf_counter()

    def written(self, source: str, index: int) -> None:
        started = self._decoded_at.pop((source, index), None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)

    def dropped(self, source: str, index: int) -> None:
        """A live frame skipped as stale: it has no latency."""
        self._decoded_at.pop((source, index), None)
        self.frames_dropped += 1

    def summary(self, frames: int) -> dict[str, Any]:
        """Milliseconds per frame for each stage, and p50/p95 latency in milliseconds."""
        latencies = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return {
            "ms_per_frame": {stage: self.seconds.get(stage, 0.0) * 1000 / max(frames, 1) for stage in STAGES},
            "latency_ms_p50": float(np.percentile(latencies, 50)),
            "latency_ms_p95": float(np.percentile(latencies, 95)),
            "frames_dropped": self.frames_dropped,
        }
