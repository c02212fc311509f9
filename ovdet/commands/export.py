"""``ovdet export``: write a detector for ONNX Runtime, OpenVINO, TorchScript or TensorRT, fixed or changeable."""

from __future__ import annotations

import argparse

from ..core.precision import REDUCED
from ..export.exporter import DEFAULT_MAX_CLASSES, FORMATS
from ..export.quantize import DEFAULT_CALIBRATION_FRAMES
from ..runtimes.artifact import Artifact
from . import precision_flags

MEGABYTE = 1e6


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet export``."""
    export = commands.add_parser(
        "export",
        help="export a detector for deployment runtimes, with fixed or changeable classes",
        description=(
            "Export a YOLO-World or YOLOE detector, e.g. ovdet export --format openvino --dynamic-vocab "
            "--max-classes 16, then run it with ovdet detect --model <exported file or folder>"
        ),
    )
    export.add_argument("--model", default="yolov8s-worldv2", help="registry name or .pt file (default %(default)s)")
    export.add_argument("--format", required=True, choices=FORMATS, help="runtime format (engine: TensorRT)")
    vocabulary = export.add_mutually_exclusive_group()
    vocabulary.add_argument("--classes", help='comma-separated classes to bake in, e.g. "red backpack,person"')
    vocabulary.add_argument("--vocab", metavar="FILE", help="vocabulary to bake in: .yaml or .npz (ovdet embed)")
    vocabulary.add_argument(
        "--dynamic-vocab", action="store_true", help="keep classes changeable: embeddings become an input"
    )
    export.add_argument(
        "--max-classes", type=int, help=f"classes per call of a --dynamic-vocab export (default {DEFAULT_MAX_CLASSES})"
    )
    export.add_argument("--imgsz", type=int, help="input size (default 640; the largest an engine accepts)")
    export.add_argument("--batch", type=int, default=1, help="largest batch of an engine (default %(default)s)")
    precision_flags.add_arguments(export)
    export.add_argument(
        "--calibration-frames",
        type=int,
        default=DEFAULT_CALIBRATION_FRAMES,
        help="frames spread over --calibration (default %(default)s)",
    )
    export.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    export.add_argument("-o", "--output", metavar="DIR", help="folder to write (default runs/export/<name>)")
    export.set_defaults(run=run, parser=export)


def run(args: argparse.Namespace) -> int:
    """Load the detector, set the baked vocabulary if any, export, and say how to run the result."""
    from ..detector import OpenVocabDetector
    from ..prompts.vocabulary import parse_classes
    from ..prompts.vocabulary_files import load_vocabulary

    if not args.dynamic_vocab and args.classes is None and args.vocab is None:
        args.parser.error("pass the classes to bake in (--classes or --vocab), or --dynamic-vocab")
    if args.max_classes is not None and not args.dynamic_vocab:
        args.parser.error("--max-classes sizes a changeable vocabulary: add --dynamic-vocab")
    precision = precision_flags.requested(args)
    detector = OpenVocabDetector(args.model, device=args.device, runtime="torch")
    if args.classes is not None or args.vocab is not None:
        detector.set_classes(load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes))
    model_file = detector.export(
        args.format, dynamic_vocab=args.dynamic_vocab, max_classes=args.max_classes, imgsz=args.imgsz,
        batch=args.batch, half=precision in REDUCED, int8=precision == "int8",
        calibration=args.calibration, calibration_frames=args.calibration_frames, output=args.output,
    )  # fmt: skip
    artifact = Artifact.open(model_file, args.format)
    print(_describe(artifact))
    return 0


def _describe(artifact: Artifact) -> str:
    metadata = artifact.metadata
    sizes = artifact.size_bytes()
    if metadata.dynamic:
        vocabulary = f"changeable vocabulary, 1 to {metadata.max_classes} classes per call"
        example = '--classes "a,b,c"'
    else:
        vocabulary = f"fixed classes {', '.join(metadata.classes or ())}"
        example = f'--classes "{",".join(metadata.classes or ())}"'
    size = f"{sizes['detector'] / MEGABYTE:.1f} MB"
    if sizes["text_encoder"]:
        size += f" + text encoder {sizes['text_encoder'] / MEGABYTE:.1f} MB"
    return (
        f"exported {metadata.source_weights} ({metadata.format}, {metadata.precision}, {vocabulary}) "
        f"→ {artifact.model_path} ({size})\n"
        f"run it: ovdet detect SOURCE --model {artifact.folder} {example}"
    )
