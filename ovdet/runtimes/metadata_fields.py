"""The fields of an export's ``ovdet.json``, each checked as hostile input before anything reads it.

``ovdet.json`` travels with the export and can be edited by anyone who can write the folder, so every value is
checked for its type and range here: a file it names is a bare file name inside the folder with the suffix that
file has (never ``..``, a sub-folder or an absolute path), a count is a positive integer (``true`` is not ``1``),
a choice is one of the known values. A problem is one :class:`~ovdet.core.errors.WeightsError` line naming the file,
the field and the fix.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ..core.errors import WeightsError
from .backend import TASKS
from .registry import export_formats, format_suffix

__all__ = ["check_fields", "check_file_name"]

VOCABULARY_MODES = ("fixed", "dynamic")
PRECISIONS = ("fp32", "fp16", "int8")
INPUT_DTYPES = ("float32", "float16")
FAMILIES = ("yolo-world", "yoloe")
MAX_CONTEXT_LENGTH = 1024
MAX_TEXT = 1000  # characters of a name, a space or a version: more is not something ovdet wrote
_TOWER_SUFFIXES = {"model_file": ".onnx", "vocab_file": ".txt.gz"}
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60

Check = Callable[[Any], "str | None"]  # the problem with a value, or None


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "must be a positive integer"
    return None


def _optional_positive_int(value: Any) -> str | None:
    return None if value is None else _positive_int(value)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        return f"must be a text of 1 to {MAX_TEXT} characters"
    return None


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and value in choices else f"must be one of {', '.join(choices)}"

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _optional_sha256(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        return None
    return "is not a SHA-256 in lowercase hex (64 characters) or null"


def _class_names(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(_text(name) for name in value):
        return "must be null or a list of class names (texts)"
    return None


def _text_encoder(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"model_file", "vocab_file", "cache_key", "context_length"}:
        return "must be null or an object with model_file, vocab_file, cache_key and context_length"
    for name, suffix in _TOWER_SUFFIXES.items():
        problem = check_file_name(value.get(name), suffix)
        if problem:
            return f"{name} {problem}"
    if _text(value.get("cache_key")):
        return "cache_key must be a text"
    length = value.get("context_length", 1)  # absent: the default of TextTowerInfo
    if _positive_int(length) or length > MAX_CONTEXT_LENGTH:
        return f"context_length must be an integer from 1 to {MAX_CONTEXT_LENGTH}"
    return None


FIELDS: dict[str, Check] = {
    "format": _one_of(*export_formats()),
    "vocabulary": _one_of(*VOCABULARY_MODES),
    "max_classes": _positive_int,
    "classes": _class_names,
    "embedding_space": _text,
    "embedding_dim": _positive_int,
    "imgsz": _positive_int,
    "stride": _positive_int,
    "max_batch": _optional_positive_int,
    "precision": _one_of(*PRECISIONS),
    "input_dtype": _one_of(*INPUT_DTYPES),
    "source_weights": _text,
    "source_sha256": _text,
    "ovdet_version": _text,
    "text_encoder": _text_encoder,
    "family": _one_of(*FAMILIES),
    "task": _one_of(*TASKS),
    "end2end": _boolean,
    "model_sha256": _optional_sha256,
}


def check_file_name(value: Any, suffix: str) -> str | None:
    """The problem with ``value`` as the name of an export's file ending in ``suffix``, or ``None``.

    Example:
        >>> check_file_name("../other.onnx", ".onnx")
        'must be a file name inside the export folder (no folder, .. or absolute path)'
    """
    if not isinstance(value, str):
        return "must be a file name (a text)"
    bare = value not in ("", ".", "..") and "\x00" not in value
    if not bare or PurePosixPath(value).name != value or PureWindowsPath(value).name != value:
        return "must be a file name inside the export folder (no folder, .. or absolute path)"
    if not value.endswith(suffix) or value == suffix:
        return f"must name a {suffix} file"
    return None


def check_fields(data: Mapping[str, Any], where: str) -> None:
    """Raise :class:`WeightsError` for the first field of ``data`` whose value is not what ovdet writes.

    Example:
        >>> check_fields({"imgsz": "640"}, "out/ovdet.json")
        Traceback (most recent call last):
        ovdet.core.errors.WeightsError: out/ovdet.json: imgsz '640' must be a positive integer: re-export the model ...
    """
    for name, check in FIELDS.items():
        if name in data:
            _refuse_if(check(data[name]), name, data[name], where)
    if data.get("format") in export_formats():
        _refuse_if(check_file_name(data.get("model_file"), format_suffix(data["format"])), "model_file",
                   data.get("model_file"), where)  # fmt: skip


def _refuse_if(problem: str | None, name: str, value: Any, where: str) -> None:
    if problem:
        raise WeightsError(
            f"{where}: {name} {_shown.repr(value)} {problem}: re-export the model with ovdet export "
            f"(ovdet.json is written by ovdet, not edited)"
        )
