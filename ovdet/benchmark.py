"""Measure ovdet against Ultralytics side by side: frames/s, time per stage, latency, memory, compute and agreement.

Every measured configuration (a :class:`Subject`) runs in a worker process of its own, so its peak RSS is its own,
while the parent hands out turns: each subject streams a chunk of the clip in turn, round after round, so a change
in the machine's load during a run hits every subject alike. Importing this module loads no model and starts
nothing; every function returns data (printing is left to the callers).

Example:
    >>> files = ModelFiles("weights/yolov8s-worldv2.pt", "/tmp/bench")  # doctest: +SKIP
    >>> report = compare(default_configs(), files, "clip.mp4", ["bottle", "person"], frames=200)  # doctest: +SKIP
    >>> print(comparison_table(report["rows"]))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
import math
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv

from .errors import OvdetError
from .io.sources import Frame, FrameSource, open_source
from .profiling import STAGES, Profiler

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .detector import OpenVocabDetector

__all__ = [
    "COCO_NAMES",
    "BenchmarkError",
    "LoopedClip",
    "Measurement",
    "ModelFiles",
    "ModelFlops",
    "RunConfig",
    "Subject",
    "add_compute",
    "agreement",
    "agreement_report",
    "agreement_table",
    "compare",
    "comparison_table",
    "default_configs",
    "default_pairs",
    "gemm_rates",
    "long_run_memory",
    "machine_gemm",
    "machine_peaks",
    "match_boxes",
    "measure",
    "prompts",
    "read_frames",
    "sweep_batch",
    "sweep_imgsz",
    "sweep_table",
    "sweep_vocabulary",
]

log = logging.getLogger(__name__)

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

PRECISION_NAMES = {
    "f32": "fp32", "fp32": "fp32", "float32": "fp32",
    "bf16": "bf16", "bfloat16": "bf16",
    "f16": "fp16", "fp16": "fp16", "float16": "fp16",
}  # fmt: skip

ULTRALYTICS = "ultralytics"
OVDET = "ovdet"
TEXT_DIM = 512  # YOLO-World's CLIP ViT-B/32 text embeddings

# Importing Ultralytics sets OMP_NUM_THREADS=1 where it is unset; workers start with the value from before that.
_OMP_THREADS_AT_IMPORT = os.environ.get("OMP_NUM_THREADS")


class BenchmarkError(OvdetError):
    """A configuration could not be prepared or measured.

    Example:
        >>> str(BenchmarkError("ovdet torch: worker exited with code 1"))
        'ovdet torch: worker exited with code 1'
    """


def prompts(count: int) -> list[str]:
    """``count`` distinct prompts: COCO's 80 names, then numbered phrasings of them.

    Example:
        >>> prompts(82)[-2:]
        ['person number 80', 'bicycle number 81']
    """
    names = list(COCO_NAMES)
    while len(names) < count:
        names.append(f"{COCO_NAMES[len(names) % len(COCO_NAMES)]} number {len(names)}")
    return names[:count]


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

    Example:
        >>> RunConfig("ovdet openvino reduced", export="openvino", options={"half": True}).engine
        'ovdet'
    """

    label: str
    engine: str = OVDET
    export: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def default_configs() -> list[RunConfig]:
    """Ultralytics PyTorch and OpenVINO (default precision and FP32), and ovdet on each runtime.

    ``"ovdet default"`` (whatever ``OpenVocabDetector(model)`` picks) is included where the detector chooses its
    runtime itself (it takes ``runtime=``); the PyTorch row then asks for PyTorch explicitly.

    Example:
        >>> [config.label for config in default_configs()][:2]
        ['ultralytics torch', 'ultralytics openvino']
    """
    torch_options = _torch_options()
    configs = [
        RunConfig("ultralytics torch", ULTRALYTICS),
        RunConfig("ultralytics openvino", ULTRALYTICS, "openvino"),
        RunConfig("ultralytics openvino fp32", ULTRALYTICS, "openvino", {"openvino_precision": "f32"}),
        RunConfig("ovdet torch", options=torch_options),
        RunConfig("ovdet onnxruntime", export="onnx"),
        RunConfig("ovdet openvino fp32", export="openvino"),
        RunConfig("ovdet openvino reduced", export="openvino", options={"half": True}),
    ]
    if torch_options:
        configs.append(RunConfig("ovdet default"))
    return configs


