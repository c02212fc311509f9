"""``ovdet serve``: an HTTP API with request batching, video jobs and a page to try words on your own images."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import yaml

from ..errors import UsageError, missing_dependency
from ..runtimes.registry import pt_runtimes

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
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
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
    serve.add_argument("--conf", type=float, help="default confidence threshold of a request (default 0.25)")
    serve.add_argument("--iou", type=float, help="default NMS IoU threshold (default 0.7)")
    serve.add_argument("--imgsz", type=int, help="default network input size (default 640)")
    serve.add_argument("--batch", type=int, default=4, help="frames per step of a video job (default %(default)s)")
    serve.add_argument("--max-batch", type=int, default=8, help="most images per forward pass (default %(default)s)")
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=10.0,
        help="how long a request waits to share a forward pass (default 10)",
    )
    serve.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more get 503 (default 64)")
    serve.add_argument("--timeout", type=float, default=30.0, help="seconds before a request gets 504 (default 30)")
    serve.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image upload (default 20)")
    serve.add_argument("--max-video-mb", type=float, default=500.0, help="largest video upload of a job (default 500)")
    serve.add_argument("--max-pixels", type=int, help="most pixels per image (default 67108864, 8192×8192)")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow a page on ORIGIN")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, the vocabulary, the data folder and the address before loading the model, then serve."""
    try:
        import uvicorn

        from ..serve.app import ServerOptions, create_app
        from ..serve.vocabularies import DEFAULT_VOCABULARY
    except ImportError as exc:
        raise missing_dependency(exc.name or "fastapi", "serve", "ovdet serve") from None
    from ..config import InferenceSettings
    from ..detector import OpenVocabDetector
    from ..io.files import check_writable
    from ..serve.security import Limits, check_bind
    from ..vocabulary_yaml import read_vocabulary_yaml

    token = args.token or os.environ.get("OVDET_TOKEN") or None
    check_bind(args.host, token)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: pass a port from 1 to 65535 (default 8000)")
    options = ServerOptions(
        data_dir=check_writable(args.data, directory=True),
        token=token,
        settings=InferenceSettings().replace(conf=args.conf, iou=args.iou, imgsz=args.imgsz, batch=args.batch),
        max_batch=_positive("--max-batch", args.max_batch),
        batch_wait_s=_positive("--batch-wait-ms", args.batch_wait_ms, zero=True) / 1000,
        queue_size=_positive("--queue-size", args.queue_size),
        timeout_s=_positive("--timeout", args.timeout),
        limits=_limits(args, Limits),
        cors_origins=tuple(args.cors_origin),
    )
    vocabulary = read_vocabulary_yaml(Path(args.vocab)) if args.vocab else None
    with _listen(args.host, args.port) as listening:  # a port in use fails here, before the model loads
        detector = OpenVocabDetector(args.model, device=args.device, runtime=args.runtime, **vars(options.settings))
        app = create_app(detector, options)
        if vocabulary is not None:
            text = yaml.safe_dump(vocabulary.to_dict(), sort_keys=False, allow_unicode=True)
            app.state.server.vocabularies.put(DEFAULT_VOCABULARY, text.encode("utf-8"))
        port = listening.getsockname()[1]
        print(f"serving on http://{args.host}:{port} (the page at /, the API's docs at /docs; Ctrl-C stops)")
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[listening])
    return 0


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


def _limits(args: argparse.Namespace, limits_type):
    defaults = limits_type()
    return limits_type(
        upload_bytes=int(_positive("--max-upload-mb", args.max_upload_mb) * MB),
        video_bytes=int(_positive("--max-video-mb", args.max_video_mb) * MB),
        pixels=_positive("--max-pixels", args.max_pixels) if args.max_pixels is not None else defaults.pixels,
    )


def _positive(flag: str, value, zero: bool = False):
    if value < 0 or (value == 0 and not zero):
        raise UsageError(f"{flag} must be {'at least 0' if zero else 'more than 0'}, got {value}")
    return value
