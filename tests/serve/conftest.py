"""A real uvicorn on 127.0.0.1 (a free port, in a thread) around the random-init model, driven with httpx."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import httpx
import numpy as np
import pytest
import supervision as sv
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from ovdet.core.config import InferenceSettings
from ovdet.serve.app import ServerOptions, create_app

TOKEN = "s3cret-token"
IMGSZ = 160
CONF = 0.01


class LiveServer:
    """An app served by uvicorn on a loopback port in a background thread; entered once its model is warm (unless
    ``wait_ready`` is false: a test of the loading state)."""

    def __init__(self, app, wait_ready: bool = True) -> None:
        self.app = app
        self.wait_ready = wait_ready
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            self.thread.join(0.02)
        if self.wait_ready and not self.app.state.server.ready.wait(300):
            raise RuntimeError("the test server's model did not load and warm up within 300 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()

    def client(self, token: str | None = TOKEN, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def serve(detector, data_dir: Path, wait_ready: bool = True, **options) -> LiveServer:
    settings = InferenceSettings(conf=CONF, imgsz=IMGSZ, batch=4)
    app = create_app(detector, ServerOptions(data_dir, token=TOKEN, settings=settings, **options))
    return LiveServer(app, wait_ready)


def encode(image: np.ndarray, suffix: str = ".png") -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``, from Prometheus' text format."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    )


@pytest.fixture(scope="module")
def serve_detector(model_path: Path, session_cache: Path):
    """The server's own detector: only its batcher calls it, as in ``ovdet serve``."""
    from ovdet import OpenVocabDetector

    return OpenVocabDetector(model_path, device="cpu", cache_dir=session_cache, imgsz=IMGSZ, conf=CONF)


@pytest.fixture(scope="module")
def server(serve_detector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(serve_detector, tmp_path_factory.mktemp("serve-data"), batch_wait_s=0.05) as live:
        yield live


@pytest.fixture(scope="module")
def images(bottle_frames) -> list[bytes]:
    """Four camera frames as PNG files' bytes."""
    return [encode(frame) for frame in bottle_frames]


class BlockingDetector:
    """Stands in for the model where a test needs the model busy: each batch waits for ``release``. Serve it with
    ``warm_up=False`` unless the test is of the loading state (its warm-up inference waits too)."""

    model_path = Path("blocking.pt")
    precision = "fp32"
    task = "detect"
    settings = InferenceSettings()
    backend = SimpleNamespace(fixed_classes=None, max_classes=None, space="clip:ViT-B/32")

    def __init__(self) -> None:
        self.vocabulary_version = 0
        self.busy = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def set_classes(self, vocabulary) -> None:
        self.vocabulary_version += 1

    def embed_vocabulary(self, vocabulary):
        return vocabulary

    def detect_arrays(self, images, settings) -> list[sv.Detections]:
        self.busy.set()
        self.release.wait(60)
        self.batches.append(len(images))
        return [sv.Detections.empty() for _ in images]


class MaskDetector(BlockingDetector):
    """A segmenting model made up here: one bottle, its mask a rectangle with a square hole."""

    task = "segment"

    def detect_arrays(self, images, settings) -> list[sv.Detections]:
        return [self.bottle(*image.shape[:2]) for image in images]

    @staticmethod
    def bottle(height: int, width: int) -> sv.Detections:
        mask = np.zeros((1, height, width), bool)
        mask[0, 30:90, 30:130] = True
        mask[0, 50:70, 70:90] = False
        return sv.Detections(
            xyxy=np.array([[20.0, 20.0, 140.0, 100.0]]), mask=mask, confidence=np.array([0.9]),
            class_id=np.array([0]), data={"class_name": np.array(["bottle"])},
        )  # fmt: skip


@pytest.fixture
def blocking(tmp_path: Path) -> Iterator[tuple[BlockingDetector, LiveServer]]:
    """A server whose model waits to be released, with a queue of one request and a 2 s timeout."""
    detector = BlockingDetector()
    live = serve(detector, tmp_path / "data", max_batch=1, batch_wait_s=0.0, queue_size=1, timeout_s=2.0, warm_up=False)
    with live:
        try:
            yield detector, live
        finally:
            detector.release.set()
