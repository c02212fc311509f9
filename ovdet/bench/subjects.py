"""What ``ovdet bench`` measures: a configuration as data, the subject running it, the looped clip, and memory."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import OvdetError
from ..io.sources import Frame, FrameSource, open_source

__all__ = [
    "OVDET",
    "ULTRALYTICS",
    "BenchmarkError",
    "LoopedClip",
    "PacedClip",
    "RunConfig",
    "Subject",
    "process_memory",
    "read_frames",
]

ULTRALYTICS = "ultralytics"
OVDET = "ovdet"


class BenchmarkError(OvdetError):
    """A configuration could not be prepared or measured.

    Example:
        >>> str(BenchmarkError("ovdet torch: worker exited with code 1"))
        'ovdet torch: worker exited with code 1'
    """


@dataclass(frozen=True)
class RunConfig:
    """One way to run the detector, as data.

    Attributes:
        label: The name in tables and plots.
        engine: ``"ovdet"`` (``OpenVocabDetector``) or ``"ultralytics"`` (``YOLOWorld``/``YOLO`` ``predict``).
        export: ``None`` to run the ``.pt`` file; ``"onnx"`` or ``"openvino"`` to run an export of it made for the
            run (ovdet: changeable vocabulary; Ultralytics: its own export, classes baked in).
        options: ovdet: keyword arguments of ``OpenVocabDetector``. Ultralytics: ``{"openvino_precision": "f32"}``
            compiles its OpenVINO model in FP32 instead of the device's default precision.
        int8: Quantize the export to INT8 on frames of the benchmark's clip (ovdet: NNCF, as ``ovdet export
            --precision int8``; Ultralytics: its ``export(int8=True)`` with those frames as its calibration set).

    Example:
        >>> RunConfig("ovdet openvino reduced", export="openvino", options={"half": True}).engine
        'ovdet'
    """

    label: str
    engine: str = OVDET
    export: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    int8: bool = False


@dataclass(frozen=True)
class Subject:
    """One thing to measure: a configuration with its model file, vocabulary, clip and settings.

    Attributes:
        label: The name in results.
        config: How to run it.
        model: The ``.pt`` file or the exported model the configuration runs.
        classes: The class names.
        clip: A video file or image folder, streamed from its start (looped when shorter than asked for).
        imgsz: Network input size (longest side).
        batch: Frames per forward pass (ovdet).
        conf: Confidence threshold.
        vectors: ``(K, 512)`` class embeddings, injected into Ultralytics' model (it cannot encode text offline).
        empty_cache: Start ovdet with an empty embedding cache, so the first ``set_classes`` is cold.
        warmup: Untimed frames streamed before the first turn.
        live: Deliver the clip as a camera would, at its frame rate, dropping frames the detector has no time for
            (ovdet), so latency is measured as a live source sees it.

    Example:
        >>> Subject("ovdet torch", RunConfig("ovdet torch"), "w.pt", ("bottle",), "clip.mp4").imgsz
        640
    """

    label: str
    config: RunConfig
    model: str
    classes: tuple[str, ...]
    clip: str
    imgsz: int = 640
    batch: int = 1
    conf: float = 0.25
    vectors: np.ndarray | None = None
    empty_cache: bool = False
    warmup: int = 5
    live: bool = False


class LoopedClip(FrameSource):
    """The frames of a video file or image folder from its start, looped until ``count`` frames are read.

    Frame indices keep increasing across loops, so every frame of a long run is distinct.

    Example:
        >>> source = LoopedClip("../shared/data/bottle-detection.mp4", 2000)  # doctest: +SKIP
        >>> sum(1 for _ in source)  # doctest: +SKIP
        2000
    """

    def __init__(self, path: str | os.PathLike[str], count: int) -> None:
        if not Path(path).exists():
            raise BenchmarkError(f"{path} does not exist: benchmark a video file or an image folder")
        self.name = os.fspath(path)
        probe = open_source(self.name)
        self.fps = probe.fps
        probe.close()
        self.total = count

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while index < self.total:
            first = index
            with closing(iter(open_source(self.name))) as frames:
                for frame in frames:
                    yield Frame(frame.image, index, float(index / self.fps) if self.fps else None, self.name)
                    index += 1
                    if index >= self.total:
                        return
            if index == first:
                raise BenchmarkError(f"no frame could be read from {self.name}")


class PacedClip(LoopedClip):
    """A :class:`LoopedClip` delivered in real time, like a camera: frame ``i`` arrives ``i / fps`` s after the
    first, whether or not the detector is ready for it (a live source: ovdet keeps only the newest frame)."""

    live = True

    def __init__(self, path: str | os.PathLike[str], count: int) -> None:
        super().__init__(path, count)
        if not self.fps:
            raise BenchmarkError(f"{path} has no frame rate: a live benchmark needs a video file")

    def __iter__(self) -> Iterator[Frame]:
        started = time.perf_counter()
        for frame in super().__iter__():
            time.sleep(max(0.0, started + frame.timestamp - time.perf_counter()))
            yield frame


def read_frames(clip: str | os.PathLike[str], count: int, step: int = 1) -> list[np.ndarray]:
    """Every ``step``-th of the clip's first ``count * step`` frames, as BGR arrays.

    Example:
        >>> len(read_frames("../shared/data/bottle-detection.mp4", 4, step=5))  # doctest: +SKIP
        4
    """
    return [frame.image for frame in LoopedClip(clip, count * step) if frame.index % step == 0]


def process_memory() -> dict[str, float | None]:
    """This process's current and peak resident memory in MB (current RSS is ``None`` where there is no /proc).

    The peak comes from ``VmHWM`` on Linux: ``ru_maxrss`` keeps the parent's peak across fork + exec.

    Example:
        >>> process_memory()["peak_rss_mb"] > 0
        True
    """
    fields = _proc_status_mb("VmRSS", "VmHWM")  # one read: the peak is never below the current RSS
    peak = fields["VmHWM"]
    if peak is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10  # bytes on macOS, KiB elsewhere
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": peak}


def _proc_status_mb(*names: str) -> dict[str, float | None]:
    """Memory fields of one read of ``/proc/self/status`` (given in KiB) in MB; ``None`` each without /proc."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return dict.fromkeys(names)
    lines = status.read_text().splitlines()
    return {name: int(next(line for line in lines if line.startswith(f"{name}:")).split()[1]) / 2**10 for name in names}
