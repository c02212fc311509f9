"""``ovdet detect``: find classes named in words in images."""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..errors import OvdetError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet detect``."""
    detect = commands.add_parser(
        "detect",
        help="detect classes named in words in images",
        description='Detect classes named in words, e.g. ovdet detect photos/ --classes "red backpack,person"',
    )
    detect.add_argument("source", help="an image, a folder of images, or a glob such as 'photos/*.jpg'")
    detect.add_argument("--classes", required=True, help='comma-separated class names, e.g. "red backpack,person"')
    detect.add_argument("--model", default="yolov8s-worldv2", help="registry name or .pt file (default %(default)s)")
    detect.add_argument("--conf", type=float, help="confidence threshold (default 0.25)")
    detect.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    detect.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 (default 640)")
    detect.add_argument("--max-det", type=int, help="most boxes per image (default 300)")
    detect.add_argument("--batch", type=int, help="images per forward pass (default 1)")
    detect.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    detect.add_argument("--half", action="store_true", default=None, help="FP16 inference (CUDA only)")
    detect.add_argument("--agnostic-nms", action="store_true", default=None, help="one box, one label")
    detect.add_argument("--output", metavar="FILE.jsonl", help="write one JSON line per image")
    detect.add_argument("--save-annotated", metavar="DIR", help="save images with boxes drawn")
    detect.add_argument("--quiet", action="store_true", help="print nothing but errors")
    detect.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``ovdet detect`` on images: JSONL, annotated copies and a summary."""
    from ..config import InferenceSettings
    from ..detector import OpenVocabDetector
    from ..io.images import expand_image_source, load_image
    from ..io.sinks import AnnotatedImageWriter, JsonlSink, detection_record
    from ..vocabulary import parse_class_list

    classes = parse_class_list(args.classes)
    settings = InferenceSettings().replace(
        conf=args.conf, iou=args.iou, imgsz=args.imgsz, max_det=args.max_det, batch=args.batch,
        half=args.half, agnostic_nms=args.agnostic_nms,
    )  # fmt: skip
    paths = expand_image_source(args.source)
    sink = JsonlSink(args.output) if args.output else None
    annotator = AnnotatedImageWriter(args.save_annotated) if args.save_annotated else None

    started = time.perf_counter()
    detector = OpenVocabDetector(args.model, device=args.device, **vars(settings))
    detector.set_classes(classes)
    counts: Counter[str] = Counter()
    done = 0
    used_names: set[str] = set()
    try:
        for chunk in _chunks(paths, settings.batch):
            loaded = _load_readable(chunk, load_image, single=len(paths) == 1)
            if not loaded:
                continue
            results = detector.detect_arrays([image for _, image in loaded], settings)
            for (path, image), detections in zip(loaded, results):
                counts.update(detections.data["class_name"].tolist())
                if sink:
                    height, width = image.shape[:2]
                    sink.write(detection_record(str(path), 0, None, width, height, detections))
                if annotator:
                    annotator.write(image, detections, _unique_name(path, used_names))
                done += 1
    finally:
        if sink:
            sink.close()
    if done == 0:
        raise OvdetError(f"none of the {len(paths)} file(s) in {args.source} could be read as an image")
    if not args.quiet:
        _print_summary(done, counts, time.perf_counter() - started, args)
    return 0


def _chunks(items: Sequence[Path], size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load_readable(paths, load_image, single: bool):
    loaded = []
    for path in paths:
        try:
            loaded.append((path, load_image(path)))
        except OvdetError as exc:
            if single:
                raise
            warnings.warn(f"skipped {exc}", UserWarning, stacklevel=2)
    return loaded


def _unique_name(path: Path, used: set[str]) -> str:
    name, number = path.name, 1
    while name in used:
        name = f"{path.stem}_{number}{path.suffix}"
        number += 1
    used.add(name)
    return name


def _print_summary(done: int, counts: Counter[str], seconds: float, args: argparse.Namespace) -> None:
    found = ", ".join(f"{name}: {count}" for name, count in counts.most_common()) or "nothing found"
    print(f"{done} image(s), {sum(counts.values())} detection(s) ({found}) in {seconds:.1f} s")
    for label, target in (("detections", args.output), ("annotated images", args.save_annotated)):
        if target:
            print(f"{label} → {target}")