def default_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """``(candidate, reference)`` pairs whose detections are compared, among the labels present.

    Example:
        >>> default_pairs(["ovdet torch", "ovdet onnxruntime"])
        [('ovdet onnxruntime', 'ovdet torch')]
    """
    pairs = [
        ("ovdet default", "ovdet torch"),
        ("ovdet openvino reduced", "ovdet openvino fp32"),
        ("ovdet openvino fp32", "ovdet torch"),
        ("ovdet onnxruntime", "ovdet torch"),
        ("ovdet torch", "ultralytics torch"),
        ("ultralytics openvino", "ultralytics openvino fp32"),
    ]
    return [(a, b) for a, b in pairs if a in labels and b in labels]


def _torch_options() -> dict[str, Any]:
    """Keyword arguments that make ``OpenVocabDetector`` run PyTorch, where it can choose another runtime."""
    from .detector import OpenVocabDetector

    return {"runtime": "torch"} if "runtime" in inspect.signature(OpenVocabDetector).parameters else {}


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


def read_frames(clip: str | os.PathLike[str], count: int, step: int = 1) -> list[np.ndarray]:
    """Every ``step``-th of the clip's first ``count * step`` frames, as BGR arrays.

    Example:
        >>> len(read_frames("../shared/data/bottle-detection.mp4", 4, step=5))  # doctest: +SKIP
        4
    """
    return [frame.image for frame in LoopedClip(clip, count * step) if frame.index % step == 0]


def _slim(detections: sv.Detections) -> sv.Detections:
    """Boxes, scores and classes only: what agreement needs, cheap to send between processes."""
    return sv.Detections(
        xyxy=np.asarray(detections.xyxy, np.float32),
        confidence=np.asarray(detections.confidence, np.float32),
        class_id=np.asarray(detections.class_id, np.int64),
    )


def _precision_name(value: object) -> str:
    name = getattr(value, "get_type_name", lambda: str(value))()
    return PRECISION_NAMES.get(str(name).lower(), str(name))


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """This process's peak RSS. On Linux from ``VmHWM``: ``ru_maxrss`` keeps the parent's peak across fork + exec."""
    status = Path("/proc/self/status")
    if status.is_file():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def _torch_threads() -> int | None:
    """PyTorch's intra-op threads in this process, where PyTorch is loaded (Ultralytics sets them on predict)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


class _OvdetRunner:
    """Runs one subject through ``OpenVocabDetector.stream`` with a JSONL sink, in a worker process."""

    def __init__(self, subject: Subject, scratch: Path) -> None:
        from .detector import OpenVocabDetector

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
        from .preprocess import target_shape

        backend = self.detector.backend
        frame = read_frames(self.subject.clip, 1)[0]
        half = getattr(backend, "half", False)
        return {
            "runtime": backend.name,
            "precision": _precision_name(getattr(backend, "precision", "fp16" if half else "fp32")),
            "input_shape": list(target_shape([frame.shape[:2]], self.subject.imgsz, backend.stride, backend.rect)),
            "slots": _class_slots(backend, len(self.subject.classes)),
            "torch_threads": _torch_threads(),
            "load_seconds": self.load_seconds,
            **self.set_classes_ms,
        }

    def run(self, frames: int) -> dict[str, Any]:
        """Stream ``frames`` frames from the clip's start into a JSONL file; seconds per stage and latencies."""
        from .io.sinks import JsonlSink
        from .pipeline import SinkWriter

        profiler = Profiler()
        self.detector.profiler = profiler
        count, started = 0, time.perf_counter()
        try:
            with SinkWriter([JsonlSink(self.output)], profiler=profiler) as writer:
                for frame, detections in self._stream(frames):
                    writer.put(frame, detections)
                    count += 1
        finally:
            self.detector.profiler = None
        seconds = time.perf_counter() - started
        return {"frames": count, "seconds": seconds, "stages": dict(profiler.seconds), "latencies": profiler.latencies}

    def _stream(self, frames: int) -> Iterator[tuple[Frame, sv.Detections]]:
        subject = self.subject
        source = LoopedClip(subject.clip, frames)
        return self.detector.stream(source, imgsz=subject.imgsz, batch=subject.batch, conf=subject.conf)

    def detections(self, conf: float, count: int, step: int) -> list[sv.Detections]:
        settings = self.detector.settings.replace(conf=conf, imgsz=self.subject.imgsz)
        frames = read_frames(self.subject.clip, count, step)
        return [_slim(self.detector.detect_arrays([frame], settings)[0]) for frame in frames]

    def long_run(self, frames: int, checkpoints: Sequence[int]) -> list[dict[str, float]]:
        """Stream ``frames`` frames once; current and peak RSS when each checkpoint's frame has been handed on."""
        from .io.sinks import JsonlSink
        from .pipeline import SinkWriter

        samples, started = [], time.perf_counter()
        with SinkWriter([JsonlSink(self.output)]) as writer:
            for count, (frame, detections) in enumerate(self._stream(frames), start=1):
                writer.put(frame, detections)
                if count in checkpoints:
                    samples.append({"frames": count, "seconds": time.perf_counter() - started, **_memory()})
        return samples


