"""``ovdet serve``: an HTTP API with request batching, video jobs and a page to try words on your own images."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import yaml

from ..core.config import InferenceSettings
from ..core.errors import UsageError, missing_dependency
from ..core.files import check_writable
from ..io.images import MAX_IMAGE_PIXELS
from ..prompts.vocabulary_yaml import read_vocabulary_yaml
from ..runtimes.registry import pt_runtimes
from ..serve.admission import MAX_VIDEO_PIXELS  # these three modules run without the serve extra (FastAPI)
from ..serve.encoding import DEFAULT_MAX_CLASSES, TooManyClasses
from ..serve.vocabularies import DEFAULT_VOCABULARY
from . import precision_flags
from .numbers import number_in

MB = 1 << 20


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet serve``."""
    serve = commands.add_parser(
        "serve",
        help="serve an HTTP API and a web page to try classes on your own images",
        description="Serve POST /v1/detect, vocabularies, video jobs, /metrics, /docs and a web page at /.",
    )
    serve.add_argument("--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)")
    serve.add_argument(
        "--vocab", metavar="FILE", help="a vocabulary .yaml, stored as 'default': used when a request names no classes"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=number_in(int, 1, 65535), default=8000, help="port (default %(default)s)")
    serve.add_argument("--token", help="required on every API call as 'Authorization: Bearer TOKEN' ($OVDET_TOKEN)")
    serve.add_argument(
        "--data", default="ovdet-data", help="folder of stored vocabularies and jobs (default %(default)s)"
    )
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    serve.add_argument(
        "--runtime",
        default="auto",
        choices=("auto", *pt_runtimes()),
        help="for a .pt: auto = OpenVINO on a CPU (converted once, cached), PyTorch on CUDA (default %(default)s)",
    )
    serve.add_argument(
        "--task",
        choices=("detect", "segment"),
        help="detect: boxes; segment: boxes and masks (a -seg checkpoint); default: what the model does",
    )
    precision_flags.add_arguments(serve)
    serve.add_argument("--conf", type=float, help="default confidence threshold of a request (default 0.25)")
    serve.add_argument("--iou", type=float, help="default NMS IoU threshold (default 0.7)")
    serve.add_argument("--imgsz", type=int, help="default network input size (default 640)")
    serve.add_argument(
        "--batch", type=number_in(int, 1, 64), default=4, help="frames per step of a video job (default %(default)s)"
    )
    serve.add_argument(
        "--max-batch", type=number_in(int, 1, 256), default=8, help="most images per forward pass (default %(default)s)"
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=number_in(float, 0, 10_000),
        default=10.0,
        help="how long a request waits to share a forward pass (default 10)",
    )
    serve.add_argument(
        "--queue-size", type=number_in(int, 1, 100_000), default=64, help="requests that may wait; more get 503 (64)"
    )
    serve.add_argument(
        "--timeout", type=number_in(float, 0, 86_400, low_open=True), default=30.0,
        help="seconds before a request gets 504 (default 30)",
    )  # fmt: skip
    serve.add_argument(
        "--max-classes",
        type=number_in(int, 1, 4096),
        default=DEFAULT_MAX_CLASSES,
        help="most classes (decoys included) per request or stored vocabulary; more get 413 (default %(default)s)",
    )
    serve.add_argument(
        "--max-upload-mb", type=number_in(float, 0, 4096, low_open=True), default=20.0,
        help="largest image upload (default 20)",
    )  # fmt: skip
    serve.add_argument(
        "--max-video-mb", type=number_in(float, 0, 1 << 20, low_open=True), default=500.0,
        help="largest video upload of a job (default 500)",
    )  # fmt: skip
    serve.add_argument(
        "--max-pixels", type=number_in(int, 1, MAX_IMAGE_PIXELS), default=MAX_IMAGE_PIXELS,
        help="most pixels per image, from its header (default %(default)s, 8192×8192)",
    )  # fmt: skip
    serve.add_argument(
        "--max-video-pixels", type=number_in(int, 1, MAX_IMAGE_PIXELS), default=MAX_VIDEO_PIXELS,
        help="most pixels per video frame of a job, from the stream's header (default %(default)s, 3840×2160)",
    )  # fmt: skip
    serve.add_argument(
        "--max-queued-mb", type=number_in(float, 0, 1 << 20, low_open=True), default=1024.0,
        help="memory that images decoded for requests not yet answered may hold in all; more get 503 (default 1024)",
    )  # fmt: skip
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow a page on ORIGIN")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, the vocabulary, the data folder and the address before loading the model, then serve.

    The start line is printed once the model is loaded and warm; until then the server answers 503 (loading).
    """
    try:
        import uvicorn

        from ..serve.app import ServerOptions, create_app
    except ImportError as exc:
        raise missing_dependency(exc.name or "fastapi", "serve", "ovdet serve") from None
    from ..detector import OpenVocabDetector
    from ..serve.security import Limits, check_bind

    token = args.token or os.environ.get("OVDET_TOKEN") or None
    check_bind(args.host, token)
    vocabulary = read_vocabulary_yaml(Path(args.vocab)) if args.vocab else None
    precision = precision_flags.choose(args, vocabulary)
    settings = InferenceSettings().replace(conf=args.conf, iou=args.iou, imgsz=args.imgsz, batch=args.batch)
    failed: list[BaseException] = []
    options = ServerOptions(
        data_dir=check_writable(args.data, directory=True),
        token=token,
        settings=settings,
        max_batch=args.max_batch,
        batch_wait_s=args.batch_wait_ms / 1000,
        queue_size=args.queue_size,
        timeout_s=args.timeout,
        limits=Limits(
            upload_bytes=int(args.max_upload_mb * MB),
            video_bytes=int(args.max_video_mb * MB),
            pixels=args.max_pixels,
            video_pixels=args.max_video_pixels,
            queued_bytes=int(args.max_queued_mb * MB),
        ),
        max_classes=args.max_classes,
        cors_origins=tuple(args.cors_origin),
        on_ready=lambda error: _ready(error, failed, server, args.host, listening),
    )
    with _listen(args.host, args.port) as listening:  # a port in use fails here, before the model loads
        detector = OpenVocabDetector(
            args.model, device=args.device, runtime=args.runtime, precision=precision.precision,
            calibration=precision.calibration, task=args.task, **vars(settings),
        )  # fmt: skip
        app = create_app(detector, options)
        if vocabulary is not None:
            _store_default(app.state.server.vocabularies, vocabulary, DEFAULT_VOCABULARY)
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        server.run(sockets=[listening])
    if failed:
        raise failed[0]
    return 0


def _ready(error: BaseException | None, failed: list[BaseException], server, host: str, listening) -> None:
    """The model is loaded and warm: say where the server is. Or it failed to load: stop the server."""
    if error is not None:
        failed.append(error)
        server.should_exit = True
        return
    port = listening.getsockname()[1]
    print(f"serving on http://{host}:{port} (the page at /, the API's docs at /docs; Ctrl-C stops)", flush=True)


def _store_default(store, vocabulary, name: str) -> None:
    text = yaml.safe_dump(vocabulary.to_dict(), sort_keys=False, allow_unicode=True)
    try:
        store.put(name, text.encode("utf-8"))
    except TooManyClasses as exc:
        raise UsageError(f"--vocab: {exc}") from None


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(2048)  # from here on connections wait for the server instead of being refused
    except OSError as exc:
        listening.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port or --host"
        ) from None
    return listening
