"""``ovdet detect``: find classes named in words in images, videos, webcams and streams."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import OvdetError, UsageError
from ..io.samples import SAMPLE_CLASSES
from ..runtimes.registry import pt_runtimes
from . import analytics as analytics_flags
from . import precision_flags, run_dir

log = logging.getLogger(__name__)

OUTPUT_FILE_KINDS = ("jsonl", "csv", "video")  # what --output writes, told apart by the file's suffix


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet detect``."""
    detect = commands.add_parser(
        "detect",
        help="detect classes named in words in images, videos and streams",
        description='Detect classes named in words, e.g. ovdet detect video.mp4 --classes "red backpack,person"',
    )
    detect.add_argument(
        "source",
        nargs="?",
        help="an image, folder or glob; a video file; a webcam index (0); or an rtsp/rtmp/http URL "
        "(default: the sample images bundled with Ultralytics, bus.jpg and zidane.jpg)",
    )
    vocabulary = detect.add_mutually_exclusive_group()
    vocabulary.add_argument(
        "--classes",
        help='comma-separated class names, e.g. "red backpack,person"; synonyms and thresholds: '
        '"pump=infusion pump|IV pump@0.3,person,!toy pump" (! marks a decoy); '
        f'with no source the default is "{SAMPLE_CLASSES}", what the sample images show',
    )
    vocabulary.add_argument(
        "--vocab",
        metavar="FILE",
        help="vocabulary file: .yaml (edits are picked up while running) or .npz; the precision it records "
        "(ovdet eval --write-vocab) is used unless --precision or --half is given",
    )
    detect.add_argument("--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)")
    detect.add_argument(
        "--task",
        choices=("detect", "segment"),
        help="detect: boxes; segment: boxes and masks (a -seg checkpoint); default: what the model does",
    )
    detect.add_argument("--conf", type=float, help="confidence threshold (default 0.25)")
    detect.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    detect.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 up to 4096 (default 640)")
    detect.add_argument("--max-det", type=int, help="most boxes per image (default 300)")
    detect.add_argument("--batch", type=int, help="frames per forward pass; batch × imgsz² ≤ 4096² (default 1)")
    detect.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    detect.add_argument(
        "--runtime",
        default="auto",
        choices=("auto", *pt_runtimes()),
        help="for a .pt: auto = OpenVINO on a CPU (converted once, cached), PyTorch on CUDA (default %(default)s)",
    )
    precision_flags.add_arguments(detect)
    detect.add_argument("--agnostic-nms", action="store_true", default=None, help="one box, one label")
    detect.add_argument("--vid-stride", type=int, default=1, help="process every n-th video frame (default 1)")
    detect.add_argument("--track", action="store_true", help="give boxes ids that stay stable across frames")
    detect.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="FILE",
        help="FILE.jsonl (a line per frame), FILE.csv (a row per box) or FILE.mp4 (annotated video); repeatable",
    )
    detect.add_argument("--coco", metavar="FILE.json", help="COCO detection results (pycocotools loadRes)")
    detect.add_argument("--events", metavar="FILE.jsonl", help="a line per track when it ends (implies --track)")
    detect.add_argument("--save-annotated", metavar="DIR", help="save images (or frames) with boxes drawn")
    detect.add_argument(
        "--reconnect-timeout", type=float, default=30.0, help="seconds to retry a dropped stream (default 30)"
    )
    analytics_flags.add_arguments(detect)
    run_dir.add_arguments(detect)
    detect.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check every path and open the source (bad input fails before work), load the model, open every output, then
    stream."""
    from ..core.config import InferenceSettings
    from ..core.files import check_writable
    from ..detector import OpenVocabDetector
    from ..io.sources import open_source
    from ..prompts.vocabulary import parse_classes
    from ..prompts.vocabulary_files import VocabularyWatcher, load_vocabulary
    from ..run import Run, RunCounts, frame_unit, stop_on_signals

    counts = RunCounts()
    names = ("conf", "iou", "imgsz", "max_det", "batch", "agnostic_nms")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    precision_flags.requested(args)  # contradictory precision flags are the first error
    InferenceSettings().replace(**given)  # bad values are refused before any work
    args = run_dir.with_default_source(args)
    vocabulary = load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes)
    precision = precision_flags.choose(args, vocabulary)
    watcher = VocabularyWatcher(args.vocab) if args.vocab and not args.vocab.endswith(".npz") else None
    analytics = analytics_flags.detect_analytics(args, vocabulary.names)
    source = open_source(args.source, vid_stride=args.vid_stride, reconnect_timeout=args.reconnect_timeout)
    args, results_folder = run_dir.with_default_outputs(args, source)
    targets = _check_paths(args, source)
    outputs = _output_specs(args, analytics)
    with _removed_if_nothing_written(results_folder, counts), stop_on_signals() as stop:
        detection_run = Run(source, outputs, analytics=analytics, track=args.track, stop=stop, counts=counts,
                      progress=not args.quiet)  # fmt: skip
        for target in targets:  # fail fast, but truncate no earlier result until the model is ready
            check_writable(target.path, directory=target.folder)
        detector = OpenVocabDetector(
            args.model, device=args.device, runtime=args.runtime, precision=precision.precision,
            calibration=precision.calibration, task=args.task, **given,
        )  # fmt: skip
        detector.set_classes(vocabulary)
        detection_run.execute(_frames(detector, source, watcher, detection_run), detector.vocabulary)
    if stop.signum is not None:
        log.warning(
            "stopped by %s after %d frame(s); every output holds those frames and is complete",
            signal.Signals(stop.signum).name, counts.frames,
        )  # fmt: skip
    if not args.quiet:
        shown = [target for target in (*args.output, args.coco, args.events, args.save_annotated) if target]
        print("\n".join(counts.lines(source.name, frame_unit(source), shown, results_folder)))
        analytics_flags.show(args, detection_run.sinks)
    return stop.exit_code


@contextmanager
def _removed_if_nothing_written(folder: Path | None, counts) -> Iterator[None]:
    """A default results folder this run creates (with the parents it creates) goes again if the run fails before
    its first frame."""
    created = None
    if folder is not None and not folder.exists():
        created = folder
        while not created.parent.exists():
            created = created.parent
    try:
        yield
    except BaseException:
        if created is not None and counts.frames == 0:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _frames(detector, source, watcher, detection_run):
    """The detector's stream of ``source``, following the edits of a watched vocabulary file between frames."""

    def frames(stop, track):
        for item in detector.stream(source, track=track, stop=stop):
            yield item
            if watcher is not None and (edited := watcher.poll()) is not None:
                _reload_vocabulary(detector, edited, detection_run)

    return frames


