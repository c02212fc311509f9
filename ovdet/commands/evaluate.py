"""``ovdet eval``: check a vocabulary on labelled images — metrics, the best phrasings, alert thresholds, a report."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ConfigError, SourceError, UsageError
from ..evaluation.precisions import DEFAULT_MAX_MAP_DROP, MIN_AGREEMENT, MIN_FP32_MAP
from . import precision_flags

if TYPE_CHECKING:
    from ..evaluation import Evaluation, OperatingPoint, RunMetrics
    from ..evaluation.precisions import PrecisionComparison


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet eval``."""
    evaluate = commands.add_parser(
        "eval",
        help="measure a vocabulary on labelled images, compare its phrasings, choose thresholds",
        description="Evaluate a vocabulary on labelled images, e.g. ovdet eval --data ward/annotations.json "
        "--vocab ward.yaml --report report/ --write-vocab ward-tuned.yaml. Classes in the data are matched to "
        "vocabulary classes by name. Each phrasing (and template) is also tried alone; the best ones and the "
        "thresholds with the best F1 go to --write-vocab.",
    )
    evaluate.add_argument(
        "--data",
        required=True,
        help="a COCO annotations .json, or a YOLO dataset folder (images/, labels/, data.yaml or classes.txt)",
    )
    evaluate.add_argument(
        "--images", metavar="DIR", help="COCO data: the folder file_name is relative to (default: the .json's folder)"
    )
    vocabulary = evaluate.add_mutually_exclusive_group(required=True)
    vocabulary.add_argument("--vocab", metavar="FILE.yaml", help="vocabulary file (phrasings, templates, thresholds)")
    vocabulary.add_argument(
        "--classes", help='inline classes, as for ovdet detect: "pump=infusion pump|IV pump@0.3,person"'
    )
    evaluate.add_argument(
        "--model", default="yolov8s-worldv2", help="registry name or model file (default %(default)s)"
    )
    evaluate.add_argument(
        "--task",
        choices=("detect", "segment"),
        default="detect",
        help="detect: box mAP; segment: mask mAP too (a -seg model, and an outline for every labelled object: "
        "YOLO-seg polygon lines or COCO segmentation) (default %(default)s)",
    )
    evaluate.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 (default 640)")
    evaluate.add_argument(
        "--conf",
        type=float,
        help="alert threshold of classes without their own, for precision and recall (default 0.25)",
    )
    evaluate.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    evaluate.add_argument("--batch", type=int, help="images per forward pass (default 1)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    evaluate.add_argument(
        "--fps",
        type=float,
        help="frame rate of the video the labelled images come from: adds false alarms per hour of video",
    )
    evaluate.add_argument("--report", metavar="DIR", help="write report.md, figures, metrics.json and detections here")
    evaluate.add_argument(
        "--write-vocab",
        metavar="OUT.yaml",
        help="write the best phrasings and thresholds here, and the recommended precision if not fp32",
    )
    precision_flags.add_arguments(evaluate, several=True)
    evaluate.add_argument(
        "--max-map-drop",
        type=float,
        help=f"with --precision: the mAP50-95 points a precision may lose against fp32 to be recommended; it must "
        f"also report the same boxes as fp32 ({100 * MIN_AGREEMENT:.0f}%% both ways), and labels on which fp32 "
        f"scores under {MIN_FP32_MAP:g} recommend nothing but fp32 (default {DEFAULT_MAX_MAP_DROP:g})",
    )
    evaluate.set_defaults(run=run)


def _check_paths(args: argparse.Namespace) -> None:
    """Usage errors before any work: ``--write-vocab`` or ``--report`` on the data, the vocabulary, the model or the
    calibration scenes (eval would overwrite what it reads)."""
    from ..evaluation.report_files import check_report_files, check_report_location
    from ..io.targets import Target, check_targets

    data = Path(args.data)
    read = [("--data", data), ("--vocab", args.vocab), ("--model", args.model), ("--images", args.images),
            ("--calibration", args.calibration)]  # fmt: skip
    if data.is_dir():
        read.append(("--data's data.yaml", data / "data.yaml"))
    written = [Target("--write-vocab", Path(args.write_vocab))] if args.write_vocab else []
    if args.report:
        written.append(Target("--report", Path(args.report), folder=True))
    check_targets([Target(role, Path(path)) for role, path in read if path], written)
    if args.report:
        check_report_location(args.report, data, args.images)
        check_report_files(Path(args.report))


