"""Start-up of ``ovdet detect`` on one image: vocabulary YAML (empty cache: CLIP loads; warm cache) against the
``.npz`` from ``ovdet embed`` (no text model at all). Runs alternate, so machine load hits every variant alike.

    python benchmarks/startup.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, save, use_weights

VOCABULARY = """\
templates: ["a photo of a {}", "{}"]
classes:
  infusion pump: {prompts: [infusion pump, IV pump, syringe driver], conf: 0.3}
  person: [person, nurse, patient]
  bottle:
decoys: [toy pump, poster]
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    args = parser.parse_args()
    use_weights(ensure_weights(args.weights))
    import cv2

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        image = folder / "frame.jpg"
        capture = cv2.VideoCapture(str(SHARED_DATA / "bottle-detection.mp4"))
        cv2.imwrite(str(image), capture.read()[1])
        vocab = folder / "vocab.yaml"
        vocab.write_text(VOCABULARY)
        env = {**os.environ, "OVDET_CACHE_DIR": str(folder / "warm-cache")}
        subprocess.run([sys.executable, "-m", "ovdet", "embed", str(vocab), "-o", str(folder / "vocab.npz")],
                       env=env, check=True, capture_output=True)  # fmt: skip
        detect = [sys.executable, "-m", "ovdet", "detect", str(image), "--quiet", "--vocab"]
        timings: dict[str, list[float]] = {"yaml, empty cache": [], "yaml, warm cache": [], "npz": []}
        for round_number in range(args.rounds):
            cold_env = {**env, "OVDET_CACHE_DIR": str(folder / f"cold-{round_number}")}
            timings["yaml, empty cache"].append(timed([*detect, str(vocab)], cold_env))
            timings["yaml, warm cache"].append(timed([*detect, str(vocab)], env))
            timings["npz"].append(timed([*detect, str(folder / "vocab.npz")], env))
    result = {name: statistics.median(values) for name, values in timings.items()}
    for name, seconds in result.items():
        print(f"{name:18s} {seconds:.2f} s (median of {args.rounds})")
    print(f"saved {save('startup', {'machine': machine(), 'seconds': result})}")


if __name__ == "__main__":
    main()
