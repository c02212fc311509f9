"""``ovdet serve`` under load: requests/s and p50/p95 latency at 1, 4 and 16 concurrent clients, next to the
``ovdet detect`` path (a folder of the same images, batch 1 and batch ``--max-batch``), in one run.

The server is a real ``ovdet serve`` process on loopback; clients are threads posting JPEG files (multipart).
``ovdet detect`` runs as the command itself, on a folder, while the server idles. Subjects take turns for ``--rounds``
rounds and each row is the median over them, so load from other jobs on the machine hits every row alike.

    python benchmarks/serve.py --imgsz 640 --requests 32 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, SHARED_DATA, ensure_weights, machine, save, use_weights
from benchmarks.tables import serve_table

CLASSES = "bottle,person,red backpack"
TOKEN = "benchmark"


def write_images(folder: Path, count: int) -> list[Path]:
    """``count`` frames of the bottle clip, spread over it, as JPEG files."""
    import cv2

    folder.mkdir()
    capture = cv2.VideoCapture(str(SHARED_DATA / "bottle-detection.mp4"))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    paths = []
    for position in range(count):
        capture.set(cv2.CAP_PROP_POS_FRAMES, position * total // count)
        path = folder / f"frame{position:02d}.jpg"
        cv2.imwrite(str(path), capture.read()[1])
        paths.append(path)
    return paths


def _repeat_images(small: Path, large: Path, extra: int) -> None:
    """``large``: the images of ``small``, then ``extra`` more of them again (links, not copies)."""
    large.mkdir()
    paths = sorted(small.iterdir())
    for index in range(len(paths) + extra):
        (large / f"{index:04d}.jpg").symlink_to(paths[index % len(paths)])


def detect_command(folders: tuple[Path, Path], args: argparse.Namespace, batch: int) -> dict:
    """``ovdet detect`` itself on two folders of the same images, one ``--requests`` images larger: the
    difference of their run times is the time of those images, without the command's start-up."""
    seconds = []
    for folder in folders:
        command = [sys.executable, "-m", "ovdet", "detect", str(folder), "--classes", CLASSES, "--model", args.model,
                   "--runtime", args.runtime, "--device", "cpu", "--imgsz", str(args.imgsz), "--batch", str(batch),
                   "--quiet", "--output", str(folder.parent / f"{folder.name}.jsonl")]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    images = args.requests
    return {"label": f"ovdet detect, batch {batch}", "clients": "–", "requests": images, "precision": "fp32",
            "rps": images / max(seconds[1] - seconds[0], 1e-9)}  # fmt: skip


def start_server(args: argparse.Namespace, data: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ovdet", "serve", "--model", args.model, "--runtime", args.runtime,
               "--device", "cpu", "--imgsz", str(args.imgsz), "--port", str(port), "--max-batch", str(args.max_batch),
               "--batch-wait-ms", str(args.batch_wait_ms), "--queue-size", "256", "--timeout", "600",
               "--data", str(data)]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OVDET_TOKEN": TOKEN}, stdout=subprocess.PIPE)
    server.stdout.readline()  # "serving on …" once the model is loaded and the port listens
    return server, f"http://127.0.0.1:{port}"


def load(url: str, images: list[bytes], clients: int, requests: int) -> dict:
    """``requests`` posts from ``clients`` threads; requests/s over the whole run, latency per request."""
    import httpx

    def client(number: int) -> list[float]:
        latencies = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as session:
            for index in range(number, requests, clients):
                started = time.perf_counter()
                response = session.post(
                    "/v1/detect", files={"image": ("f.jpg", images[index % len(images)], "image/jpeg")},
                    data={"classes": CLASSES},
                )  # fmt: skip
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
        return latencies

    before = _batches(url)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(seconds for result in pool.map(client, range(clients)) for seconds in result)
    seconds = time.perf_counter() - started
    passes = _batches(url) - before
    return {
        "label": "ovdet serve", "clients": clients, "requests": len(latencies), "precision": "fp32",
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "images_per_pass": len(latencies) / passes if passes else None,
    }  # fmt: skip


def _batches(url: str) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ovdet_batch_size_count"
    )


def _median(turns: list[dict]) -> dict:
    """A subject's row: the median of each figure over its turns."""
    row = dict(turns[0])
    for key in ("rps", "p50_ms", "p95_ms", "images_per_pass"):
        if row.get(key) is not None:
            row[key] = statistics.median(turn[key] for turn in turns)
    row["requests"] = sum(turn["requests"] for turn in turns)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--requests", type=int, default=32, help="requests (images) per subject and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=10.0)
    parser.add_argument("--runtime", default="torch", help="torch, openvino or onnxruntime (default torch)")
    parser.add_argument("--model", default="yolov8s-worldv2")
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    args = parser.parse_args()
    use_weights(ensure_weights(args.weights))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        images = [path.read_bytes() for path in write_images(scratch / "small", args.images)]
        _repeat_images(scratch / "small", scratch / "large", args.requests)
        server, url = start_server(args, scratch / "data")
        try:
            subjects = [
                *(
                    partial(detect_command, (scratch / "small", scratch / "large"), args, b)
                    for b in (1, args.max_batch)
                ),
                *(partial(load, url, images, clients, args.requests) for clients in (1, 4, 16)),
            ]
            load(url, images, 4, args.images)  # warm-up
            turns = [[subject() for subject in subjects] for _ in range(args.rounds)]
        finally:
            server.terminate()
            server.wait(60)
    rows = [_median(list(results)) for results in zip(*turns)]
    table = serve_table(rows)
    print(table)
    keys = ("imgsz", "requests", "rounds", "images", "max_batch", "batch_wait_ms", "runtime")
    settings = {key: getattr(args, key) for key in keys}
    print(f"saved {save('serve', {'machine': machine(), 'settings': settings, 'rows': rows, 'table': table})}")


if __name__ == "__main__":
    main()
