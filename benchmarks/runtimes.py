"""Frames/s of each runtime through ``OpenVocabDetector.detect``, side by side in one run, and each export's size.

Exports the model four ways (ONNX and OpenVINO; fixed classes and a changeable vocabulary), then times PyTorch,
onnxruntime and OpenVINO (FP32, and the CPU's own reduced precision) on the same decoded frames of one clip.
Decoding is excluded; letterboxing, inference and post-processing are included. The runtimes take turns on
chunks of the frames, so a change in the machine's load during the run affects them alike.

    python benchmarks/runtimes.py --frames 100 --imgsz 640
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, save, use_weights

if TYPE_CHECKING:
    from ovdet import OpenVocabDetector

RUNTIME_PACKAGES = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class Plan:
    """One runtime configuration to time: a label, the model file or registry name, and reduced precision."""

    label: str
    model: str
    half: bool = False


def main() -> None:
    args = _parse_args()
    use_weights(ensure_weights(args.weights))
    from ovdet import OpenVocabDetector

    frames = _read_frames(args.clip, args.frames + args.warmup)
    classes = [name.strip() for name in args.classes.split(",")]
    plans = _export_all(args, classes)
    detectors = {}
    for plan in plans:
        detectors[plan.label] = OpenVocabDetector(plan.model, device="cpu", imgsz=args.imgsz, half=plan.half)
        detectors[plan.label].set_classes(classes)
        for frame in frames[: args.warmup]:
            detectors[plan.label].detect(frame, conf=args.conf)
    load_before = os.getloadavg()[0]
    rounds, boxes = _time_interleaved(detectors, frames[args.warmup :], args)
    rows = [_row(plan, detectors[plan.label], rounds[plan.label], boxes[plan.label]) for plan in plans]
    load = {"before": load_before, "after": os.getloadavg()[0]}
    _print_table(rows, args, load)
    settings = {key: str(value) for key, value in vars(args).items()}
    versions = {name: metadata.version(name) for name in RUNTIME_PACKAGES}
    path = save("runtimes", {"machine": {**machine(), **versions, "load_average": load}, "settings": settings,
                             "results": rows})  # fmt: skip
    print(f"saved {path}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED_DATA / "bottle-detection.mp4")
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    parser.add_argument("--frames", type=int, default=100, help="timed frames per runtime")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--rounds", type=int, default=5, help="turns the runtimes take on chunks of the frames")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--classes", default="bottle,person,red backpack")
    parser.add_argument("--max-classes", type=int, default=16, help="slots of the changeable-vocabulary exports")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--exports", type=Path, help="folder for the exports (default: a temporary folder)")
    return parser.parse_args()


def _read_frames(clip: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < count:
        raise SystemExit(f"{clip} has {len(frames)} frames, fewer than the {count} asked for")
    return frames


def _export_all(args: argparse.Namespace, classes: list[str]) -> list[Plan]:
    """PyTorch, the fixed and changeable exports to ONNX and OpenVINO, and the OpenVINO ones in reduced precision."""
    from ovdet import OpenVocabDetector

    source = OpenVocabDetector("yolov8s-worldv2", device="cpu", imgsz=args.imgsz)
    source.set_classes(classes)
    exports = args.exports or Path(tempfile.mkdtemp(prefix="ovdet-bench-"))
    plans = [Plan("torch", str(source.model_path))]
    for runtime in ("onnx", "openvino"):
        fixed = source.export(runtime, output=exports / f"{runtime}-fixed")
        dynamic = source.export(
            runtime, dynamic_vocab=True, max_classes=args.max_classes, output=exports / f"{runtime}-dynamic"
        )
        plans += [Plan(f"{runtime} fixed {len(classes)}", str(fixed))]
        plans += [Plan(f"{runtime} dynamic {args.max_classes}", str(dynamic))]
    return plans + [Plan(f"{p.label} reduced", p.model, half=True) for p in plans if p.label.startswith("openvino")]


def _time_interleaved(
    detectors: dict[str, OpenVocabDetector], frames: list[np.ndarray], args: argparse.Namespace
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, int]]:
    """(frames, seconds) of each round and boxes per runtime; the runtimes take turns on chunks of the frames."""
    rounds: dict[str, list[tuple[int, float]]] = {label: [] for label in detectors}
    boxes = dict.fromkeys(detectors, 0)
    for chunk in np.array_split(np.arange(len(frames)), args.rounds):
        for label, detector in detectors.items():
            started = time.perf_counter()
            for index in chunk:
                boxes[label] += len(detector.detect(frames[index], conf=args.conf))
            rounds[label].append((len(chunk), time.perf_counter() - started))
    return rounds, boxes


def _row(plan: Plan, detector: OpenVocabDetector, rounds: list[tuple[int, float]], boxes: int) -> dict:
    artifact = getattr(detector.backend, "artifact", None)
    sizes = artifact.size_bytes() if artifact else {"detector": detector.model_path.stat().st_size, "text_encoder": 0}
    frames = sum(count for count, _ in rounds)
    seconds = sum(elapsed for _, elapsed in rounds)
    return {
        **asdict(plan),
        "runtime": detector.backend.name,
        "precision": getattr(detector.backend, "precision", "fp32"),
        "fps": frames / seconds,
        "fps_best_round": max(count / elapsed for count, elapsed in rounds),  # the round least disturbed by others
        "ms_per_frame": 1000 * seconds / frames,
        "boxes_per_frame": boxes / frames,
        "model_mb": sizes["detector"] / 1e6,
        "text_encoder_mb": sizes["text_encoder"] / 1e6,
    }


def _print_table(rows: list[dict], args: argparse.Namespace, load: dict) -> None:
    print(f"\n{args.frames} frames of {args.clip.name} at imgsz {args.imgsz}, {len(rows)} runtimes taking turns")
    print(f"load average before/after: {load['before']:.2f} / {load['after']:.2f}\n")
    print("| runtime | precision | frames/s | best round | ms/frame | model MB | text encoder MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        text = f"{row['text_encoder_mb']:.1f}" if row["text_encoder_mb"] else "–"
        print(
            f"| {row['label']} | {row['precision']} | {row['fps']:.1f} | {row['fps_best_round']:.1f} | "
            f"{row['ms_per_frame']:.1f} | {row['model_mb']:.1f} | {text} |"
        )


if __name__ == "__main__":
    main()
