"""``--precision`` (and its alias ``--half``) and ``--calibration``, the same on detect, export, bench and eval."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import ConfigError, SourceError, UsageError
from ..core.precision import PRECISIONS, check_precision, parse_precisions, requested_precision

CHOICES = "|".join(PRECISIONS)
MEANING = (
    "fp32 (the default); bf16 and fp16 both ask for the device's reduced floating point (BF16 on a CPU with "
    "OpenVINO, FP16 on CUDA); int8: OpenVINO with INT8 convolutions calibrated on --calibration"
)


def add_arguments(parser: argparse.ArgumentParser, *, several: bool = False, calibration: bool = True) -> None:
    """Add ``--precision`` (a comma-separated list when ``several``), ``--half`` and, with ``calibration``,
    ``--calibration``."""
    if several:
        parser.add_argument(
            "--precision",
            type=_checked(parse_precisions),
            metavar=f"{CHOICES}[,…]",
            help=f"precisions to compare, comma-separated, e.g. fp32,bf16,int8 (FP32 always included): {MEANING}",
        )
    else:
        parser.add_argument("--precision", type=_checked(check_precision), metavar=CHOICES, help=MEANING)
    parser.add_argument(
        "--half", action="store_true", default=None, help="reduced precision: the same as --precision bf16"
    )
    if calibration:
        parser.add_argument(
            "--calibration",
            metavar="VIDEO_OR_FOLDER",
            help="for --precision int8: a video file or image folder of your own scenes to calibrate INT8 on",
        )


def requested(args: argparse.Namespace) -> str | None:
    """The one precision the flags ask for (``--half`` is ``bf16``), or ``None``; contradictions are usage errors."""
    try:
        return requested_precision(args.precision, args.half)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def choose(args: argparse.Namespace, vocabulary):
    """What runs for ``ovdet detect``, ``ovdet batch`` and ``ovdet serve``: the flags' precision, else the vocabulary
    file's, if any (see ``models.choose_precision``); contradictory flags are usage errors, a calibration source
    that is missing is one line naming it."""
    from ..models import choose_precision
    from ..prompts.vocabulary import Vocabulary

    asked = requested(args)
    if args.calibration and not Path(args.calibration).exists():
        raise SourceError(f"--calibration {args.calibration} does not exist: pass a video file or a folder of images")
    if args.calibration and asked != "int8":
        raise UsageError("--calibration is for --precision int8: add it, or drop --calibration")
    recorded = vocabulary if vocabulary is None or isinstance(vocabulary, Vocabulary) else vocabulary.as_vocabulary()
    try:
        return choose_precision(Path(args.model), asked, None, args.calibration, recorded)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _checked(parse):
    """An argparse ``type`` that turns the parser's one-line error into argparse's own (exit code 2)."""

    def check(text: str):
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    check.__name__ = "precision"
    return check