def _reload_vocabulary(detector, vocabulary, detection_run) -> None:
    """A live edit the detector refuses (e.g. new names for a fixed-class export) is reported and ignored."""
    try:
        detector.set_classes(vocabulary)
        detection_run.use_vocabulary(detector.vocabulary)
    except OvdetError as exc:
        log.warning("ignoring the edited vocabulary, keeping the current one: %s", exc)


def _check_paths(args: argparse.Namespace, source) -> list:
    """Usage errors before any work: outputs on inputs or on each other, and outputs of the wrong type; returns
    the outputs as targets."""
    from ..io.sinks import coco_categories_path
    from ..io.targets import Target, check_suffix, check_targets
    from ..run.outputs import OUTPUT_KINDS

    if args.coco:
        check_suffix("--coco", args.coco, OUTPUT_KINDS["coco"].suffixes)
    if args.events:
        check_suffix("--events", args.events, OUTPUT_KINDS["events"].suffixes)
    read = getattr(source, "paths", None) or ([Path(source.name)] if Path(source.name).is_file() else [])
    inputs = [Target("the input", Path(path)) for path in read]
    named = (("--vocab", args.vocab), ("--model", args.model), ("--calibration", args.calibration))
    inputs += [Target(role, Path(path)) for role, path in named if path]
    outputs = [Target("--output", Path(path)) for path in args.output]
    if args.coco:
        outputs += [Target("--coco", Path(args.coco)), Target("--coco's categories", coco_categories_path(args.coco))]
    if args.events:
        outputs.append(Target("--events", Path(args.events)))
    if args.save_annotated:
        role = getattr(args, "save_annotated_role", "--save-annotated")  # or the default results folder
        outputs.append(Target(role, Path(args.save_annotated), folder=True))
    more_inputs, more_outputs = analytics_flags.targets(args)
    check_targets(inputs + more_inputs, outputs + more_outputs)
    for output in args.output:
        _output_kind(output)
    return outputs + more_outputs


def _output_specs(args: argparse.Namespace, analytics) -> list:
    from ..run.outputs import OutputSpec, analytics_outputs

    specs = [OutputSpec(_output_kind(output), output) for output in args.output]
    named = (("coco", args.coco), ("events", args.events), ("annotated", args.save_annotated))
    specs += [OutputSpec(kind, path) for kind, path in named if path]
    return specs + analytics_outputs(
        analytics, crops=args.save_crops, alerts=args.alerts, webhook=args.webhook, summary=args.summary
    )


def _output_kind(output: str) -> str:
    """``"jsonl"``, ``"csv"`` or ``"video"`` from the file's suffix; anything else is a usage error."""
    from ..run.outputs import OUTPUT_KINDS

    suffix = Path(output).suffix.lower()
    for kind in OUTPUT_FILE_KINDS:
        if suffix in OUTPUT_KINDS[kind].suffixes:
            return kind
    known = ", ".join(suffix for kind in OUTPUT_FILE_KINDS for suffix in OUTPUT_KINDS[kind].suffixes)
    hint = " (COCO results go to --coco)" if suffix == ".json" else ""
    raise UsageError(f"--output {output}: unknown file type {suffix or '(none)'}; use {known}{hint}")
