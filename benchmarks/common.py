"""Shared helpers for the benchmark scripts: weights to run on, machine facts, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def ensure_weights(folder: Path | None) -> Path:
    """A weights folder to benchmark with: the given one, or random-init test weights built once into a cache.

    Random weights run exactly as fast as trained ones; only the boxes are meaningless.
    """
    if folder is not None:
        return folder
    built = Path(os.environ.get("OVDET_BENCH_WEIGHTS", "/tmp/ovdet-bench-weights"))
    if not (built / "yolov8s-worldv2.pt").is_file() or not (built / "clip" / "ViT-B-32.pt").is_file():
        sys.path.insert(0, str(ROOT))
        from tests import weights_fixtures

        weights_fixtures.build_weights_dir(built, weights_fixtures.read_calibration_frames())
    return built


def use_weights(folder: Path) -> None:
    """Point ovdet (and a random-init CLIP, which has no published digest) at ``folder``."""
    os.environ["OVDET_WEIGHTS_DIR"] = str(folder)
    os.environ.setdefault("OVDET_CLIP_WEIGHTS", str(folder / "clip" / "ViT-B-32.pt"))
    os.environ["OVDET_OFFLINE"] = "1"


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ultralytics_model(classes: list[str]):
    """Ultralytics' YOLOWorld on the same weights, with ovdet's embeddings of ``classes`` injected (Ultralytics'
    own ``set_classes`` pip-installs CLIP from GitHub)."""
    from ultralytics import YOLOWorld

    from ovdet import OpenVocabDetector
    from ovdet.runtimes.torch import inject_classes

    detector = OpenVocabDetector("yolov8s-worldv2", device="cpu", runtime="torch")
    detector.set_classes(classes)
    model = YOLOWorld(str(detector.model_path))
    inject_classes(model.model, detector.embeddings.vectors, classes)
    return model
