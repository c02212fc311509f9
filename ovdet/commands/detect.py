"""``ovdet detect``: find classes named in words in images, videos, webcams and streams."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import ConfigError, OvdetError, SourceError, UsageError
from ..io.samples import SAMPLE_CLASSES
from ..runtimes.registry import pt_runtimes
from . import analytics as analytics_flags
from . import precision_flags, run_dir
from .report import RunSummary, frame_unit

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson")
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


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
    from ..detector import OpenVocabDetector
    from ..core.files import check_writable
    from ..io.sources import open_source
    from ..io.pipeline import SinkWriter
    from ..prompts.vocabulary import parse_classes
    from ..prompts.vocabulary_files import VocabularyWatcher, load_vocabulary

    summary = RunSummary()
    asked = precision_flags.requested(args)
    names = ("conf", "iou", "imgsz", "max_det", "batch", "agnostic_nms")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    InferenceSettings().replace(**given)  # bad values are refused before any work
    args = run_dir.with_default_source(args)
    vocabulary = load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes)
    precision = _choose_precision(args, asked, vocabulary)
    watcher = VocabularyWatcher(args.vocab) if args.vocab and not args.vocab.endswith(".npz") else None
    analytics = analytics_flags.AnalyticsRun(args, vocabulary.names)
    track = args.track or bool(args.events) or analytics.needs_tracks
    source = open_source(args.source, vid_stride=args.vid_stride, reconnect_timeout=args.reconnect_timeout)
    args, results_folder = run_dir.with_default_outputs(args, source)
    outputs = _check_paths(args, source)
    analytics.check_source(source)
    with _removed_if_nothing_written(results_folder, summary), _stop_on_signals() as stop:
        for output in outputs:  # fail fast, but truncate no earlier result until the model is ready
            check_writable(output.path, directory=output.folder)
        detector = OpenVocabDetector(
            args.model, device=args.device, runtime=args.runtime, precision=precision.precision,
            calibration=precision.calibration, task=args.task, **given,
        )  # fmt: skip
        detector.set_classes(vocabulary)
        writer = SinkWriter(_open_sinks(args, source, analytics))
        try:
            _tell_sinks(detector, writer.sinks)
            summary.ready()
            stream = detector.stream(source, track=track, stop=stop.event)
            with _progress(source, args.quiet) as progress:
                for frame, detections in stream:
                    analytics.update(frame, detections)
                    writer.put(frame, detections)
                    summary.add(detections)
                    progress.update()
                    if watcher is not None and (edited := watcher.poll()) is not None:
                        _reload_vocabulary(detector, edited, writer.sinks)
        finally:
            stop.closing()  # from here on no signal may cut the closing of the outputs short
            writer.close()
        if summary.frames == 0 and stop.signum is None:
            raise SourceError(f"no frame or image could be read from {source.name}")
    if stop.signum is not None:
        log.warning(
            "stopped by %s after %d frame(s); every output holds those frames and is complete",
            signal.Signals(stop.signum).name, summary.frames,
        )  # fmt: skip
    if not args.quiet:
        outputs = [target for target in (*args.output, args.coco, args.events, args.save_annotated) if target]
        print("\n".join(summary.lines(source.name, frame_unit(source), outputs, results_folder)))
        analytics.show()
    return EXIT_BY_SIGNAL[stop.signum] if stop.signum is not None else 0


@contextmanager
def _removed_if_nothing_written(folder: Path | None, summary: RunSummary) -> Iterator[None]:
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
        if created is not None and summary.frames == 0:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _choose_precision(args: argparse.Namespace, asked: str | None, vocabulary):
    """The flags' precision, else the vocabulary file's (see ``models.choose_precision``); contradictory flags are
    usage errors, a calibration source that is missing is one line naming it."""
    from ..models import choose_precision
    from ..prompts.vocabulary import Vocabulary

    if args.calibration and not Path(args.calibration).exists():
        raise SourceError(f"--calibration {args.calibration} does not exist: pass a video file or a folder of images")
    if args.calibration and asked != "int8":
        raise UsageError("--calibration is for --precision int8: add it, or drop --calibration")
    recorded = vocabulary if isinstance(vocabulary, Vocabulary) else vocabulary.as_vocabulary()
    try:
        return choose_precision(Path(args.model), asked, None, args.calibration, recorded)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _tell_sinks(detector, sinks: list) -> None:
    """Tell the sinks that name or colour the classes what the detector's classes are."""
    for sink in sinks:
        if hasattr(sink, "use_vocabulary"):
            sink.use_vocabulary(detector.vocabulary)