def run(args: argparse.Namespace) -> int:
    """Check every input and output first (bad data fails before the model loads), then evaluate."""
    from ..core.config import InferenceSettings
    from ..detector import OpenVocabDetector
    from ..evaluation import evaluate, load_dataset, match_categories, write_report
    from ..evaluation.calibration import check_calibration
    from ..io.sinks import check_writable
    from ..prompts.vocabulary import Vocabulary, parse_classes
    from ..prompts.vocabulary_files import load_vocabulary

    vocabulary = load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes)
    if not isinstance(vocabulary, Vocabulary):
        raise ConfigError(f"{args.vocab} is an .npz of embeddings: evaluate the YAML vocabulary it came from")
    if args.write_vocab and Path(args.write_vocab).suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"--write-vocab {args.write_vocab} must end in .yaml (a vocabulary file)")
    _check_paths(args)
    for output, directory in ((args.report, True), (args.write_vocab, False)):
        if output:
            check_writable(output, directory=directory)
    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps {args.fps:g} is not a frame rate: give the video's frames per second, e.g. --fps 10")
    precisions = _precisions(args)
    settings = InferenceSettings().replace(conf=args.conf, iou=args.iou, imgsz=args.imgsz, batch=args.batch)
    dataset = load_dataset(args.data, args.images, args.task)
    categories = match_categories(dataset, vocabulary.names)
    if args.calibration:
        check_calibration(args.calibration, [image.path for image in dataset.images])
    started = time.perf_counter()
    detector = OpenVocabDetector(args.model, device=args.device, precision="fp32", task=args.task, **vars(settings))
    with _progress(args.quiet) as progress:
        evaluation = evaluate(detector, dataset, vocabulary, progress=progress)
    if precisions:
        evaluation = _compare_precisions(args, evaluation, detector, categories, precisions)
    report = write_report(evaluation, args.report, args.fps) if args.report else None
    if args.write_vocab:
        comment = f"chosen by ovdet eval on {dataset.name} with {evaluation.model}: phrasings by AP, thresholds by F1"
        if evaluation.precisions is not None:
            comparison = evaluation.precisions
            comment += f", precision {comparison.recommended} ({comparison.verdict})"
        evaluation.chosen.save(args.write_vocab, comment)
    if not args.quiet:
        _show(evaluation, time.perf_counter() - started, report, args.write_vocab, args.fps)
    return 0


def _precisions(args: argparse.Namespace) -> tuple[str, ...]:
    """The precisions to compare (``--half`` adds bf16); INT8 needs scenes other than the labelled images."""
    precisions = (*(args.precision or ()), *(("bf16",) if args.half else ()))
    if args.max_map_drop is not None and not precisions:
        raise UsageError("--max-map-drop applies to a precision comparison: add e.g. --precision fp32,bf16,int8")
    if args.max_map_drop is not None and not 0 <= args.max_map_drop <= 100:
        raise UsageError(f"--max-map-drop {args.max_map_drop:g} is not a drop in mAP points: give 0 to 100, e.g. 1")
    if args.calibration and "int8" not in precisions:
        raise UsageError("--calibration is for int8: add it to --precision, or drop --calibration")
    if "int8" in precisions and not args.calibration:
        raise UsageError(
            "--precision int8 needs --calibration VIDEO_OR_FOLDER: frames of your scenes other than the labelled "
            "images (calibrating on the images INT8 is scored on would flatter it)"
        )
    if args.calibration and not Path(args.calibration).exists():
        raise SourceError(f"--calibration {args.calibration} does not exist: pass a video file or a folder of images")
    return precisions


def _compare_precisions(
    args: argparse.Namespace, evaluation: Evaluation, fp32_detector, categories: dict[int, str], precisions
) -> Evaluation:
    """The chosen vocabulary in FP32 and each precision asked; the recommendation goes into the chosen vocabulary."""
    from ..detector import OpenVocabDetector
    from ..evaluation.precisions import compare_precisions
    from ..export.quantize import calibration_digest

    settings = evaluation.settings

    def detector_for(precision: str):
        if precision == "fp32":
            return fp32_detector
        calibration = args.calibration if precision == "int8" else None
        return OpenVocabDetector(
            args.model, device=args.device, precision=precision, calibration=calibration, task=fp32_detector.task,
            text_encoder=fp32_detector.text_encoder, imgsz=settings.imgsz, iou=settings.iou, batch=settings.batch,
        )  # fmt: skip

    comparison = compare_precisions(
        detector_for, evaluation.dataset, categories, evaluation.chosen, precisions, settings,
        default_conf=fp32_detector.settings.conf,
        max_map_drop=DEFAULT_MAX_MAP_DROP if args.max_map_drop is None else args.max_map_drop,
    )  # fmt: skip
    int8 = "int8" in precisions
    comparison = dataclasses.replace(
        comparison,
        calibration=args.calibration if int8 else None,
        calibration_digest=calibration_digest(args.calibration) if int8 else None,
    )
    chosen = _with_precision(evaluation.chosen, comparison)
    return dataclasses.replace(evaluation, chosen=chosen, precisions=comparison)


