"""``set_classes`` for K prompts: cold (text model load + encode), warm from the disk cache in a fresh process
(no text model loaded), and warm in memory (the same detector again).

    python benchmarks/set_classes.py --classes 80
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ensure_weights, machine, save, use_weights
from benchmarks.configs import prompts


def child(count: int) -> dict:
    from ovdet import OpenVocabDetector

    detector = OpenVocabDetector("yolov8s-worldv2", device="cpu")
    names = prompts(count)
    started = time.perf_counter()
    detector.set_classes(names)
    first = time.perf_counter() - started
    started = time.perf_counter()
    detector.set_classes(names)
    again = time.perf_counter() - started
    return {"first_ms": first * 1000, "again_ms": again * 1000, "text_model_loaded": detector.text_encoder.loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.classes)))
        return
    use_weights(ensure_weights(args.weights))
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "OVDET_CACHE_DIR": cache}
        command = [sys.executable, __file__, "--child", "--classes", str(args.classes)]
        cold = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
        warm = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    result = {
        "classes": args.classes,
        "cold_ms": cold["first_ms"],
        "warm_disk_ms": warm["first_ms"],
        "warm_memory_ms": warm["again_ms"],
        "warm_loaded_text_model": warm["text_model_loaded"],
    }
    print(f"set_classes({args.classes}) cold (load CLIP + encode): {result['cold_ms']:.0f} ms")
    print(f"warm, disk cache, fresh process: {result['warm_disk_ms']:.1f} ms "
          f"(text model loaded: {result['warm_loaded_text_model']})")  # fmt: skip
    print(f"warm, in memory: {result['warm_memory_ms']:.2f} ms")
    print(f"saved {save(f'set_classes_{args.classes}', {'machine': machine(), **result})}")


if __name__ == "__main__":
    main()