def _class_slots(backend: object, classes: int) -> int:
    """Class rows the network computes: a changeable-vocabulary graph computes all its slots."""
    return getattr(backend, "slots", None) or getattr(backend, "max_classes", None) or classes


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


class _UltralyticsRunner:
    """Runs one subject through Ultralytics' ``predict(stream=True)``, in a worker process."""

    def __init__(self, subject: Subject) -> None:
        import torch
        from ultralytics import YOLO, YOLOWorld

        self.subject = subject
        if subject.config.options.get("openvino_precision"):
            _force_openvino_precision(subject.config.options["openvino_precision"])
        started = time.perf_counter()
        if subject.config.export is None:
            self.model = YOLOWorld(subject.model)
            self.model.model.txt_feats = torch.from_numpy(np.asarray(subject.vectors, np.float32))[None]
            self.model.model.model[-1].nc = len(subject.classes)
            self.model.model.names = dict(enumerate(subject.classes))
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
            "precision": _precision_name(precision),
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


def _memory() -> dict[str, float]:
    return {"rss_mb": _rss_mb(), "peak_rss_mb": _peak_rss_mb()}


def _serve(connection: Connection, subject: Subject) -> None:
    """Worker process: open the subject, warm it up, then answer ``(method, kwargs)`` requests until ``None``."""
    for name, value in (("YOLO_AUTOINSTALL", "False"), ("YOLO_OFFLINE", "1"), ("YOLO_VERBOSE", "False")):
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")  # library notes would interleave with the parent's output
    with tempfile.TemporaryDirectory(prefix="ovdet-bench-") as scratch:
        try:
            runner = _open_runner(subject, Path(scratch))
            runner.run(subject.warmup)
            connection.send(("ok", runner.describe()))
        except Exception as exc:
            connection.send(("error", _one_line(exc)))
            return
        methods: dict[str, Callable[..., Any]] = {"run": runner.run, "detections": runner.detections, "memory": _memory}
        if isinstance(runner, _OvdetRunner):
            methods["long_run"] = runner.long_run
        while (request := connection.recv()) is not None:
            name, kwargs = request
            try:
                connection.send(("ok", methods[name](**kwargs)))
            except Exception as exc:
                connection.send(("error", _one_line(exc)))


def _open_runner(subject: Subject, scratch: Path) -> _OvdetRunner | _UltralyticsRunner:
    if subject.config.engine == ULTRALYTICS:
        return _UltralyticsRunner(subject)
    if subject.config.engine == OVDET:
        return _OvdetRunner(subject, scratch)
    raise BenchmarkError(f"unknown engine {subject.config.engine!r} in {subject.label}: use ovdet or ultralytics")


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


