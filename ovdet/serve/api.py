"""The ``/v1`` routes: detect, vocabularies, video jobs and health. Every route needs the token, if one is set."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..core import __version__
from ..core.errors import OvdetError, VocabularyError
from ..io.images import ImageTooLarge, decode_image_bytes
from ..io.sinks import frame_record
from ..io.sources import VIDEO_SUFFIXES, Frame
from .admission import OverBudget, check_video_size, image_cost
from .batching import QueueFull
from .encoding import EncoderBusy, TooManyClasses
from .inputs import ApiError, DetectJson, fit_zones, read_detect_request, read_options, read_zones
from .jobs import JOB_OUTPUTS, UPLOAD_PREFIX, JobRequest, UnknownJob
from .security import YAML_TYPES, media_type, token_matches
from .vocabularies import InvalidName, UnknownVocabulary

__all__ = ["router"]


def require_token(request: Request) -> None:
    token = request.app.state.server.token
    if token and not token_matches(request.headers.get("authorization"), token):
        raise ApiError(
            401, "missing or wrong token: send the header Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"}
        )


router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


def _form_body(file_field: str, example_classes: str, **more: dict) -> dict:
    """The OpenAPI request body of a multipart form: one file, the classes or a stored vocabulary, the settings."""
    properties = {
        file_field: {"type": "string", "format": "binary"},
        "classes": {"type": "string", "example": example_classes},
        "vocabulary": {"type": "string"},
        **more,
        "conf": {"type": "number"},
        "iou": {"type": "number"},
        "imgsz": {"type": "integer"},
    }
    form = {"schema": {"type": "object", "required": [file_field], "properties": properties}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": form}}}


_DETECT_BODY = _form_body("image", "infusion pump,IV pole")
_DETECT_BODY["requestBody"]["content"]["application/json"] = {"schema": DetectJson.model_json_schema()}


@router.post("/detect", openapi_extra=_DETECT_BODY, summary="Detect classes named in words in one image")
async def detect(request: Request) -> dict[str, Any]:
    """One record of the JSONL schema: source, frame 0, timestamp null, width, height and the detections. With a
    segmenting model (``ovdet serve --task segment``, a -seg checkpoint) each detection also carries ``polygon``:
    its mask's boundary rings, each a flat ``[x1, y1, x2, y2, …]`` list of pixel centres, outermost first; filling
    the rings with the even-odd rule (or XOR-ing their fills) gives the mask back, holes included."""
    server = request.app.state.server
    require_ready(server)
    deadline = time.monotonic() + server.timeout_s
    data, name, options = await read_detect_request(
        request, server.vocabularies, server.settings, server.encoder.max_classes
    )
    classes = await _answer(_prepare(server, options.vocabulary), server, deadline, shared=True)
    with _admitted(server, data, name):
        image = await run_in_threadpool(_decode, data, name, server.limits.pixels)
        try:
            future = server.batcher.submit([image], classes, options.settings)
        except QueueFull:
            raise ApiError(503, "the server is busy (its queue is full): retry shortly", RETRY) from None
        (detections,) = await _answer(future, server, deadline, shared=False)
    return frame_record(Frame(image, 0, None, name), detections)


RETRY = {"Retry-After": "1"}


def require_ready(server) -> None:
    if not server.ready.is_set():
        raise ApiError(503, "the model is still loading: retry in a few seconds", {"Retry-After": "5"})


def _prepare(server, vocabulary) -> Future:
    """The request's classes, encoded by the server's encoder (never on the batch loop)."""
    try:
        return server.encoder.prepare(vocabulary)
    except TooManyClasses as exc:
        raise ApiError(413, str(exc)) from None
    except EncoderBusy as exc:
        raise ApiError(503, str(exc), RETRY) from None


async def _answer(future: Future, server, deadline: float, shared: bool):
    """A future's result by the deadline. A request's own future is cancelled when it is late (never inferred
    later); a ``shared`` one (an encoding other requests wait for too) is left running."""
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), deadline - time.monotonic())
    except asyncio.TimeoutError:
        if not shared:
            future.cancel()
        raise ApiError(504, f"no result within {server.timeout_s:g} s: retry, or send fewer requests") from None
    except OvdetError as exc:
        raise ApiError(422, str(exc)) from None


@contextmanager
def _admitted(server, data: bytes, name: str) -> Iterator[None]:
    """Hold the memory the image takes decoded, from before decoding until the answer; refused if it does not fit."""
    try:
        with server.budget.hold(image_cost(data, name, server.limits.pixels)):
            yield
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except OverBudget as exc:
        raise ApiError(503, str(exc), RETRY) from None


def _decode(data: bytes, name: str, pixels: int):
    try:
        return decode_image_bytes(data, name, pixels)
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except OvdetError as exc:
        raise ApiError(415, str(exc)) from None


@router.get("/vocabularies", summary="Names of the stored vocabularies")
def list_vocabularies(request: Request) -> dict[str, list[str]]:
    return {"vocabularies": request.app.state.server.vocabularies.names()}


@router.put("/vocabularies/{name:path}", status_code=201, summary="Store a vocabulary (YAML body)")
async def put_vocabulary(name: str, request: Request) -> dict[str, Any]:
    kind = media_type(request.headers.get("content-type"))
    if kind not in YAML_TYPES:
        raise ApiError(415, f"content type {kind or '(none)'} is not YAML: send Content-Type: application/yaml")
    body = await request.body()
    try:  # parsing a large body takes a while: off the event loop, so other clients are answered meanwhile
        vocabulary = await run_in_threadpool(request.app.state.server.vocabularies.put, name, body)
    except TooManyClasses as exc:
        raise ApiError(413, str(exc)) from None
    except (InvalidName, VocabularyError) as exc:
        raise ApiError(422, str(exc)) from None
    return {"name": name, "classes": list(vocabulary.names)}


@router.get("/vocabularies/{name:path}", response_class=PlainTextResponse, summary="A stored vocabulary's YAML")
def get_vocabulary(name: str, request: Request) -> Response:
    text = _vocabulary_call(request.app.state.server.vocabularies.text, name)
    return PlainTextResponse(text, media_type="application/yaml")


@router.delete("/vocabularies/{name:path}", status_code=204, summary="Delete a stored vocabulary")
def delete_vocabulary(name: str, request: Request) -> Response:
    _vocabulary_call(request.app.state.server.vocabularies.delete, name)
    return Response(status_code=204)


def _vocabulary_call(call, name: str):
    try:
        return call(name)
    except InvalidName as exc:
        raise ApiError(422, str(exc)) from None
    except UnknownVocabulary as exc:
        raise ApiError(404, str(exc)) from None


_JOB_BODY = _form_body(
    "video",
    "person,bottle",
    zones={
        "type": "string",
        "format": "binary",
        "description": "a zones file (YAML, as ovdet detect --zones): adds zones to the JSONL and MP4, summary.json, "
        "and alerts.jsonl when it has rules",
    },
)


@router.post(
    "/jobs", status_code=202, openapi_extra=_JOB_BODY,
    summary="Start a video job (multipart: video, classes or vocabulary, optional zones file)",
)  # fmt: skip
async def create_job(request: Request) -> dict[str, Any]:
    """Everything is checked before the job is queued: the classes, the zones file, and the video's frame size
    (against the server's limit and the zones' geometry); a refused job leaves nothing behind."""
    server = request.app.state.server
    require_ready(server)
    if media_type(request.headers.get("content-type")) != "multipart/form-data":
        raise ApiError(415, "send the video as multipart/form-data: -F video=@clip.mp4 -F classes=person")
    form = await request.form()
    upload = form.get("video")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "the form has no file field 'video': send it as -F video=@clip.mp4")
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ApiError(415, f"{upload.filename!r} is not a video file: send one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    options = await run_in_threadpool(
        read_options, dict(form), server.vocabularies, server.settings, server.encoder.max_classes
    )
    try:
        server.encoder.check(options.vocabulary)
    except TooManyClasses as exc:
        raise ApiError(413, str(exc)) from None
    zones = await run_in_threadpool(read_zones, form.get("zones"), options.vocabulary)
    received = await run_in_threadpool(_keep_upload, upload, server.jobs.folder)
    try:  # the stream's declared frame size, before any frame is decoded
        size = await run_in_threadpool(check_video_size, received, upload.filename, server.limits.video_pixels)
        if zones is not None:
            fit_zones(zones, size)
    except OvdetError as exc:
        received.unlink(missing_ok=True)
        raise ApiError(413 if isinstance(exc, ImageTooLarge) else 415, str(exc)) from None
    except ApiError:
        received.unlink(missing_ok=True)
        raise
    job_request = JobRequest(options.vocabulary, options.settings, zones)
    job = await run_in_threadpool(server.jobs.create, received, upload.filename, job_request)
    return server.jobs.describe(job)


def _keep_upload(upload: UploadFile, folder: Path) -> Path:
    """Copy the upload next to the jobs, so creating the job is a rename; nothing is left if the copy fails."""
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=UPLOAD_PREFIX, suffix=".part", delete=False)
    try:
        with handle:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, handle)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name)


@router.get("/jobs/{job_id}", summary="A job's state and progress; its outputs once done")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    jobs = request.app.state.server.jobs
    try:
        return jobs.describe(jobs.get(job_id))
    except UnknownJob as exc:
        raise ApiError(404, str(exc)) from None


@router.get(
    "/jobs/{job_id}/{output}",
    summary="A finished job's output: detections.jsonl, annotated.mp4, alerts.jsonl, summary.json",
)
def get_job_output(job_id: str, output: str, request: Request) -> FileResponse:
    jobs = request.app.state.server.jobs
    if output not in JOB_OUTPUTS:
        raise ApiError(404, f"a job has no output {output[:40]!r}: ask for {' or '.join(JOB_OUTPUTS)}")
    try:
        path = jobs.output(job_id, output)
    except UnknownJob as exc:
        raise ApiError(404, str(exc)) from None
    if path is None:
        raise ApiError(409, f"job {job_id} is not done yet: poll GET /v1/jobs/{job_id} until its state is done")
    if not path.is_file():
        raise ApiError(404, f"job {job_id} has no {output}: it was sent no zones file (or one without rules)")
    return FileResponse(path, media_type=JOB_OUTPUTS[output], filename=output)


@router.get("/health", summary="Whether the server is ready (ok) or loading its model (loading, 503), and what it runs")
def health(request: Request) -> JSONResponse:
    server = request.app.state.server
    ready = server.ready.is_set()
    body = {
        "status": "ok" if ready else "loading",
        "version": __version__,
        "model": server.model_name,
        "precision": server.precision,
        "task": server.task,
        "waiting": server.batcher.waiting,
    }
    return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "5"})
