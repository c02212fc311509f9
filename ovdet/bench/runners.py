"""The two engines ``ovdet bench`` runs a subject on, inside its worker process: ovdet and Ultralytics."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv

from ..core.precision import precision_name
from ..core.profiling import Profiler
from ..io.sources import Frame, FrameSource
from ..run import OutputSpec, Run
from ..vision.preprocess import target_shape
from .subjects import OVDET, ULTRALYTICS, BenchmarkError, LoopedClip, PacedClip, Subject, read_frames

if TYPE_CHECKING:
    from ..detector import OpenVocabDetector

__all__ = ["OvdetRunner", "UltralyticsRunner", "open_runner"]


def open_runner(subject: Subject, scratch: Path) -> OvdetRunner | UltralyticsRunner:
    """The runner of the subject's engine; ``scratch`` is a folder for its output and cache."""
    if subject.config.engine == ULTRALYTICS:
        return UltralyticsRunner(subject)
    if subject.config.engine == OVDET:
        return OvdetRunner(subject, scratch)
    raise BenchmarkError(f"unknown engine {subject.config.engine!r} in {subject.label}: use ovdet or ultralytics")


class OvdetRunner:
    """Runs one subject through ``OpenVocabDetector.stream`` with a JSONL sink, in a worker process."""

    def __init__(self, subject: Subject, scratch: Path) -> None:
        from ..detector import OpenVocabDetector

        if subject.live:  # the row counts the dropped frames; the pipeline's own report would only repeat it
            logging.getLogger("ovdet.io.pipeline").setLevel(logging.ERROR)
        self.subject = subject
        self.output = scratch / "detections.jsonl"
        cache_dir = scratch / "cache" if subject.empty_cache else None
        started = time.perf_counter()
        self.detector: OpenVocabDetector = OpenVocabDetector(
            subject.model, cache_dir=cache_dir, **subject.config.options
        )
        self.load_seconds = time.perf_counter() - started
        self.set_classes_ms = _time_set_classes(self.detector, subject.classes)

    def describe(self) -> dict[str, Any]:
        backend = self.detector.backend
        frame = read_frames(self.subject.clip, 1)[0]
        half = getattr(backend, "half", False)
        return {
            "runtime": backend.name,
            "precision": precision_name(getattr(backend, "precision", "fp16" if half else "fp32")),
            "input_shape": list(target_shape([frame.shape[:2]], self.subject.imgsz, backend.stride, backend.rect)),
            "slots": _class_slots(backend, len(self.subject.classes)),
            "torch_threads": _torch_threads(),
            "load_seconds": self.load_seconds,
            **self.set_classes_ms,
        }

    def run(self, frames: int) -> dict[str, Any]:
        """Run ``frames`` frames from the clip's start into a JSONL file; seconds per stage and latencies."""
        profiler, started = Profiler(), time.perf_counter()
        source = self.clip(frames)
        run = Run(source, [OutputSpec("jsonl", self.output)], profiler=profiler)
        self.detector.profiler = profiler
        try:
            run.execute(lambda stop, track: self.stream(source, stop, track), self.detector.vocabulary)
        finally:
            self.detector.profiler = None
        seconds = time.perf_counter() - started
        return {
            "frames": run.counts.frames,
            "seconds": seconds,
            "stages": dict(profiler.seconds),
            "latencies": profiler.latencies,
            "dropped": profiler.frames_dropped,
        }

    def clip(self, frames: int) -> LoopedClip:
        """The clip's first ``frames`` frames (looped), delivered in real time for a live subject."""
        return (PacedClip if self.subject.live else LoopedClip)(self.subject.clip, frames)

    def stream(
        self, source: FrameSource, stop: threading.Event | None = None, track: bool = False
    ) -> Iterator[tuple[Frame, sv.Detections]]:
        """The detections of ``source``'s frames at the subject's settings."""
        subject = self.subject
        return self.detector.stream(
            source, track=track, stop=stop, imgsz=subject.imgsz, batch=subject.batch, conf=subject.conf
        )

    def detections(self, conf: float, count: int, step: int) -> list[sv.Detections]:
        settings = self.detector.settings.replace(conf=conf, imgsz=self.subject.imgsz)
        frames = read_frames(self.subject.clip, count, step)
        return [_slim(self.detector.detect_arrays([frame], settings)[0]) for frame in frames]


