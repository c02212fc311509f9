"""Video end to end: ``ovdet detect`` against Ultralytics' ``predict(stream=True)``, same clip, weights, classes.

Each run is its own process, so peak memory is its own. ovdet's run writes JSONL and reports peak RSS after 100
frames and at the end.

    python benchmarks/video.py --clip ../shared/data/one-by-one-person-detection.mp4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, peak_rss_mb, save, ultralytics_model, use_weights

CLASSES = ["red backpack", "person wearing sunglasses"]


def run_ultralytics(clip: Path, imgsz: int, limit: int | None) -> dict:
    """Ultralytics YOLOWorld.predict(stream=True) with ovdet's embeddings injected (its set_classes needs git)."""
    model = ultralytics_model(CLASSES)
    results = model.predict(str(clip), stream=True, imgsz=imgsz, verbose=False, device="cpu")
    return {**_timed(results, limit), "precision": "fp32"}  # PyTorch on the CPU


def run_ovdet(clip: Path, imgsz: int, limit: int | None, batch: int) -> dict:
    """The ``ovdet detect`` path: threaded decode, batched inference, JSONL written per frame."""
    import tempfile

    from ovdet import OpenVocabDetector
    from ovdet.io.sinks import JsonlSink
    from ovdet.run import SinkWriter

    detector = OpenVocabDetector("yolov8s-worldv2", device="cpu")
    detector.set_classes(CLASSES)
    with tempfile.TemporaryDirectory() as folder, SinkWriter([JsonlSink(Path(folder) / "out.jsonl")]) as writer:
        frames = (writer.put(*result) for result in detector.stream(clip, imgsz=imgsz, batch=batch))
        return {**_timed(frames, limit), "precision": detector.backend.precision}


def _timed(results: Iterator, limit: int | None) -> dict:
    """Consume ``results`` (at most ``limit``): frames/s, and peak RSS after 100 frames and at the end."""
    frames, rss_100, started = 0, None, time.perf_counter()
    for _ in results:
        frames += 1
        rss_100 = peak_rss_mb() if frames == 100 else rss_100
        if limit and frames >= limit:
            break
    seconds = time.perf_counter() - started
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "rss_mb_100": rss_100,
            "rss_mb_end": peak_rss_mb()}  # fmt: skip


def child(args: argparse.Namespace) -> None:
    use_weights(ensure_weights(args.weights))
    if args.child == "ultralytics":
        result = run_ultralytics(args.clip, args.imgsz, args.limit)
    else:
        result = run_ovdet(args.clip, args.imgsz, args.limit, args.batch)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED_DATA / "one-by-one-person-detection.mp4")
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--limit", type=int, help="stop after this many frames")
    parser.add_argument("--child", choices=["ultralytics", "ovdet"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    weights = ensure_weights(args.weights)
    results = {}
    for name in ("ultralytics", "ovdet"):
        command = [sys.executable, __file__, "--child", name, "--clip", str(args.clip), "--weights", str(weights),
                   "--imgsz", str(args.imgsz), "--batch", str(args.batch)]  # fmt: skip
        command += ["--limit", str(args.limit)] if args.limit else []
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        row = results[name]
        at_100 = f"{row['rss_mb_100']:.0f} MB" if row["rss_mb_100"] is not None else "n/a (under 100 frames)"
        print(f"{name:12s} {row['frames']} frames  {row['fps']:.2f} frames/s  "
              f"peak RSS {at_100} @100, {row['rss_mb_end']:.0f} MB @end")  # fmt: skip
    ratio = results["ovdet"]["fps"] / results["ultralytics"]["fps"]
    print(f"ovdet / ultralytics: {ratio:.2f}x")
    path = save("video", {"machine": machine(), "clip": str(args.clip), "imgsz": args.imgsz, "batch": args.batch,
                          "classes": CLASSES, "results": results, "ratio": ratio})  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
