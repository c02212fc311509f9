"""``ovdet bench``: frames/s, time per stage, latency and memory of a detector, end to end on your own clip."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError, SourceError, UsageError
from . import precision_flags

if TYPE_CHECKING:
    import numpy as np

    from ..bench import Subject

ULTRALYTICS_LABEL = "ultralytics torch"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet bench``."""
    bench = commands.add_parser(
        "bench",
        help="measure frames/s, time per stage, latency and memory on a clip",
        description="Stream a clip end to end (decode, detect, JSONL written) in a fresh process and report frames/s, "
        "milliseconds per stage, p50/p95 latency and peak RSS, e.g. ovdet bench video.mp4 --classes person",
    )
    bench.add_argument("source", help="a video file or an image folder (looped when shorter than --frames)")
    bench.add_argument("--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)")
    bench.add_argument("--classes", default="person", help='comma-separated class names (default "%(default)s")')
    bench.add_argument("--frames", type=int, default=100, help="timed frames (default %(default)s)")
    bench.add_argument("--imgsz", type=int, default=640, help="network input size (default %(default)s)")
    bench.add_argument("--batch", type=int, default=1, help="frames per forward pass (default %(default)s)")
    bench.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default %(default)s)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    bench.add_argument("--runtime", help="for a .pt: auto, torch, openvino or onnxruntime (default: the detector's)")
    precision_flags.add_arguments(bench)
    bench.add_argument(
        "--compare-ultralytics",
        action="store_true",
        help="also run Ultralytics' YOLOWorld.predict(stream=True) in PyTorch on the same clip, weights and classes",
    )
    bench.add_argument(
        "--live",
        action="store_true",
        help="deliver the clip at its frame rate like a camera; frames the detector has no time for are dropped, "
        "and latency is from a frame's arrival to its output",
    )
    bench.add_argument("--rounds", type=int, default=3, help="turns each run takes, alternating (default 3)")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Measure, then print one block per configuration (and the ratio to Ultralytics when compared)."""
    from ..bench import BenchmarkError, RunConfig, Subject, measure

    classes = tuple(name.strip() for name in args.classes.split(",") if name.strip())
    _check(args, classes)
    options = {"device": args.device, **({"runtime": args.runtime} if args.runtime else {})}
    options.update(precision=precision_flags.requested(args), calibration=args.calibration)
    ovdet = Subject(
        "ovdet", RunConfig("ovdet", options=options), args.model, classes, args.source,
        imgsz=args.imgsz, batch=args.batch, conf=args.conf, live=args.live,
    )  # fmt: skip
    subjects = [_ultralytics_subject(args, classes), ovdet] if args.compare_ultralytics else [ovdet]
    measured = measure(subjects, frames=args.frames, rounds=args.rounds if len(subjects) > 1 else 1)
    rows = {row["label"]: row for row in measured.rows}
    if "error" in rows["ovdet"]:
        raise BenchmarkError(rows["ovdet"]["error"])
    for row in measured.rows:
        print(_describe(row))
    if ULTRALYTICS_LABEL in rows and "error" not in rows[ULTRALYTICS_LABEL]:
        print(f"ovdet / Ultralytics PyTorch: {rows['ovdet']['fps'] / rows[ULTRALYTICS_LABEL]['fps']:.2f}×")
    return 0


def _check(args: argparse.Namespace, classes: tuple[str, ...]) -> None:
    if not Path(args.source).exists():
        raise SourceError(f"{args.source} does not exist: ovdet bench needs a video file or an image folder")
    if not classes:
        raise ConfigError('--classes is empty: pass class names, e.g. --classes "person,car"')
    if args.live and args.compare_ultralytics:
        raise ConfigError("--live measures ovdet on a paced clip; run --compare-ultralytics without --live")
    for name in ("frames", "rounds", "batch"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    _check_precision(args)


def _check_precision(args: argparse.Namespace) -> None:
    """Contradictory precision flags are usage errors before any worker starts."""
    from ..models import choose_precision

    if args.calibration and not Path(args.calibration).exists():
        raise SourceError(f"--calibration {args.calibration} does not exist: pass a video file or a folder of images")
    try:
        choose_precision(args.model, precision_flags.requested(args), None, args.calibration)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _ultralytics_subject(args: argparse.Namespace, classes: tuple[str, ...]) -> Subject:
    """Ultralytics on the same ``.pt``, with ovdet's embeddings of the classes injected (its encoder needs git)."""
    from ..bench import ULTRALYTICS, RunConfig, Subject
    from ..core.weights import resolve_weights

    weights = resolve_weights(args.model)
    if weights.suffix != ".pt":
        raise ConfigError(f"--compare-ultralytics runs the YOLO-World .pt; {args.model} is an export: pass the .pt")
    config = RunConfig(ULTRALYTICS_LABEL, ULTRALYTICS)
    return Subject(
        ULTRALYTICS_LABEL, config, str(weights), classes, args.source, imgsz=args.imgsz, conf=args.conf,
        vectors=_class_vectors(weights, classes, args.imgsz),
    )  # fmt: skip


def _class_vectors(weights: Path, classes: Sequence[str], imgsz: int) -> np.ndarray:
    """``(K, 512)`` embeddings of ``classes`` by ovdet's PyTorch detector, through its cache."""
    from ..detector import OpenVocabDetector

    detector = OpenVocabDetector(weights, device="cpu", imgsz=imgsz, runtime="torch")
    detector.set_classes(list(classes))
    return detector.embeddings.vectors.copy()


def _describe(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['label']}: failed: {row['error']}"
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in row["ms_per_frame"].items() if ms is not None)
    shape = "×".join(map(str, row["input_shape"]))
    live = (
        f"\n  live: {row['frames_dropped']} stale frame(s) dropped, {row['frames']} processed"
        if row.get("live")
        else ""
    )
    return (
        f"{row['label']} ({row['runtime']} {row['precision']}, input {shape}, batch {row['batch']}): "
        f"{row['fps']:.1f} frames/s over {row['frames']} frames\n"
        f"  ms per frame: {stages}\n"
        f"  latency p50 {row['latency_ms_p50']:.1f} ms, p95 {row['latency_ms_p95']:.1f} ms; "
        f"{100 * row['overhead']:.1f}% of wall time outside the runtime's forward; "
        f"peak RSS {row['peak_rss_mb']:.0f} MB{live}"
    )
