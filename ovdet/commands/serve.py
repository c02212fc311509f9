"""``ovdet serve``: an HTTP API with request batching, video jobs and a page to try words on your own images."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..errors import missing_dependency

log = logging.getLogger(__name__)

MB = 1 << 20


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet serve``."""
    serve = commands.add_parser(
        "serve",
        help="serve an HTTP API and a web page to try classes on your own images",
        description="Serve POST /v1/detect, vocabularies, video jobs, /metrics, /docs and a web page at /.",
    )
    serve.add_argument("--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)")
    serve.add_argument("--vocab", metavar="FILE", help="a vocabulary .yaml to store on start as 'default'")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    serve.add_argument("--token", help="required on every API call as 'Authorization: Bearer TOKEN' ($OVDET_TOKEN)")
    serve.add_argument(
        "--data", default="ovdet-data", help="folder of stored vocabularies and jobs (default %(default)s)"
    )
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    serve.add_argument("--conf", type=float, help="default confidence threshold of a request (default 0.25)")
    serve.add_argument("--iou", type=float, help="default NMS IoU threshold (default 0.7)")
    serve.add_argument("--imgsz", type=int, help="default network input size (default 640)")
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
    """Check the options and the bind address before loading the model, then serve until Ctrl-C."""
    try:
        import uvicorn
        import yaml
    except ImportError:
        raise missing_dependency("uvicorn", "serve", "ovdet serve") from None
    from ..config import InferenceSettings
    from ..detector import OpenVocabDetector
    from ..serve.app import ServerOptions, create_app
    from ..serve.security import Limits, check_bind
    from ..vocabulary_yaml import read_vocabulary_yaml

    token = args.token or os.environ.get("OVDET_TOKEN") or None
    check_bind(args.host, token)
    options = ServerOptions(
        data_dir=Path(args.data),
        token=token,
        settings=InferenceSettings().replace(conf=args.conf, iou=args.iou, imgsz=args.imgsz),
        max_batch=_positive("--max-batch", args.max_batch),
        batch_wait_s=_positive("--batch-wait-ms", args.batch_wait_ms, zero=True) / 1000,
        queue_size=_positive("--queue-size", args.queue_size),
        timeout_s=_positive("--timeout", args.timeout),
        limits=_limits(args, Limits),
        cors_origins=tuple(args.cors_origin),
    )
    detector = OpenVocabDetector(args.model, device=args.device, **vars(options.settings))
    app = create_app(detector, options)
    if args.vocab:
        vocabulary = read_vocabulary_yaml(Path(args.vocab))
        app.state.server.vocabularies.put("default", yaml.safe_dump(vocabulary.to_dict(), sort_keys=False).encode())
    log.warning("serving on http://%s:%d (Ctrl-C stops)", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _limits(args: argparse.Namespace, limits_type):
    defaults = limits_type()
    return limits_type(
        upload_bytes=int(_positive("--max-upload-mb", args.max_upload_mb) * MB),
        video_bytes=int(_positive("--max-video-mb", args.max_video_mb) * MB),
        pixels=_positive("--max-pixels", args.max_pixels) if args.max_pixels is not None else defaults.pixels,
    )


def _positive(flag: str, value, zero: bool = False):
    from ..errors import UsageError

    if value < 0 or (value == 0 and not zero):
        raise UsageError(f"{flag} must be {'at least 0' if zero else 'more than 0'}, got {value}")
    return value
