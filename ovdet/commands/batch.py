"""``ovdet batch``: many videos and image folders into per-source outputs and one Parquet dataset, on Ray or here."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from ..core.errors import OvdetError, UsageError
from ..runtimes.registry import pt_runtimes
from . import analytics as analytics_flags
from . import precision_flags

log = logging.getLogger(__name__)

# Output kind → its flag and what it writes per source, named as ovdet detect's same output
KIND_FLAGS = {
    "jsonl": ("--jsonl", "a line per frame, byte-identical to ovdet detect --output X.jsonl (the default)"),
    "csv": ("--csv", "a row per box"),
    "coco": ("--coco", "COCO detection results"),
    "events": ("--events", "a line per track when it ends (implies --track)"),
    "video": ("--video", "the annotated video (H.264 .mp4)"),
    "alerts": ("--alerts", "a line per alert fired by the rules in --zones"),
    "summary": ("--summary", "per class: frames, tracks, dwell per zone, alerts (JSON)"),
    "crops": ("--save-crops", "a folder of the best crop of each finished track and of each alert (implies --track)"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet batch``."""
    batch = commands.add_parser(
        "batch",
        help="detect in many videos and image folders, resumably, here or on a Ray cluster",
        description='Detect in many sources, e.g. ovdet batch archive/ --classes "infusion pump" --output-dir out/ '
        "--ray local --workers 2. Outputs mirror the sources' paths under --output-dir, with a Parquet dataset of "
        "every box in OUT/detections/ and a manifest; a re-run skips the sources done.",
    )
    batch.add_argument(
        "sources", nargs="*", metavar="SOURCE",
        help="video files, image folders (one source each), folders of videos, or @list.txt (one source a line)",
    )  # fmt: skip
    vocabulary = batch.add_mutually_exclusive_group(required=True)
    vocabulary.add_argument("--classes", help='comma-separated class names, e.g. "infusion pump,person"')
    vocabulary.add_argument("--vocab", metavar="FILE", help="vocabulary file: .yaml or .npz (from ovdet embed)")
    batch.add_argument("--output-dir", required=True, metavar="DIR", help="where the outputs and manifest go")
    for kind, (flag, meaning) in KIND_FLAGS.items():
        batch.add_argument(flag, dest=kind, action="store_true", help=f"write {meaning}")
    batch.add_argument(
        "--zones", metavar="FILE", help="zones, lines and alert rules (.yaml), as for ovdet detect, on every source"
    )
    batch.add_argument("--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)")
    batch.add_argument(
        "--task",
        choices=("detect", "segment"),
        help="detect: boxes; segment: boxes and masks (a -seg checkpoint); default: what the model does",
    )
    batch.add_argument("--conf", type=float, help="confidence threshold (default 0.25)")
    batch.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    batch.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 (default 640)")
    batch.add_argument("--max-det", type=int, help="most boxes per image (default 300)")
    batch.add_argument("--batch", type=int, help="frames per forward pass, per worker (default 1)")
    batch.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    batch.add_argument("--runtime", default="auto", choices=("auto", *pt_runtimes()), help="as for ovdet detect")
    precision_flags.add_arguments(batch)
    batch.add_argument("--agnostic-nms", action="store_true", default=None, help="one box, one label")
    batch.add_argument("--vid-stride", type=int, default=1, help="process every n-th video frame (default 1)")
    batch.add_argument("--track", action="store_true", help="give boxes ids that stay stable within a source")
    batch.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="run on Ray: local (the default: a private cluster on this machine), auto (the cluster ray start "
        "began here), or HOST:PORT / ray://HOST:PORT; without --ray, one worker runs in this process",
    )  # fmt: skip
    batch.add_argument("--workers", type=int, default=1, help="Ray actors, each holding one detector (default 1)")
    batch.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each actor reserves (default 1)")
    batch.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each actor reserves, e.g. 0.25")
    batch.add_argument("--overwrite", action="store_true", help="start over in an --output-dir of other settings")
    batch.add_argument("--quiet", action="store_true", help="print nothing but errors")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plan, refuse bad input before work, run; exit 1 when a source failed, 130 on Ctrl-C."""
    from ..cluster.job import BatchRequest, run_batch
    from ..core.config import InferenceSettings
    from ..prompts.vocabulary import parse_classes
    from ..prompts.vocabulary_files import load_vocabulary
    from ..run import stop_on_signals

    _check_counts(args)
    precision_flags.requested(args)  # contradictory precision flags are the first error
    settings = InferenceSettings().replace(
        conf=args.conf, iou=args.iou, imgsz=args.imgsz, max_det=args.max_det, batch=args.batch,
        agnostic_nms=args.agnostic_nms,
    )  # fmt: skip
    kinds = tuple(kind for kind in KIND_FLAGS if getattr(args, kind)) or ("jsonl",)
    vocabulary = load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes)
    precision = precision_flags.choose(args, vocabulary)
    zones = analytics_flags.read_zones(args.zones, "--alerts" if args.alerts else None, vocabulary.names)
    inputs = [path for path in (args.vocab, args.zones, args.calibration) if path]
    analytics = any((args.zones, args.alerts, args.summary, args.crops))
    request = BatchRequest(
        sources=args.sources, output_dir=Path(args.output_dir), kinds=kinds, model=args.model, classes=vocabulary,
        settings=settings, device=args.device, runtime=args.runtime, vid_stride=args.vid_stride,
        track=args.track or args.events, precision=precision.precision, calibration=precision.calibration,
        task=args.task, zones=zones, zones_path=args.zones,
        analytics=analytics, ray=args.ray, workers=args.workers, cpus=args.cpus_per_worker,
        gpus=args.gpus_per_worker, overwrite=args.overwrite, inputs=inputs, quiet=args.quiet,
    )  # fmt: skip
    with stop_on_signals() as stop:
        report = run_batch(request, stop.event)
    if stop.signum is not None:
        log.warning("stopped by %s: the sources finished are complete and listed in %s",
                    signal.Signals(stop.signum).name, Path(args.output_dir) / "manifest.json")  # fmt: skip
    if not args.quiet:
        _show(report, args)
    if stop.signum is not None:
        return stop.exit_code
    if report.failures:
        raise OvdetError(
            f"{len(report.failures)} of {report.sources} source(s) failed, first {report.failures[0][0]}: "
            f"{report.failures[0][1]} (all in {Path(args.output_dir) / 'manifest.json'}; a re-run retries them)"
        )
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: pass 1 or more")
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise UsageError("--cpus-per-worker must be above 0 and --gpus-per-worker 0 or more, e.g. 0.25")
    if args.ray is not None and Path(args.ray).exists():
        raise UsageError(f"--ray {args.ray} is a file or folder, not a cluster: put --ray after the sources, "
                         f"or write --ray local")  # fmt: skip
    if not args.sources:
        raise UsageError("no SOURCE given: pass videos, image folders or @list.txt")
    if args.ray is None and (args.workers > 1 or args.gpus_per_worker):
        raise UsageError("--workers and --gpus-per-worker need --ray: add --ray (a cluster on this machine)")


def _show(report, args: argparse.Namespace) -> None:
    outcome = ", ".join(f"{count} {status}" for status, count in sorted(report.counts.items()))
    print(f"{report.sources} source(s): {report.skipped} already done" + (f", {outcome}" if outcome else ""))
    print(f"{report.frames} frame(s), {report.detections} detection(s) in {report.seconds:.1f} s, "
          f"{report.rate:.1f} frames/s across the cluster")  # fmt: skip
    for name, (sources, frames, busy) in sorted(report.workers.items()):
        rate = frames / busy if busy > 0 else 0.0
        print(f"  worker {name}: {sources:.0f} source(s), {frames:.0f} frame(s), {rate:.1f} frames/s")
    print(f"→ {Path(args.output_dir)} (manifest.json, detections/ in Parquet)")
