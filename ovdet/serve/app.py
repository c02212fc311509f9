"""The FastAPI application of ``ovdet serve``: the ``/v1`` API, ``/metrics``, ``/docs`` and the page at ``/``.

The app answers from the moment it starts, while the model loads and warms up in a thread: until then health
reads ``loading`` (503) and detection is refused with 503 and Retry-After; ``on_ready`` is called when it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core import __version__
from ..core.config import InferenceSettings
from ..prompts.vocabulary_yaml import MAX_VOCABULARY_BYTES
from .admission import MemoryBudget
from .api import require_token, router
from .batching import Batcher
from .encoding import DEFAULT_MAX_CLASSES, ClassEncoder
from .jobs import JobRunner
from .metrics import CONTENT_TYPE_LATEST, ServerMetrics
from .security import BodyLimit, Limits
from .vocabularies import VocabularyStore

__all__ = ["ServerOptions", "create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ServerOptions:
    """How a server batches, waits and limits.

    Attributes:
        data_dir: Where vocabularies and jobs are stored.
        token: Required on every API call when set.
        settings: Default inference settings of a request; ``settings.batch`` is the frames per step of a job.
        max_batch: Most images per forward pass.
        batch_wait_s: How long a request waits for others to share its forward pass.
        queue_size: Most requests waiting; more are answered 503.
        timeout_s: A request not answered within this many seconds gets 504.
        limits: Upload sizes, pixels, and the memory budget of images waiting for an answer.
        max_classes: Most classes (decoys included) one request or stored vocabulary may have.
        cors_origins: Origins allowed to call the API from a browser page they serve (none by default).
        warm_up: Load the model and run one inference (at ``max_classes`` slots) before serving detection.
        on_ready: Called once the model is ready, with ``None``, or with the exception that stopped it loading.
    """

    data_dir: Path
    token: str | None = None
    settings: InferenceSettings = field(default_factory=InferenceSettings)
    max_batch: int = 8
    batch_wait_s: float = 0.01
    queue_size: int = 64
    timeout_s: float = 30.0
    limits: Limits = field(default_factory=Limits)
    max_classes: int = DEFAULT_MAX_CLASSES
    cors_origins: tuple[str, ...] = ()
    warm_up: bool = True
    on_ready: Callable[[BaseException | None], None] = lambda error: None


@dataclass
class _Server:
    """What the routes reach through ``request.app.state.server``."""

    token: str | None
    model_name: str
    precision: str
    task: str
    settings: InferenceSettings
    timeout_s: float
    limits: Limits
    batcher: Batcher
    encoder: ClassEncoder
    budget: MemoryBudget
    vocabularies: VocabularyStore
    jobs: JobRunner
    metrics: ServerMetrics
    ready: threading.Event = field(default_factory=threading.Event)


def create_app(detector, options: ServerOptions) -> FastAPI:
    """The app around one detector; its batcher and job runner start and stop with the app.

    Example:
        >>> app = create_app(OpenVocabDetector("yolov8s-worldv2"), ServerOptions(Path("ovdet-data")))  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = options.settings.replace(half=detector.settings.half)  # the precision is the detector's
    metrics = ServerMetrics(waiting=lambda: batcher.waiting)
    batcher = Batcher(
        detector, max_batch=options.max_batch, max_wait_s=options.batch_wait_s, queue_size=options.queue_size,
        on_batch=metrics.batch,
    )  # fmt: skip
    encoder = ClassEncoder(detector, options.max_classes, max_pending=options.queue_size)
    server = _Server(
        token=options.token,
        model_name=Path(detector.model_path).name,
        precision=detector.precision,
        task=detector.task,
        settings=settings,
        timeout_s=options.timeout_s,
        limits=options.limits,
        batcher=batcher,
        encoder=encoder,
        budget=MemoryBudget(options.limits.queued_bytes),
        vocabularies=VocabularyStore(options.data_dir / "vocabularies", encoder),
        jobs=JobRunner(options.data_dir / "jobs", batcher, encoder, settings, options.limits.video_pixels),
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        server.jobs.start()
        threading.Thread(target=_warm_up, args=(server, options), name="ovdet-warm-up", daemon=True).start()
        try:
            yield
        finally:
            server.jobs.stop()
            batcher.stop()
            encoder.stop()

    app = FastAPI(
        title="ovdet",
        version=__version__,
        description="Open-vocabulary object detection: type what to find, get boxes.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger UI and ReDoc load their files from a CDN: /docs is served from here
        redoc_url=None,
    )
    app.state.server = server
    app.include_router(router)
    _add_pages(app)
    _add_metrics(app, server)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(options.cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimit, limit_for=lambda path: _body_limit(path, options.limits))
    return app


def _warm_up(server: _Server, options: ServerOptions) -> None:
    """Load the model (converting a ``.pt`` for every slot a request may use) and run one inference; then ready."""
    try:
        if options.warm_up:
            classes = server.encoder.warm_up_classes().result()
            imgsz = server.settings.imgsz
            server.batcher.submit([np.zeros((imgsz, imgsz, 3), np.uint8)], classes, server.settings).result()
    except BaseException as exc:  # the command reports it and stops the server
        log.debug("warm-up failed", exc_info=True)
        options.on_ready(exc)
        return
    server.ready.set()
    options.on_ready(None)


def _body_limit(path: str, limits: Limits) -> int:
    if path.startswith("/v1/jobs"):
        return limits.video_bytes
    if path.startswith("/v1/vocabularies"):
        return MAX_VOCABULARY_BYTES
    return limits.upload_bytes


def _add_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")


def _add_metrics(app: FastAPI, server: _Server) -> None:
    @app.get("/metrics", dependencies=[Depends(require_token)], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(server.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Counting, metrics=server.metrics)


class _Counting:
    """Counts every answered request by route template (never by raw path: job ids would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None and route != "/metrics":
                self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)
