"""Turning a request into what detection needs: the image bytes, the vocabulary and the settings.

``POST /v1/detect`` takes a multipart form (``image`` file, and ``classes`` or ``vocabulary``, ``conf``, ``iou``,
``imgsz`` fields) or JSON (the same fields, ``image`` as base64); ``POST /v1/jobs`` takes the same fields, a
``video`` file and an optional ``zones`` file. Every refusal is an :class:`ApiError` with the HTTP status and one
line saying what to fix.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..analytics.stream import Analytics
from ..analytics.zones_yaml import MAX_ZONES_BYTES, ZonesFile, check_rule_classes, parse_zones_yaml
from ..core.config import InferenceSettings
from ..core.errors import ConfigError, VocabularyError, ZonesError
from ..core.plain_yaml import decode_plain_text
from ..prompts.vocabulary import Vocabulary, parse_classes
from .security import IMAGE_TYPES, media_type
from .vocabularies import DEFAULT_VOCABULARY, InvalidName, UnknownVocabulary, VocabularyStore

__all__ = ["ApiError", "DetectJson", "Options", "fit_zones", "read_detect_request", "read_options", "read_zones"]

_SETTINGS = ("conf", "iou", "imgsz")


class ApiError(HTTPException):
    """An HTTP error whose ``detail`` is one line for the caller."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)


class DetectJson(BaseModel):
    """The JSON body of ``POST /v1/detect``."""

    image: str = Field(description="the encoded image (JPEG, PNG, WebP, BMP, TIFF or GIF) as base64")
    classes: str | list[str] | None = Field(
        None, description='comma-separated classes ("infusion pump,IV pole"), or a list of names'
    )
    vocabulary: str | None = Field(None, description="the name of a stored vocabulary, instead of classes")
    conf: float | None = Field(None, description="confidence threshold in [0, 1]")
    iou: float | None = Field(None, description="NMS IoU threshold in [0, 1]")
    imgsz: int | None = Field(None, description="network input size, a multiple of 32")
    name: str = Field("upload", description="the name reported as the record's source")


@dataclass
class Options:
    """What a request asks for besides its media."""

    vocabulary: Vocabulary
    settings: InferenceSettings


async def read_detect_request(
    request: Request, store: VocabularyStore, defaults: InferenceSettings, max_classes: int
) -> tuple[bytes, str, Options]:
    """``(image bytes, source name, options)`` from a multipart or JSON request."""
    kind = media_type(request.headers.get("content-type"))
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "the form has no file field 'image': send the image as -F image=@photo.jpg")
        check_image_type(upload.content_type)
        data = await upload.read()
        options = await run_in_threadpool(read_options, dict(form), store, defaults, max_classes)
        return data, upload.filename or "upload", options
    if kind == "application/json":
        body = _json_body(await request.body())
        data = _base64(body.image)
        fields = body.model_dump(include={"classes", "vocabulary", *_SETTINGS})
        return data, body.name, await run_in_threadpool(read_options, fields, store, defaults, max_classes)
    raise ApiError(
        415, f"content type {kind or '(none)'} is not accepted: send multipart/form-data or application/json"
    )


def check_image_type(content_type: str | None) -> None:
    kind = media_type(content_type)
    if kind not in IMAGE_TYPES and kind != "application/octet-stream":
        raise ApiError(415, f"the upload is {kind or 'untyped'}, not an image: send {', '.join(sorted(IMAGE_TYPES))}")


def read_options(
    fields: dict[str, Any], store: VocabularyStore, defaults: InferenceSettings, max_classes: int
) -> Options:
    """The vocabulary (``classes`` or a stored ``vocabulary``) and the settings of a request's fields; call it off
    the event loop (a stored vocabulary is parsed).

    A class list of more than ``max_classes`` names is refused (413) before its names are parsed.
    """
    return Options(_vocabulary(fields, store, max_classes), _settings(fields, defaults))


def _vocabulary(fields: dict[str, Any], store: VocabularyStore, max_classes: int) -> Vocabulary:
    classes, name = fields.get("classes"), fields.get("vocabulary")
    given = len(classes) if isinstance(classes, list) else str(classes or "").count(",") + 1
    if given > max_classes:
        raise ApiError(
            413,
            f"{given} classes are more than this server's limit of {max_classes} per request: send fewer, or start "
            f"the server with a larger --max-classes",
        )
    if not classes and not name and DEFAULT_VOCABULARY in store.names():
        name = DEFAULT_VOCABULARY
    if bool(classes) == bool(name):
        raise ApiError(422, "send either classes (e.g. 'infusion pump,IV pole') or the name of a stored vocabulary")
    try:
        if name:
            return store.load(str(name))
        if isinstance(classes, list):
            return Vocabulary.from_names(classes)
        return parse_classes(str(classes))
    except UnknownVocabulary as exc:
        raise ApiError(404, str(exc)) from None
    except (InvalidName, VocabularyError) as exc:
        raise ApiError(422, str(exc)) from None


def _settings(fields: dict[str, Any], defaults: InferenceSettings) -> InferenceSettings:
    changes = {}
    for key in _SETTINGS:
        value = fields.get(key)
        if value in (None, ""):
            continue
        try:
            changes[key] = int(value) if key == "imgsz" else float(value)
        except (TypeError, ValueError):
            raise ApiError(422, f"{key} must be a number, got {str(value)[:40]!r}") from None
    try:
        return defaults.replace(**changes)
    except ConfigError as exc:
        raise ApiError(422, str(exc)) from None


def read_zones(field: Any, vocabulary: Vocabulary) -> ZonesFile | None:
    """A job's ``zones`` field (a file, or its text), parsed and checked as ``ovdet detect --zones`` checks a zones
    file: its YAML, the places its rules watch, and their classes against ``vocabulary``; call it off the event
    loop. ``None`` when the form has no zones."""
    if field is None or field == "":
        return None
    if isinstance(field, UploadFile):
        origin = field.filename or "zones"
        field.file.seek(0)
        data = field.file.read(MAX_ZONES_BYTES + 1)
    else:
        origin, data = "zones", str(field).encode("utf-8")
    if len(data) > MAX_ZONES_BYTES:
        raise ApiError(413, f"zones file {origin} is over {MAX_ZONES_BYTES >> 10} KiB, the most a zones file may hold")
    try:
        zones = parse_zones_yaml(decode_plain_text(data, origin, ZonesError, "send the file as UTF-8"), origin)
        check_rule_classes(zones.rules, vocabulary.names, origin)
        Analytics(zones)  # refuses a rule watching a zone or line the file does not have
    except ZonesError as exc:
        raise ApiError(422, str(exc)) from None
    return zones


def fit_zones(zones: ZonesFile, size: tuple[int, int]) -> None:
    """Refuse zones and lines that do not fit a video's ``(width, height)`` frames."""
    try:
        zones.geometry.fit(*size)
    except ZonesError as exc:
        raise ApiError(422, str(exc)) from None


def _json_body(raw: bytes) -> DetectJson:
    try:
        return DetectJson.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise ApiError(422, f"{where}: {first['msg']}: send JSON like {json.dumps({'image': '<base64>'})}") from None


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "image is not valid base64: encode the file's bytes, e.g. base64 -w0 photo.jpg") from None
