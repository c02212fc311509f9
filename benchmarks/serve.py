"""``ovdet serve`` under load: requests/s and p50/p95 latency at 1, 4 and 16 concurrent clients, next to the
``ovdet detect`` path (a folder of the same images, batch 1 and batch ``--max-batch``), in one run.

The server is a real ``ovdet serve`` process on loopback; clients are threads posting JPEG files (multipart).
The ``ovdet detect`` rows run first, in this process, so the two never compete for the CPU.

    python benchmarks/serve.py --imgsz 640 --requests 48
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, SHARED_DATA, ensure_weights, machine, save, use_weights
from benchmarks.tables import serve_table

CLASSES = "bottle,person,red backpack"
TOKEN = "benchmark"


def write_images(folder: Path, count: int) -> list[Path]:
    """``count`` frames of the bottle clip, spread over it, as JPEG files."""
    import cv2

    capture = cv2.VideoCapture(str(SHARED_DATA / "bottle-detection.mp4"))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    paths = []
    for position in range(count):
        capture.set(cv2.CAP_PROP_POS_FRAMES, position * total // count)
        path = folder / f"frame{position:02d}.jpg"
        cv2.imwrite(str(path), capture.read()[1])
        paths.append(path)
    return paths


def detect_path(folder: Path, count: int, args: argparse.Namespace, batch: int) -> dict:
    """What ``ovdet detect FOLDER`` does after start-up: read ahead, infer ``batch`` at a time."""
    from ovdet import OpenVocabDetector

    detector = OpenVocabDetector(args.model, device="cpu", runtime=args.runtime, imgsz=args.imgsz)
    detector.set_classes(CLASSES.split(","))
    for _ in detector.stream(folder, batch=batch):  # warm-up
        pass
    started, seen = time.perf_counter(), 0
    while seen < count:
        for _ in detector.stream(folder, batch=batch):
            seen += 1
    seconds = time.perf_counter() - started
    return {"label": f"ovdet detect, batch {batch}", "clients": "–", "requests": seen, "rps": seen / seconds}


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
        "label": "ovdet serve", "clients": clients, "requests": len(latencies), "rps": len(latencies) / seconds,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
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
        (scratch / "images").mkdir()
        paths = write_images(scratch / "images", args.images)
        rows = [detect_path(scratch / "images", args.requests, args, batch) for batch in (1, args.max_batch)]
        server, url = start_server(args, scratch / "data")
        try:
            images = [path.read_bytes() for path in paths]
            load(url, images, 1, 4)  # warm-up
            rows += [load(url, images, clients, args.requests) for clients in (1, 4, 16)]
        finally:
            server.terminate()
            server.wait(60)
    table = serve_table(rows)
    print(table)
    settings = {
        key: getattr(args, key) for key in ("imgsz", "requests", "images", "max_batch", "batch_wait_ms", "runtime")
    }
    print(f"saved {save('serve', {'machine': machine(), 'settings': settings, 'rows': rows, 'table': table})}")


if __name__ == "__main__":
    main()