def _with_precision(vocabulary, comparison: PrecisionComparison):
    """The vocabulary recording the recommended precision (nothing for fp32, the default)."""
    recommended = comparison.recommended
    int8 = recommended == "int8"
    return dataclasses.replace(
        vocabulary,
        precision=None if recommended == "fp32" else recommended,
        calibration=comparison.calibration if int8 else None,
        calibration_digest=comparison.calibration_digest if int8 else None,
    )


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    from tqdm.auto import tqdm

    with tqdm(unit="image", disable=quiet, dynamic_ncols=True, leave=False) as bar:

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield update


def _show(
    evaluation: Evaluation, seconds: float, report: Path | None, vocabulary_file: str | None, fps: float | None
) -> None:
    from ..evaluation.prompts import describe_prompts

    dataset = evaluation.dataset
    objects = sum(dataset.objects_per_category().values())
    print(
        f"{dataset.name}: {len(dataset.images)} images, {objects} objects, {len(evaluation.class_names)} class(es); "
        f"{evaluation.runs} run(s) in {seconds:.1f} s"
    )
    written = {c.name: c.prompts for c in evaluation.vocabulary.classes}
    chosen = {c.name: c.prompts for c in evaluation.chosen.classes}
    _show_run("as written", evaluation.as_written, evaluation.written_points, written, evaluation.class_names)
    _show_run("chosen", evaluation.best, evaluation.chosen_points, chosen, evaluation.class_names)
    if evaluation.templates:
        print(f"  templates: {describe_prompts(evaluation.chosen.templates)}")
    print("verdict per class (chosen vocabulary):")
    for verdict in evaluation.verdicts(fps):
        print(f"  {verdict.name}: {verdict.text}")
    if evaluation.precisions is not None:
        _show_precisions(evaluation.precisions)
    for target in (report, vocabulary_file):
        if target:
            print(f"→ {target}")


def _show_precisions(comparison: PrecisionComparison) -> None:
    fp32 = comparison.runs[0].map50_95
    print("precision (chosen vocabulary; boxes matched to FP32's at IoU 0.9):")
    for run in comparison.runs:
        print(
            f"  {run.precision:<4}  computed in {run.computed:<4}  mAP50-95 {_num(run.map50_95)} "
            f"(drop {_points(fp32 - run.map50_95)} points)  FP32 boxes kept {_share(run.fp32_boxes_kept)}, "
            f"boxes FP32 has {_share(run.boxes_fp32_has)}  {run.fps:.1f} images/s"
        )
    print(f"recommended precision: {comparison.recommended} ({comparison.verdict})")


def _points(drop: float) -> str:
    return "–" if drop != drop else f"{100 * drop:.1f}"


def _share(value: float) -> str:
    return "–" if value != value else f"{value:.0%}"


def _show_run(
    title: str,
    metrics: RunMetrics,
    points: Mapping[str, OperatingPoint],
    prompts: Mapping[str, tuple[str, ...]],
    names: tuple[str, ...],
) -> None:
    masks = ""
    if metrics.mask_map50_95 is not None and metrics.mask_map50 is not None:
        masks = f"; masks: mAP50-95 {_num(metrics.mask_map50_95)}, mAP50 {_num(metrics.mask_map50)}"
    print(f"{title}: mAP50-95 {_num(metrics.map50_95)}, mAP50 {_num(metrics.map50)}{masks}")
    width = max(len("class"), *(len(name) for name in names))
    print(f"  {'class':<{width}}  objects  AP50-95   AP50  threshold  precision  recall  phrasings")
    for name in names:
        outcome, point = metrics.classes[name], points[name]
        print(
            f"  {name:<{width}}  {len(outcome.objects):>7}  {_num(outcome.ap50_95):>7}  {_num(outcome.ap50):>5}  "
            f"{point.threshold:>9.2f}  {_num(point.precision):>9}  {_num(point.recall):>6}  "
            f"{' | '.join(prompts[name])}"
        )


def _num(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"
