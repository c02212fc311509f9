"""Video jobs: an uploaded video runs through the batcher into the JSONL and annotated MP4 sinks, one job at a time;
with a zones file, also into the alerts (when it has rules) and the summary, as ``ovdet detect --zones`` writes them.

Each job is a folder ``<data>/jobs/<id>/`` holding the upload, ``job.json`` (its state, written atomically) and
its outputs. States: ``queued`` → ``running`` → ``done`` or ``failed``; a job that was queued or running when
the server stopped reads ``interrupted`` from then on — it never vanishes.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..analytics.stream import Analytics
from ..analytics.zones_yaml import ZonesFile
from ..core.config import InferenceSettings
from ..core.errors import OvdetError
from ..core.files import write_json_atomically
from ..io.images import ImageTooLarge
from ..io.pipeline import detect_stream
from ..io.sources import FrameSource, open_source
from ..prompts.vocabulary import Vocabulary
from ..run import Frames, OutputSpec, Run, StopRequest
from ..run.outputs import analytics_outputs
from .batching import Batcher
from .encoding import ClassEncoder, Prepared

__all__ = ["JOB_OUTPUTS", "UPLOAD_PREFIX", "Job", "JobRequest", "JobRunner", "UnknownJob"]

log = logging.getLogger(__name__)

JOB_OUTPUTS = {
    "detections.jsonl": "application/x-ndjson",
    "annotated.mp4": "video/mp4",
    "alerts.jsonl": "application/x-ndjson",
    "summary.json": "application/json",
}
UNFINISHED = ("queued", "running")
UPLOAD_PREFIX = ".upload-"  # a video being copied in, before it becomes a job
_ID = re.compile(r"[0-9a-f]{32}")
_PROGRESS_EVERY_S = 0.5
_INTERRUPTED = "the server stopped before the job finished: submit it again"


class UnknownJob(OvdetError, LookupError):
    """No job of that id exists."""


@dataclass
class Job:
    """What ``GET /v1/jobs/{id}`` reports."""

    id: str
    state: str
    video: str
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    created: float = 0.0
    finished: float | None = None


@dataclass(frozen=True)
class JobRequest:
    """What a job runs with besides its video: the classes, the settings and, optionally, a checked zones file."""

    vocabulary: Vocabulary
    settings: InferenceSettings
    zones: ZonesFile | None = None


class JobRunner:
    """Stores jobs on disk and runs them in a background thread through the shared batcher.

    Args:
        folder: ``<data>/jobs``.
        batcher: The server's batcher (so jobs and image requests share the one model).
        encoder: The server's class encoder (a job's classes are encoded off the batch loop too).
        settings: The server's settings; a job's frames go to the batcher ``settings.batch`` at a time.
        max_pixels: Most pixels per frame; checked before decoding when the job is created, and per frame.
    """

    def __init__(
        self, folder: Path, batcher: Batcher, encoder: ClassEncoder, settings: InferenceSettings, max_pixels: int
    ) -> None:
        self.folder = folder
        self.batcher = batcher
        self.encoder = encoder
        self.settings = settings
        self.max_pixels = max_pixels
        self._queue: queue.Queue[tuple[str, JobRequest] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovdet-jobs", daemon=True)
        folder.mkdir(parents=True, exist_ok=True)
        for upload in folder.glob(f"{UPLOAD_PREFIX}*.part"):  # left by a server that died while receiving it
            upload.unlink(missing_ok=True)
        self._mark_interrupted()

    def start(self) -> JobRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the job in flight (its outputs are closed valid and it reads ``interrupted``)."""
        self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()

    def create(self, upload: Path, original_name: str, request: JobRequest) -> Job:
        """Move a received upload into a new job's folder and queue the job."""
        job_id = uuid.uuid4().hex
        folder = self.folder / job_id
        folder.mkdir()
        video = folder / f"input{Path(original_name).suffix.lower()}"
        shutil.move(upload, video)
        job = Job(job_id, "queued", original_name, created=time.time())
        self._save(job)
        settings = request.settings.replace(batch=self.settings.batch)
        self._queue.put((job_id, JobRequest(request.vocabulary, settings, request.zones)))
        return job

    def get(self, job_id: str) -> Job:
        path = self._folder(job_id) / "job.json"
        return Job(**json.loads(path.read_text()))

    def output(self, job_id: str, name: str) -> Path | None:
        """The path of a finished job's output, or ``None`` while the job is not done."""
        job = self.get(job_id)
        return self._folder(job_id) / name if job.state == "done" else None

    def _folder(self, job_id: str) -> Path:
        folder = self.folder / job_id
        if not _ID.fullmatch(job_id) or not (folder / "job.json").is_file():
            raise UnknownJob(f"no job {job_id[:40]!r}: use the id POST /v1/jobs returned")
        return folder

    def _save(self, job: Job) -> None:
        write_json_atomically([(self.folder / job.id / "job.json", asdict(job))])

    def _mark_interrupted(self) -> None:
        for state_file in self.folder.glob("*/job.json"):
            job = self.get(state_file.parent.name)
            if job.state in UNFINISHED:
                job.state, job.error = "interrupted", _INTERRUPTED
                self._save(job)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None and not self._stop.is_set():
            job_id, request = item
            job = self.get(job_id)
            try:
                self._process(job, request)
            except OvdetError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:
                log.exception("job %s failed", job_id)
                job.state, job.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
            job.finished = time.time()
            self._save(job)
        self._mark_interrupted()

    def _process(self, job: Job, request: JobRequest) -> None:
        """The job's frames through the batcher into the run, with the outputs ``ovdet detect`` would write."""
        folder = self.folder / job.id
        classes = self.encoder.prepare(request.vocabulary).result()
        source = open_source(str(next(folder.glob("input*"))))
        source.name = job.video  # outputs name the video as its sender did, as `ovdet detect ward.mp4` names it
        job.state, job.frames_total = "running", source.total
        self._save(job)
        analytics = Analytics(request.zones) if request.zones is not None else None
        outputs = [OutputSpec("jsonl", folder / "detections.jsonl"), OutputSpec("video", folder / "annotated.mp4")]
        outputs += analytics_outputs(analytics, alerts=folder / "alerts.jsonl", summary=folder / "summary.json")
        run = Run(source, outputs, analytics=analytics, stop=StopRequest(event=self._stop))
        run.execute(self._frames(job, source, classes, request.settings), request.vocabulary)
        job.state = "interrupted" if run.stopped else "done"
        if job.state == "interrupted":
            job.error = _INTERRUPTED

    def _frames(self, job: Job, source: FrameSource, classes: Prepared, settings: InferenceSettings) -> Frames:
        """The run's stream: ``settings.batch`` frames at a time through the shared batcher; the job's progress is
        saved as frames come."""

        def frames(stop: threading.Event, track: bool):
            stream = detect_stream(
                lambda images: self._infer(images, classes, settings, stop), source, batch=settings.batch,
                track=track, track_threshold=settings.conf, stop=stop,
            )  # fmt: skip
            saved = time.monotonic()
            for item in stream:
                yield item
                job.frames_done += 1
                if time.monotonic() - saved > _PROGRESS_EVERY_S:
                    self._save(job)
                    saved = time.monotonic()

        return frames

    def _infer(self, images, classes: Prepared, settings: InferenceSettings, stop: threading.Event) -> list:
        """A batch's detections through the shared batcher; none once the server stops (the stream then ends).

        A frame over the pixel limit (a stream that changed size mid-way) fails the job."""
        for image in images:
            height, width = image.shape[:2]
            if width * height > self.max_pixels:
                raise ImageTooLarge(
                    f"a frame is {width}×{height} pixels: more than {self.max_pixels:,}, this server's limit per "
                    f"video frame"
                )
        return self.batcher.submit_waiting(images, classes, settings, stop) or []

    def describe(self, job: Job) -> dict[str, Any]:
        """The API's view of a job: its state, progress and, when done, where its outputs are."""
        view = asdict(job)
        if job.state == "done":
            folder = self.folder / job.id
            view["outputs"] = {name: f"/v1/jobs/{job.id}/{name}" for name in JOB_OUTPUTS if (folder / name).is_file()}
        return view
