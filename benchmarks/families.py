"""Model families side by side: YOLO-World and YOLOE checkpoints on the same clip, input size and classes.

Each model runs through ovdet's own path (``OpenVocabDetector.detect_arrays`` on decoded frames, so decoding is
not timed) on each runtime asked for; the models take turns round after round, and a model's frames/s is the
median over its rounds. The network's forward pass alone is timed too, on the same letterboxed frames: random
weights make each model find a different number of boxes, and so spend a different time in post-processing.
Random-init weights run exactly as fast as trained ones. YOLOE's classes are seeded random vectors in its own
embedding space (its MobileCLIP text encoder is not needed to time the detector).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ovdet import OpenVocabDetector
from ovdet.bench import read_frames
from ovdet.core.config import InferenceSettings
from ovdet.prompts.embeddings import Embeddings
from ovdet.vision.preprocess import letterbox_batch

WARMUP_FRAMES = 3


def model_file(name: str, weights_dir: Path, built: Path) -> Path:
    """The ``.pt`` of ``name``: YOLO-World from the weights folder; YOLOE built random-init once into ``built``."""
    if "world" in name:
        return weights_dir / f"{name}.pt"
    from tests import yoloe_fixtures
    from tests.weights_fixtures import read_calibration_frames

    path = built / f"{name}.pt"
    if not path.is_file():
        yoloe_fixtures.build_yoloe_checkpoint(path, name, read_calibration_frames(8))
    return path


def compare_models(
    files: dict[str, Path],
    clip: Path,
    classes: list[str],
    *,
    runtimes: list[str],
    frames: int,
    rounds: int,
    imgsz: int,
    conf: float,
) -> dict[str, Any]:
    """Frames/s of every model on every runtime, taking turns; returns ``{"rows": [...]}``."""
    images = read_frames(clip, frames)
    settings = InferenceSettings().replace(imgsz=imgsz, conf=conf)
    detectors = {(name, runtime): _detector(path, runtime, classes, imgsz) for name, path in files.items()
                 for runtime in runtimes}  # fmt: skip
    timings: dict[tuple[str, str], list[float]] = {key: [] for key in detectors}
    forwards: dict[tuple[str, str], list[float]] = {key: [] for key in detectors}
    found: dict[tuple[str, str], int] = {}
    for detector in detectors.values():
        detector.detect_arrays(images[:WARMUP_FRAMES], settings)
    for _ in range(rounds):
        for key, detector in detectors.items():
            started = time.perf_counter()
            found[key] = sum(len(detector.detect_arrays([image], settings)[0]) for image in images)
            timings[key].append(len(images) / (time.perf_counter() - started))
            forwards[key].append(_forward_ms(detector, images, imgsz))
    rows = []
    for (name, runtime), detector in detectors.items():
        fps = statistics.median(timings[(name, runtime)])
        rows.append({
            "model": name, "runtime": detector.backend.name, "task": detector.backend.task,
            "end2end": detector.backend.end2end, "space": detector.backend.space, "fps": fps, "ms": 1000 / fps,
            "forward_ms": statistics.median(forwards[(name, runtime)]), "fps_rounds": timings[(name, runtime)],
            "detections": found[(name, runtime)],
        })  # fmt: skip
    return {"rows": rows, "frames": len(images), "rounds": rounds, "imgsz": imgsz}


def _forward_ms(detector: OpenVocabDetector, images: list[np.ndarray], imgsz: int) -> float:
    """Mean milliseconds of the network's forward pass alone over ``images``, letterboxed as the detector does."""
    backend = detector.backend
    inputs = [letterbox_batch([image], imgsz, backend.stride, backend.rect, backend.input_dtype)[0] for image in images]
    started = time.perf_counter()
    for batch in inputs:
        backend.infer(batch)
    return 1000 * (time.perf_counter() - started) / len(inputs)


def _detector(path: Path, runtime: str, classes: list[str], imgsz: int) -> OpenVocabDetector:
    detector = OpenVocabDetector(path, device="cpu", runtime=runtime, imgsz=imgsz)
    if detector.backend.space.startswith("clip:"):
        detector.set_classes(classes)
    else:
        vectors = np.random.default_rng(0).normal(size=(len(classes), 512))
        detector.set_classes(Embeddings(classes, vectors, detector.backend.space))
    return detector


def models_table(report: dict[str, Any]) -> list[str]:
    """Markdown: one row per model and runtime."""
    lines = [
        f"{report['frames']} frames of the clip at imgsz {report['imgsz']}, {report['rounds']} rounds taken in turns "
        f"(median frames/s; decoding not timed).",
        "",
        "| model | runtime | task | head | frames/s | ms/frame | forward ms | detections (last round) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        head = "one-to-one, top-k" if row["end2end"] else "NMS"
        lines.append(f"| {row['model']} | {row['runtime']} | {row['task']} | {head} | {row['fps']:.1f} | "
                     f"{row['ms']:.1f} | {row['forward_ms']:.1f} | {row['detections']} |")  # fmt: skip
    return lines
