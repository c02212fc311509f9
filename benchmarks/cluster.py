"""Batch throughput: ``ovdet batch`` in this process, and on a local Ray cluster with 1 and 2 workers, side by side.

Each configuration runs in its own process on the same clips (cut from the shared bottle video), the same weights
and classes, into its own output folder, ``--turns`` times in alternating order; the table shows each one's best
turn and all turns. frames/s counts from the first source dispatched to the last result (the start-up, with the
workers' model loading, is in the wall time).

    python benchmarks/cluster.py --clips 4 --frames 40 --imgsz 640
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, save, use_weights

CLASSES = ["bottle", "person", "red backpack"]
ARCHIVE_FRAMES = 10_000 * 3600 * 10  # 10,000 hours at 10 frames/s
CONFIGURATIONS = {"in-process": (None, 1), "ray 1 worker": ("local", 1), "ray 2 workers": ("local", 2)}


def make_clips(folder: Path, count: int, frames: int) -> list[Path]:
    """``count`` clips of ``frames`` consecutive frames each, from different parts of the bottle video."""
    from tests.conftest import read_frames
    from tests.media import write_clip

    source = read_frames(SHARED_DATA / "bottle-detection.mp4", count * frames)
    return [write_clip(folder / f"clip{i}.mp4", source[i * frames : (i + 1) * frames]) for i in range(count)]


def run_configuration(name: str, clips: list[Path], output: Path, imgsz: int, runtime: str) -> dict:
    """One configuration, in this (child) process."""
    from ovdet.cluster import BatchRequest, run_batch
    from ovdet.core.config import InferenceSettings
    from ovdet.prompts.vocabulary import Vocabulary

    ray, workers = CONFIGURATIONS[name]
    request = BatchRequest(
        [str(clip) for clip in clips], output, ("jsonl",), "yolov8s-worldv2", Vocabulary.from_names(CLASSES),
        settings=InferenceSettings(imgsz=imgsz), device="cpu", runtime=runtime, ray=ray, workers=workers, quiet=True,
    )  # fmt: skip
    started = time.perf_counter()
    report = run_batch(request, threading.Event())
    return {
        "configuration": name,
        "runtime": runtime,
        "precision": "bf16" if request.settings.half else "fp32",
        "frames": report.frames,
        "fps": report.rate,
        "processing_s": report.seconds,
        "wall_s": time.perf_counter() - started,
        "workers": {
            worker: {"sources": sources, "frames": frames, "fps": frames / busy if busy else 0.0}
            for worker, (sources, frames, busy) in report.workers.items()
        },
    }


def archive_hours(fps: float) -> float:
    """Hours to run 10,000 hours of 10 frames/s video at ``fps`` frames/s in all (perfect scaling over sources)."""
    return ARCHIVE_FRAMES / fps / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40, help="frames per clip")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runtime", default="openvino", help="torch, openvino or onnxruntime (default %(default)s)")
    parser.add_argument("--turns", type=int, default=2, help="runs of each configuration, in alternating order")
    parser.add_argument("--child", choices=list(CONFIGURATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--turn", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_weights(ensure_weights(args.weights))
    if args.child:
        clips = sorted((args.folder / "clips").glob("*.mp4"))
        output = args.folder / f"{args.child.replace(' ', '-')}-{args.turn}"
        result = run_configuration(args.child, clips, output, args.imgsz, args.runtime)
        print(json.dumps(result))
        return
    # a .pt converts once for OpenVINO or onnxruntime, in a process of its own, before any timing
    convert = f"from ovdet import OpenVocabDetector; OpenVocabDetector('yolov8s-worldv2', runtime='{args.runtime}')"
    subprocess.run([sys.executable, "-c", convert], check=True, capture_output=True)
    turns: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (folder / "clips").mkdir()
        make_clips(folder / "clips", args.clips, args.frames)
        order = list(CONFIGURATIONS)
        for turn in range(args.turns):  # alternate the order so that a drift in the machine's load favours none
            for name in order if turn % 2 == 0 else order[::-1]:
                command = [sys.executable, __file__, "--child", name, "--folder", str(folder), "--turn", str(turn),
                           "--imgsz", str(args.imgsz), "--runtime", args.runtime]  # fmt: skip
                if args.weights:
                    command += ["--weights", str(args.weights)]
                completed = subprocess.run(command, capture_output=True, text=True, check=True)
                turns[name].append(json.loads(completed.stdout.strip().splitlines()[-1]))
                print(f"turn {turn + 1}, {name}: {turns[name][-1]['fps']:.2f} frames/s", file=sys.stderr)
    rows = [{**max(results, key=lambda row: row["fps"]), "turns": [row["fps"] for row in results]}
            for results in turns.values()]  # fmt: skip
    print(table(rows))
    for row in rows:
        print(f"{row['configuration']}: 10,000 h of 10 fps video in {archive_hours(row['fps']):,.0f} h on one such "
              f"machine (N machines: divide by N)")  # fmt: skip
    sizes = {"clips": args.clips, "frames": args.frames, "imgsz": args.imgsz, "turns": args.turns}
    path = save(f"cluster-{args.runtime}", {"machine": machine(), **sizes, "rows": rows})
    print(f"\nsaved {path}")


def table(rows: list[dict]) -> str:
    base = next(row["fps"] for row in rows if row["configuration"] == "ray 1 worker")
    header = ["configuration", "runtime", "frames", "best frames/s", "turns frames/s", "× 1 Ray worker",
              "processing s", "wall s (with start-up)", "per worker frames/s"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        per_worker = ", ".join(f"{w['fps']:.2f}" for w in row["workers"].values())
        turns = ", ".join(f"{fps:.2f}" for fps in row["turns"])
        rates = [f"{row['fps']:.2f}", turns, f"{row['fps'] / base:.2f}"]
        cells = [row["configuration"], row["runtime"], row["frames"], *rates, f"{row['processing_s']:.1f}",
                 f"{row['wall_s']:.1f}", per_worker]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