class _Worker:
    """The parent's handle on one subject's worker process."""

    def __init__(self, subject: Subject) -> None:
        context = multiprocessing.get_context("spawn")
        self.label = subject.label
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, subject), name=f"ovdet-bench {subject.label}")
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
        >>> agreement_report(measured.detections, [("ovdet openvino fp32", "ovdet torch")])  # doctest: +SKIP
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
        (per stage), ``latency_ms_p50``/``p95``, ``overhead`` (share of wall time outside the runtime's forward),
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


def _detections_at(worker: _Worker, confs: Sequence[float], count: int, step: int) -> dict[float, list[sv.Detections]]:
    if not confs:
        return {}
    found = worker.call("detections", conf=min(confs), count=count, step=step)
    return {conf: [detections[detections.confidence >= conf] for detections in found] for conf in confs}


def _start_workers(subjects: Sequence[Subject]) -> tuple[dict[str, _Worker], dict[str, str]]:
    workers, errors = {}, {}
    for subject in subjects:
        started = time.perf_counter()
        try:
            workers[subject.label] = _Worker(subject)
            log.info("%s ready (%.1f s)", subject.label, time.perf_counter() - started)
        except BenchmarkError as exc:
            errors[subject.label] = str(exc)
            log.warning("%s", exc)
    return workers, errors


def _turn_sizes(frames: int, rounds: int, multiple: int) -> list[int]:
    per_turn = max(multiple, math.ceil(frames / rounds / multiple) * multiple)
    return [per_turn] * rounds


def _take_turns(
    workers: dict[str, _Worker],
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
        "overhead": (seconds - stages["inference"]) / seconds,
        **memory,
    }


def gemm_rates(precision: str, sizes: Sequence[int] = (1024, 2048), seconds: float = 0.5) -> dict[str, float]:
    """Matrix-multiply speed in GFLOP/s of each library here, at each size: the best of repeated products.

    ``precision`` is ``"fp32"`` (PyTorch, NumPy, OpenVINO) or ``"bf16"`` (PyTorch, OpenVINO); OpenVINO is left out
    where it is not installed.

    Example:
        >>> sorted(gemm_rates("fp32", sizes=(256,), seconds=0.05))  # doctest: +SKIP
        ['numpy 256', 'openvino 256', 'torch 256']
    """
    rates = {}
    for size in sizes:
        for library, product in _gemm_products(precision, size).items():
            rates[f"{library} {size}"] = _best_rate(product, 2 * size**3, seconds)
    return rates


def _gemm_products(precision: str, size: int) -> dict[str, Callable[[], object]]:
    import importlib.util

    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    products: dict[str, Callable[[], object]] = {"torch": lambda: torch.matmul(a, b)}
    if precision == "fp32":
        x, y = a.numpy(), b.numpy()
        products["numpy"] = lambda: x @ y
    if importlib.util.find_spec("openvino") is not None:
        products["openvino"] = _openvino_matmul(precision, size)
    return products


def _openvino_matmul(precision: str, size: int) -> Callable[[], object]:
    """A compiled ``size``² MatMul on the CPU in ``precision`` (OpenVINO's GEMM beats PyTorch's on some CPUs)."""
    import openvino
    import openvino.opset13 as ops

    left = ops.parameter([size, size], openvino.Type.f32)
    right = ops.constant(np.random.default_rng(0).random((size, size), np.float32))
    model = openvino.Model([ops.matmul(left, right, False, False)], [left])
    config = {"INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision], "PERFORMANCE_HINT": "LATENCY"}
    request = openvino.Core().compile_model(model, "CPU", config).create_infer_request()
    data = np.random.default_rng(1).random((size, size), np.float32)
    return lambda: request.infer({0: data})


def _best_rate(product: Callable[[], object], flops: int, seconds: float) -> float:
    product()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        product()
        best = max(best, flops / (time.perf_counter() - started) / 1e9)
    return best


def machine_gemm(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    """:func:`gemm_rates` for ``fp32`` and ``bf16``.

    Example:
        >>> sorted(machine_gemm(seconds=0.05))  # doctest: +SKIP
        ['bf16', 'fp32']
    """
    return {precision: gemm_rates(precision, seconds=seconds) for precision in ("fp32", "bf16")}


def machine_peaks(*measurements: dict[str, dict[str, float]]) -> dict[str, float]:
    """The machine's peak per precision: the fastest GEMM of any library, size and measurement.

    Example:
        >>> machine_peaks({"fp32": {"torch 2048": 90.0, "numpy 2048": 98.0}}, {"fp32": {"torch 2048": 95.0}})
        {'fp32': 98.0}
    """
    peaks: dict[str, float] = {}
    for measurement in measurements:
        for precision, rates in measurement.items():
            peaks[precision] = max(peaks.get(precision, 0.0), *rates.values())
    return peaks


class ModelFlops:
    """GFLOPs of one forward pass per image of a YOLO-World ``.pt``, at a given input shape and class count.

    Counted by Ultralytics' ``get_flops`` (THOP) on the fused model with ``slots`` text embeddings; cached.

    Example:
        >>> ModelFlops("weights/yolov8s-worldv2.pt").gflops(384, 640, 3)  # doctest: +SKIP
        19.14
    """

    def __init__(self, weights: str | os.PathLike[str]) -> None:
        self.weights = Path(weights)
        self._model = None
        self._cache: dict[tuple[int, int, int], float] = {}

    def gflops(self, height: int, width: int, slots: int) -> float:
        key = (height, width, slots)
        if key not in self._cache:
            self._cache[key] = self._count(*key)
        return self._cache[key]

    def _count(self, height: int, width: int, slots: int) -> float:
        import torch
        from ultralytics.utils.torch_utils import get_flops

        if self._model is None:
            from ultralytics import YOLOWorld

            self._model = YOLOWorld(str(self.weights)).model.fuse(verbose=False).eval()
        text = torch.nn.functional.normalize(torch.randn(1, slots, TEXT_DIM), dim=-1)
        self._model.txt_feats = text
        self._model.model[-1].nc = slots
        return float(get_flops(self._model, (height, width)))


def add_compute(rows: list[dict[str, Any]], flops: ModelFlops, peaks: dict[str, float]) -> None:
    """Add ``gflops_per_frame``, achieved ``gflops_per_s`` (end to end and during inference) and ``pct_of_peak``.

    Example:
        >>> add_compute(measured.rows, ModelFlops("yolov8s-worldv2.pt"), {"fp32": 200.0})  # doctest: +SKIP
        >>> measured.rows[0]["pct_of_peak"]  # doctest: +SKIP
        44.6
    """
    for row in rows:
        if "error" in row:
            continue
        per_frame = flops.gflops(*row["input_shape"], row["slots"])
        peak = peaks.get(row["precision"])
        inference_seconds = row["ms_per_frame"]["inference"] / 1000
        row["gflops_per_frame"] = per_frame
        row["gflops_per_s"] = per_frame * row["fps"]
        row["inference_gflops_per_s"] = per_frame / inference_seconds if inference_seconds else None
        row["peak_gflops_per_s"] = peak
        row["pct_of_peak"] = 100 * row["gflops_per_s"] / peak if peak else None
        row["inference_pct_of_peak"] = (
            100 * row["inference_gflops_per_s"] / peak if peak and row["inference_gflops_per_s"] else None
        )


def match_boxes(a: sv.Detections, b: sv.Detections, iou_threshold: float = 0.9) -> list[tuple[int, int]]:
    """Greedy one-to-one matches ``(index in a, index in b)`` of same-class boxes, highest IoU first.

    Example:
        >>> box = sv.Detections(np.array([[0, 0, 10, 10]], float), confidence=np.array([0.5]), class_id=np.array([0]))
        >>> match_boxes(box, box)
        [(0, 0)]
    """
    if len(a) == 0 or len(b) == 0:
        return []
    iou = sv.box_iou_batch(a.xyxy, b.xyxy)
    iou[a.class_id[:, None] != b.class_id[None, :]] = 0.0
    rows, cols = np.nonzero(iou >= iou_threshold)
    pairs, used_a, used_b = [], set(), set()
    for index in np.argsort(-iou[rows, cols], kind="stable"):
        i, j = int(rows[index]), int(cols[index])
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def agreement(
    reference: Sequence[sv.Detections], candidate: Sequence[sv.Detections], iou_threshold: float = 0.9
) -> dict[str, Any]:
    """How well two configurations agree on the same frames.

    ``matched_share`` is matched boxes over, per frame, the larger of the two box counts (1.0 when neither has a
    box); score differences are over matched boxes.

    Example:
        >>> boxes = sv.Detections(np.array([[0, 0, 10, 10]], float), confidence=np.array([0.5]), class_id=np.array([1]))
        >>> agreement([boxes], [boxes])["matched_share"]
        1.0
    """
    if len(reference) != len(candidate):
        raise BenchmarkError(f"agreement needs the same frames, got {len(reference)} and {len(candidate)}")
    matched, possible, differences = 0, 0, []
    for ours, theirs in zip(reference, candidate):
        pairs = match_boxes(ours, theirs, iou_threshold)
        matched += len(pairs)
        possible += max(len(ours), len(theirs))
        differences += [abs(float(ours.confidence[i]) - float(theirs.confidence[j])) for i, j in pairs]
    return {
        "frames": len(reference),
        "reference_boxes": sum(len(d) for d in reference),
        "candidate_boxes": sum(len(d) for d in candidate),
        "matched": matched,
        "matched_share": matched / possible if possible else 1.0,
        "max_score_diff": max(differences) if differences else None,
        "mean_score_diff": float(np.mean(differences)) if differences else None,
    }


def agreement_report(
    detections: dict[str, dict[float, list[sv.Detections]]], pairs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """:func:`agreement` of each ``(candidate, reference)`` pair at each confidence both were collected at.

    Example:
        >>> boxes = sv.Detections(np.array([[0, 0, 9, 9]], float), confidence=np.array([0.5]), class_id=np.array([0]))
        >>> report = agreement_report({"a": {0.25: [boxes]}, "b": {0.25: [boxes]}}, [("a", "b")])
        >>> report[0]["matched_share"], report[0]["conf"]
        (1.0, 0.25)
    """
    report = []
    for candidate, reference in pairs:
        if candidate not in detections or reference not in detections:
            continue
        for conf in sorted(set(detections[candidate]) & set(detections[reference]), reverse=True):
            result = agreement(detections[reference][conf], detections[candidate][conf])
            report.append({"candidate": candidate, "reference": reference, "conf": conf, **result})
    return report


class ModelFiles:
    """The model file each configuration runs: the ``.pt`` itself, or an export of it made once into ``folder``.

    Args:
        weights: The YOLO-World ``.pt`` file (a registry name is resolved).
        folder: Where exports are written.
        imgsz: The input size Ultralytics' (fixed-shape) export is made for.

    Example:
        >>> files = ModelFiles("yolov8s-worldv2", "/tmp/bench")  # doctest: +SKIP
        >>> config = RunConfig("ovdet openvino fp32", export="openvino")
        >>> files.path(config, ["bottle"], max_classes=80)  # doctest: +SKIP
        '/tmp/bench/openvino-dynamic80/yolov8s-worldv2.xml'
    """

    def __init__(self, weights: str | os.PathLike[str], folder: str | os.PathLike[str], imgsz: int = 640) -> None:
        from .weights import resolve_weights

        self.weights = resolve_weights(weights)
        if self.weights.suffix != ".pt":
            raise BenchmarkError(f"{self.weights} is not a YOLO-World .pt file: exports are made from the .pt")
        self.folder = Path(folder)
        self.imgsz = imgsz
        self.flops = ModelFlops(self.weights)
        self._detector: OpenVocabDetector | None = None
        self._made: dict[tuple[Any, ...], str] = {}

    def vectors(self, classes: Sequence[str]) -> np.ndarray:
        """``(K, 512)`` embeddings of ``classes``, through ovdet's cache (which the workers then find warm)."""
        detector = self._source()
        detector.set_classes(list(classes))
        return detector.embeddings.vectors.copy()

    def path(self, config: RunConfig, classes: Sequence[str], max_classes: int) -> str:
        """The model file for ``config`` (ovdet exports take up to ``max_classes`` classes)."""
        if config.export is None:
            return str(self.weights)
        baked = config.engine == ULTRALYTICS
        key = (config.engine, config.export, tuple(classes) if baked else max_classes)
        if key not in self._made:
            started = time.perf_counter()
            if baked:
                self._made[key] = self._ultralytics_export(config.export, classes)
            else:
                self._made[key] = self._ovdet_export(config.export, max_classes)
            log.info("exported %s in %.1f s", self._made[key], time.perf_counter() - started)
        return self._made[key]

    def convert_for(self, config: RunConfig, classes: int) -> None:
        """Let an ovdet configuration on the ``.pt`` make (and cache) any graph it converts to for ``classes``.

        A timed cold ``set_classes`` then measures text encoding, not a one-time conversion.
        """
        from .detector import OpenVocabDetector
        from .embeddings import Embeddings

        if config.engine != OVDET or config.export is not None:
            return
        detector = OpenVocabDetector(self.weights, **config.options)
        vectors = np.random.default_rng(0).standard_normal((classes, TEXT_DIM)).astype(np.float32)
        detector.set_embeddings(Embeddings(prompts(classes), vectors, detector.backend.space))

    def _source(self) -> OpenVocabDetector:
        from .detector import OpenVocabDetector

        if self._detector is None:
            self._detector = OpenVocabDetector(self.weights, device="cpu", imgsz=self.imgsz, **_torch_options())
        return self._detector

    def _ovdet_export(self, export: str, max_classes: int) -> str:
        from .export import export_detector

        output = self.folder / f"{export}-dynamic{max_classes}"
        return str(export_detector(self._source(), export, dynamic_vocab=True, max_classes=max_classes, output=output))

    def _ultralytics_export(self, export: str, classes: Sequence[str]) -> str:
        import shutil

        import torch
        from ultralytics import YOLOWorld

        folder = self.folder / f"ultralytics-{export}-{len(self._made)}"
        folder.mkdir(parents=True, exist_ok=True)
        weights = shutil.copy2(self.weights, folder / self.weights.name)  # Ultralytics exports beside the .pt
        model = YOLOWorld(str(weights))
        model.model.txt_feats = torch.from_numpy(self.vectors(classes))[None]
        model.model.model[-1].nc = len(classes)
        model.model.names = dict(enumerate(classes))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(model.export(format=export, imgsz=self.imgsz))


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
    worker = _Worker(subject)
    try:
        samples = worker.call("long_run", frames=frames, checkpoints=checkpoints)
    finally:
        worker.close()
    first, last = samples[0], samples[-1]
    return {
        "label": config.label,
        "samples": samples,
        "growth_mb": last["rss_mb"] - first["rss_mb"],
        "peak_growth_mb": last["peak_rss_mb"] - first["peak_rss_mb"],
        "fps": last["frames"] / last["seconds"],
    }


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _scientific(value: float | None) -> str:
    return "–" if value is None else f"{value:.1e}"


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`measure` rows (with compute columns where :func:`add_compute` ran).

    Example:
        >>> print(comparison_table([{"label": "x", "error": "failed"}]).splitlines()[-1])
        | x | failed |
    """
    header = ["configuration", "runtime", "precision", "input", "frames/s", "best turn", *(f"{s} ms" for s in STAGES),
              "p50 ms", "p95 ms", "overhead %", "peak RSS MB", "GFLOP/s", "% of peak"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['label']} | {row['error']} |")
            continue
        cells = [
            row["label"], row["runtime"], row["precision"], "×".join(map(str, row["input_shape"])), _cell(row["fps"]),
            _cell(row["fps_best_turn"]),
            *(_cell(row["ms_per_frame"][stage]) for stage in STAGES),
            _cell(row["latency_ms_p50"]), _cell(row["latency_ms_p95"]), _cell(100 * row["overhead"]),
            _cell(row["peak_rss_mb"], 0), _cell(row.get("gflops_per_s")), _cell(row.get("pct_of_peak")),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(rows: Sequence[dict[str, Any]], extra: Sequence[tuple[str, str]] = ()) -> str:
    """A markdown table of a sweep's rows: point, frames/s, milliseconds per frame, latency, RSS, compute.

    Args:
        rows: Rows of a sweep.
        extra: ``(header, row key)`` of more columns, e.g. ``("cold set_classes ms", "set_classes_first_ms")``.

    Example:
        >>> print(sweep_table([{"label": "K=1", "error": "failed"}]).splitlines()[-1])
        | K=1 | failed |
    """
    header = ["point", "frames/s", "inference ms", "p50 ms", "p95 ms", *(h for h, _ in extra), "peak RSS MB",
              "GFLOP/frame", "GFLOP/s", "% of peak"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['label']} | {row['error']} |")
            continue
        cells = [
            row["label"], _cell(row["fps"]), _cell(row["ms_per_frame"]["inference"]), _cell(row["latency_ms_p50"]),
            _cell(row["latency_ms_p95"]), *(_cell(row.get(key)) for _, key in extra), _cell(row["peak_rss_mb"], 0),
            _cell(row.get("gflops_per_frame")), _cell(row.get("gflops_per_s")), _cell(row.get("pct_of_peak")),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement_table(report: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`agreement_report`.

    Example:
        >>> agreement_table([]).splitlines()[0].split(" | ")[:3]
        ['| candidate', 'reference', 'conf']
    """
    header = ["candidate", "reference", "conf", "boxes (candidate / reference)", "matched %", "max abs score diff",
              "mean abs score diff"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in report:
        cells = [
            row["candidate"], row["reference"], _cell(row["conf"], 2),
            f"{row['candidate_boxes']} / {row['reference_boxes']}", _cell(100 * row["matched_share"]),
            _scientific(row["max_score_diff"]), _scientific(row["mean_score_diff"]),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
