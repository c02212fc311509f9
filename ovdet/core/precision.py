"""The precisions a detector can run in, named the same on every command and in every record.

``fp32`` is the default everywhere. ``bf16`` and ``fp16`` both ask for the device's reduced floating point — BF16 on
a CPU through OpenVINO, FP16 on CUDA and on OpenVINO GPUs — which is what ``--half`` asks for: a run records the one
that actually ran. ``int8`` is OpenVINO with INT8 convolutions calibrated on the user's own frames
(:mod:`ovdet.export.quantize`).
"""

from __future__ import annotations

import reprlib

from .errors import ConfigError

__all__ = ["PRECISIONS", "REDUCED", "check_precision", "parse_precisions", "precision_name", "requested_precision"]

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
REDUCED = ("bf16", "fp16")  # the device's reduced floating point, as --half asks for it
_RECORDED_NAMES = {
    "f32": "fp32", "fp32": "fp32", "float32": "fp32",
    "bf16": "bf16", "bfloat16": "bf16",
    "f16": "fp16", "fp16": "fp16", "float16": "fp16",
    "int8": "int8", "i8": "int8",
}  # fmt: skip


def check_precision(value: object, where: str = "precision") -> str:
    """``value`` as one of :data:`PRECISIONS` (case and spaces ignored); anything else is one line.

    Example:
        >>> check_precision(" BF16 ")
        'bf16'
    """
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in PRECISIONS:
        raise ConfigError(f"{where} {reprlib.repr(value)} is unknown: use one of {', '.join(PRECISIONS)}")
    return name


def parse_precisions(text: str, where: str = "--precision") -> tuple[str, ...]:
    """A comma-separated list of precisions, in order, each once.

    Example:
        >>> parse_precisions("fp32, int8,fp32")
        ('fp32', 'int8')
    """
    names = [part for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError(f"{where} is empty: give e.g. fp32,bf16,int8")
    return tuple(dict.fromkeys(check_precision(name, where) for name in names))


def requested_precision(precision: str | None, half: bool | None) -> str | None:
    """The precision asked for by ``precision`` and its alias ``half`` together; ``None`` when neither says.

    Example:
        >>> requested_precision(None, True), requested_precision("int8", None)
        ('bf16', 'int8')
    """
    if precision is None:
        return "bf16" if half else None
    precision = check_precision(precision)
    if half and precision not in REDUCED:
        raise ConfigError(
            f"--half (half=True) asks for the reduced precision bf16/fp16, and precision {precision} was given: "
            f"choose one"
        )
    return precision


def precision_name(value: object) -> str:
    """The name a runtime's precision is recorded under (``f32`` → ``fp32``, OpenVINO types too).

    Example:
        >>> precision_name("f32"), precision_name("bfloat16")
        ('fp32', 'bf16')
    """
    name = getattr(value, "get_type_name", lambda: str(value))()
    return _RECORDED_NAMES.get(str(name).lower(), str(name))