class UltralyticsRunner:
    """Runs one subject through Ultralytics' ``predict(stream=True)``, in a worker process."""

    def __init__(self, subject: Subject) -> None:
        from ultralytics import YOLO, YOLOWorld
        from ultralytics.nn import tasks

        from ..core.checkpoint import trusted
        from ..runtimes.torch import inject_classes

        tasks.SAFE_LOAD = not trusted()  # Ultralytics unpickles .pt files unrestricted unless told (its opt-in)
        self.subject = subject
        if subject.config.options.get("openvino_precision"):
            _force_openvino_precision(subject.config.options["openvino_precision"])
        started = time.perf_counter()
        if subject.config.export is None:
            self.model = YOLOWorld(subject.model)
            inject_classes(self.model.model, np.asarray(subject.vectors), subject.classes)
        else:
            self.model = YOLO(subject.model, task="detect")
        self.load_seconds = time.perf_counter() - started
        self.arguments = {"imgsz": subject.imgsz, "conf": subject.conf, "verbose": False, "device": "cpu"}

    def describe(self) -> dict[str, Any]:
        backend = self.model.predictor.model
        compiled = getattr(backend, "ov_compiled_model", None)
        precision = compiled.get_property("INFERENCE_PRECISION_HINT") if compiled is not None else "fp32"
        frame = read_frames(self.subject.clip, 1)[0]
        return {
            "runtime": "openvino" if compiled is not None else "torch",
            "precision": "int8" if self.subject.config.int8 else precision_name(precision),
            "input_shape": list(self.model.predictor.preprocess([frame]).shape[2:]),
            "slots": len(self.subject.classes),
            "torch_threads": _torch_threads(),
            "load_seconds": self.load_seconds,
        }

    def run(self, frames: int) -> dict[str, Any]:
        """``predict(stream=True)`` on the clip for ``frames`` frames; its own timers per stage, and latencies."""
        timers = dict.fromkeys(("preprocess", "inference", "postprocess"), 0.0)
        latencies, count, started = [], 0, time.perf_counter()
        with closing(self.model.predict(self.subject.clip, stream=True, **self.arguments)) as results:
            asked = time.perf_counter()
            for result in results:
                latencies.append(time.perf_counter() - asked)
                for stage, milliseconds in result.speed.items():
                    timers[stage] += (milliseconds or 0.0) / 1000
                count += 1
                if count >= frames:
                    break
                asked = time.perf_counter()
        seconds = time.perf_counter() - started
        # Ultralytics times no decode stage: the rest of the wall time is decoding and its loop.
        stages = {"decode": max(seconds - sum(timers.values()), 0.0), **timers}
        return {"frames": count, "seconds": seconds, "stages": stages, "latencies": latencies}

    def detections(self, conf: float, count: int, step: int) -> list[sv.Detections]:
        arguments = {**self.arguments, "conf": conf}
        frames = read_frames(self.subject.clip, count, step)
        return [_slim(sv.Detections.from_ultralytics(self.model.predict(frame, **arguments)[0])) for frame in frames]


def _force_openvino_precision(precision: str) -> None:
    """Make every ``openvino.Core.compile_model`` of this process ask for ``precision`` (e.g. ``"f32"``).

    Ultralytics compiles with the device's default precision (BF16 on CPUs with BF16 units) and takes no option.
    """
    import openvino

    original = openvino.Core.compile_model

    def compile_model(core, *args: Any, config: dict | None = None, **kwargs: Any):
        return original(core, *args, config={**(config or {}), "INFERENCE_PRECISION_HINT": precision}, **kwargs)

    openvino.Core.compile_model = compile_model


def _time_set_classes(detector: OpenVocabDetector, classes: Sequence[str], repeats: int = 5) -> dict[str, float]:
    """Milliseconds of the first ``set_classes`` and the median of ``repeats`` more (every prompt cached)."""
    started = time.perf_counter()
    detector.set_classes(list(classes))
    first = time.perf_counter() - started
    again = []
    for _ in range(repeats):
        started = time.perf_counter()
        detector.set_classes(list(classes))
        again.append(time.perf_counter() - started)
    return {"set_classes_first_ms": first * 1000, "set_classes_warm_ms": float(np.median(again)) * 1000}


def _class_slots(backend: object, classes: int) -> int:
    """Class rows the network computes: a changeable-vocabulary graph computes all its slots."""
    return getattr(backend, "slots", None) or getattr(backend, "max_classes", None) or classes


def _slim(detections: sv.Detections) -> sv.Detections:
    """Boxes, scores and classes only: what agreement needs, cheap to send between processes."""
    return sv.Detections(
        xyxy=np.asarray(detections.xyxy, np.float32),
        confidence=np.asarray(detections.confidence, np.float32),
        class_id=np.asarray(detections.class_id, np.int64),
    )


def _torch_threads() -> int | None:
    """PyTorch's intra-op threads in this process, where PyTorch is loaded (Ultralytics sets them on predict)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None
