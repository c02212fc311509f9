"""Per-image time of ``ovdet detect`` against Ultralytics' ``predict`` on the same images, weights and classes,
side by side in one process (alternating rounds, so load on the machine hits both alike).

    python benchmarks/images.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, save, ultralytics_model, use_weights

CLASSES = ["bottle", "person", "red backpack"]


def write_images(folder: Path, count: int) -> list[Path]:
    """``count`` JPEG frames spread over the two shared clips."""
    import cv2

    paths = []
    for clip in ("bottle-detection.mp4", "one-by-one-person-detection.mp4"):
        capture = cv2.VideoCapture(str(SHARED_DATA / clip))
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for position in range(count // 2):
            capture.set(cv2.CAP_PROP_POS_FRAMES, position * total // (count // 2))
            ok, frame = capture.read()
            if ok:
                paths.append(folder / f"{clip[:6]}{position:03d}.jpg")
                cv2.imwrite(str(paths[-1]), frame)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    args = parser.parse_args()
    use_weights(ensure_weights(args.weights))

    from ovdet import OpenVocabDetector
    from ovdet.io.sinks import JsonlSink
    from ovdet.io.sources import open_source

    detector = OpenVocabDetector("yolov8s-worldv2", device="cpu")
    detector.set_classes(CLASSES)
    model = ultralytics_model(CLASSES)

    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as outputs:
        paths = write_images(Path(folder), args.images)
        model.predict(str(paths[0]), verbose=False, device="cpu")  # warm-up both
        detector.detect(paths[0])
        timings: dict[str, list[float]] = {"ultralytics": [], "ovdet": []}
        for _ in range(args.rounds):
            started = time.perf_counter()
            for path in paths:
                model.predict(str(path), verbose=False, device="cpu")
            timings["ultralytics"].append((time.perf_counter() - started) / len(paths))
            started = time.perf_counter()
            with JsonlSink(Path(outputs) / "out.jsonl") as sink:
                for frame, detections in detector.stream(open_source(folder)):
                    sink.write(frame, detections)
            timings["ovdet"].append((time.perf_counter() - started) / len(paths))
    result = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    for name, ms in result.items():
        print(f"{name:12s} {ms:.1f} ms/image (median of {args.rounds} rounds over {len(paths)} images)")
    print(f"ultralytics / ovdet time: {result['ultralytics'] / result['ovdet']:.2f}x")
    precision = {"ultralytics": "fp32", "ovdet": detector.backend.precision}  # Ultralytics: PyTorch on the CPU
    record = {"machine": machine(), "images": len(paths), "ms_per_image": result, "precision": precision}
    print(f"saved {save('images', record)}")


if __name__ == "__main__":
    main()