def _reload_vocabulary(detector, vocabulary, sinks: list) -> None:
    """A live edit the detector refuses (e.g. new names for a fixed-class export) is reported and ignored."""
    try:
        detector.set_classes(vocabulary)
        _tell_sinks(detector, sinks)
    except OvdetError as exc:
        log.warning("ignoring the edited vocabulary, keeping the current one: %s", exc)


def _check_paths(args: argparse.Namespace, source) -> list:
    """Usage errors before any work: outputs on inputs or on each other, and outputs of the wrong type; returns
    the outputs as targets."""
    from ..io.sinks import coco_categories_path
    from ..io.targets import Target, check_suffix, check_targets

    if args.coco:
        check_suffix("--coco", args.coco, [".json"])
    if args.events:
        check_suffix("--events", args.events, list(JSONL_SUFFIXES))
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


def _open_sinks(args: argparse.Namespace, source, analytics: analytics_flags.AnalyticsRun) -> list:
    from ..io.sinks import AnnotatedImageWriter, CocoSink, CsvSink, EventsSink, JsonlSink
    from ..io.video import AnnotatedVideoSink
    from ..vision.tracking import lost_track_frames

    fps = source.fps / getattr(source, "vid_stride", 1) if source.fps else None
    openers = {"jsonl": JsonlSink, "csv": CsvSink, "video": lambda path: AnnotatedVideoSink(path, fps)}
    sinks = []
    try:
        for output in args.output:
            sinks.append(openers[_output_kind(output)](output))
        if args.coco:
            sinks.append(CocoSink(args.coco))
        if args.events:
            sinks.append(EventsSink(args.events, lost_track_frames(fps)))
        if args.save_annotated:
            sinks.append(AnnotatedImageWriter(args.save_annotated))
        sinks += analytics.open_sinks(source)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _output_kind(output: str) -> str:
    """``"jsonl"``, ``"csv"`` or ``"video"`` from the file's suffix; anything else is a usage error."""
    from ..io.video import VIDEO_OUTPUT_SUFFIXES

    suffix = Path(output).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in VIDEO_OUTPUT_SUFFIXES:
        return "video"
    known = ", ".join((*JSONL_SUFFIXES, ".csv", *sorted(VIDEO_OUTPUT_SUFFIXES)))
    hint = " (COCO results go to --coco)" if suffix == ".json" else ""
    raise UsageError(f"--output {output}: unknown file type {suffix or '(none)'}; use {known}{hint}")


class _StopRequest:
    """Set by SIGINT/SIGTERM: the frame in flight finishes, outputs are closed valid, then the run ends.

    A second signal stops at once — unless the outputs are already being closed: from then on signals are
    ignored (at the OS level, so that also holds while the interpreter shuts down), and closing always completes.
    """

    def __init__(self, handles_signals: bool) -> None:
        self.signum: int | None = None
        self.event = threading.Event()
        self.finalizing = False
        self.handles_signals = handles_signals

    def closing(self) -> None:
        self.finalizing = True
        if self.handles_signals:
            for signum in EXIT_BY_SIGNAL:
                signal.signal(signum, signal.SIG_IGN)


@contextmanager
def _stop_on_signals() -> Iterator[_StopRequest]:
    stop = _StopRequest(handles_signals=threading.current_thread() is threading.main_thread())
    if not stop.handles_signals:
        yield stop
        return

    def request_stop(signum: int, _frame) -> None:
        if stop.signum is not None and not stop.finalizing:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.signum = stop.signum or signum
        stop.event.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in EXIT_BY_SIGNAL}
    try:
        yield stop
    except KeyboardInterrupt:
        if stop.signum is None:
            raise
    finally:
        if stop.signum is None:  # once stopped by a signal, later ones stay ignored while the process exits
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def _progress(source, quiet: bool):
    from tqdm.auto import tqdm

    with tqdm(total=source.total, unit=frame_unit(source), disable=quiet, dynamic_ncols=True, leave=False) as bar:
        yield bar
