"""Frames/s of each runtime through ``OpenVocabDetector.detect``, side by side in one run, and each export's size.

Exports the model four ways (ONNX and OpenVINO, fixed classes and a changeable vocabulary), then times PyTorch,
onnxruntime and OpenVINO (FP32, and the CPU's own reduced precision) on the same decoded frames of one clip.
Decoding is excluded; letterboxing, inference and post-processing are included.

Usage:
    python benchmarks/runtimes.py --model weights/yolov8s-worldv2.pt --frames 100 --imgsz 640
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from ovdet import OpenVocabDetector, __version__
from ovdet.export import export_detector

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPOSITORY.parent / "shared" / "data" / "bottle-detection.mp4"
DEFAULT_OUTPUT = REPOSITORY / "benchmarks" / "results" / "runtimes.json"
PACKAGES = ("torch", "ultralytics", "onnxruntime", "openvino", "opencv-python", "numpy")


@dataclass(frozen=True)
class Run:
    """One runtime configuration and what it measured."""

    label: str
    model: str
    half: bool
    runtime: str = ""
    precision: str = ""
    frames_per_second: float = 0.0
    ms_per_frame: float = 0.0
    boxes_per_frame: float = 0.0
    size_mb: float | None = None
    text_encoder_mb: float | None = None


def main() -> None:
    args = _parse_args()
    frames = _read_frames(args.video, args.frames + args.warmup)
    classes = [name.strip() for name in args.classes.split(",")]
    source = OpenVocabDetector(args.model, device="cpu", imgsz=args.imgsz)
    source.set_classes(classes)
    exports = Path(args.exports or tempfile.mkdtemp(prefix="ovdet-bench-"))
    plans = [Run("torch", str(source.model_path), half=False)]
    for runtime in ("onnx", "openvino"):
        fixed = export_detector(source, runtime, output=exports / f"{runtime}-fixed")
        dynamic = export_detector(
            source, runtime, dynamic_vocab=True, max_classes=args.max_classes, output=exports / f"{runtime}-dynamic"
        )
        plans += [Run(f"{runtime} fixed {len(classes)}", str(fixed), False)]
        plans += [Run(f"{runtime} dynamic {args.max_classes}", str(dynamic), False)]
    plans += [Run(f"{plan.label} reduced", plan.model, True) for plan in plans if plan.label.startswith("openvino")]
    results = [_measure(plan, classes, frames, args) for plan in plans]
    _print_table(results, args)
    _save(results, args)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8s-worldv2", help="registry name or .pt file")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="clip to decode frames from")
    parser.add_argument("--frames", type=int, default=100, help="timed frames per runtime")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--classes", default="bottle,person,red backpack")
    parser.add_argument("--max-classes", type=int, default=16, help="slots of the changeable-vocabulary exports")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--exports", help="folder for the exports (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file of the results")
    return parser.parse_args()


def _read_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < count:
        raise SystemExit(f"{video} has {len(frames)} frames, fewer than the {count} asked for")
    return frames


def _measure(plan: Run, classes: list[str], frames: list[np.ndarray], args: argparse.Namespace) -> Run:
    detector = OpenVocabDetector(plan.model, device="cpu", imgsz=args.imgsz, half=plan.half)
    detector.set_classes(classes)
    warmup, timed = frames[: args.warmup], frames[args.warmup :]
    for frame in warmup:
        detector.detect(frame, conf=args.conf)
    boxes = 0
    started = time.perf_counter()
    for frame in timed:
        boxes += len(detector.detect(frame, conf=args.conf))
    seconds = time.perf_counter() - started
    model_mb, text_encoder_mb = _sizes_mb(detector)
    return Run(
        plan.label,
        plan.model,
        plan.half,
        runtime=detector.backend.name,
        precision=getattr(detector.backend, "precision", "fp32"),
        frames_per_second=len(timed) / seconds,
        ms_per_frame=1000 * seconds / len(timed),
        boxes_per_frame=boxes / len(timed),
        size_mb=model_mb,
        text_encoder_mb=text_encoder_mb,
    )


def _sizes_mb(detector: OpenVocabDetector) -> tuple[float, float | None]:
    """Megabytes of the model itself and of its exported text encoder (``None`` where it has none)."""
    artifact = getattr(detector.backend, "artifact", None)
    if artifact is None:
        return detector.model_path.stat().st_size / 1e6, None
    sizes = artifact.size_bytes()
    return sizes["detector"] / 1e6, sizes["text_encoder"] / 1e6 or None


def _print_table(results: list[Run], args: argparse.Namespace) -> None:
    print(f"\n{args.frames} frames of {args.video.name} at imgsz {args.imgsz}, {platform.processor() or 'cpu'}\n")
    print("| runtime | precision | frames/s | ms/frame | boxes/frame | model MB | text encoder MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for run in results:
        text = f"{run.text_encoder_mb:.1f}" if run.text_encoder_mb else "–"
        print(
            f"| {run.label} | {run.precision} | {run.frames_per_second:.1f} | {run.ms_per_frame:.1f} | "
            f"{run.boxes_per_frame:.1f} | {run.size_mb:.1f} | {text} |"
        )


def _save(results: list[Run], args: argparse.Namespace) -> None:
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "versions": {"ovdet": __version__, **{name: _version(name) for name in PACKAGES}},
        "settings": {key: str(value) for key, value in vars(args).items()},
        "results": [asdict(run) for run in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nsaved {args.output}")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
