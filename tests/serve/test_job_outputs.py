"""A video job's outputs are ``ovdet detect``'s, byte for byte, with the same model, classes, settings and precision;
with a zones file, its alerts and summary too; a segmenting model's masks are in the JSONL and the MP4. A bad zones
file is one 4xx line and no job."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from ovdet.io.masks import mask_to_rings
from tests.hostile.harness import assert_clean_stderr, run_cli
from tests.media import small_frames, write_clip
from tests.serve.conftest import CONF, IMGSZ, MaskDetector, serve
from tests.serve.test_bad_input import one_line
from tests.serve.test_jobs import post_job, wait_for

CLASSES = "bottle,person"
BATCH = 4  # the server's frames per step (conftest's settings), and detect's --batch
# Alerts from the first frames (appears), a tracked stay (dwell) and a line: tracking, zones and rules all run.
ZONES = """\
zones:
  left: [[0, 0], [96, 0], [96, 111], [0, 111]]
lines:
  middle: [[96, 0], [96, 111]]
rules:
  bottle seen: {appears: bottle, after_absence: 0}
  bottle stays left: {dwell: bottle, zone: left, seconds: 0.1}
"""
WITH_ZONES = ("detections.jsonl", "annotated.mp4", "alerts.jsonl", "summary.json")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "ward.mp4", small_frames(12))


@pytest.fixture(scope="module")
def zones_file(clip: Path) -> Path:
    path = clip.parent / "zones.yaml"
    path.write_text(ZONES)
    return path


def job_outputs(live, clip: Path, folder: Path, zones: Path | None = None) -> dict[str, bytes]:
    """Run a job (with ``zones`` sent as a file) and download every output it lists."""
    folder.mkdir()
    with live.client() as client, clip.open("rb") as video:
        files = {"video": (clip.name, video, "video/mp4")}
        if zones is not None:
            files["zones"] = (zones.name, zones.read_bytes(), "application/yaml")
        created = client.post("/v1/jobs", files=files, data={"classes": CLASSES})
        assert created.status_code == 202, created.text
        done = wait_for(client, created.json()["id"], ("done", "failed"))
        assert done["state"] == "done", done
        return {name: client.get(url).content for name, url in done["outputs"].items()}


def detect_outputs(capfd, monkeypatch, model_path: Path, clip: Path, folder: Path, *flags: str) -> dict[str, bytes]:
    """``ovdet detect ward.mp4`` run in the clip's folder (so its records name the video as the job's do)."""
    monkeypatch.chdir(clip.parent)
    outputs = [folder / "detections.jsonl", folder / "annotated.mp4"]
    command = ["detect", clip.name, "--model", model_path, "--classes", CLASSES, "--imgsz", IMGSZ, "--conf", CONF,
               "--batch", BATCH, "--device", "cpu", "--quiet", *flags]  # fmt: skip
    for output in outputs:
        command += ["--output", output]
    assert_clean_stderr(run_cli(command, capfd))
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_job_with_zones_writes_what_detect_writes(
    server, clip: Path, zones_file: Path, model_path: Path, tmp_path: Path, capfd, monkeypatch
):
    job = job_outputs(server, clip, tmp_path / "job", zones_file)
    assert set(job) == set(WITH_ZONES)
    folder = tmp_path / "detect"
    zone_flags = ["--zones", zones_file, "--alerts", folder / "alerts.jsonl", "--summary", folder / "summary.json"]
    folder.mkdir()
    detected = detect_outputs(capfd, monkeypatch, model_path, clip, folder, *zone_flags)
    assert set(detected) == set(WITH_ZONES)
    for name in WITH_ZONES:
        assert job[name] == detected[name], f"{name} differs from ovdet detect's"
    assert b'"zones": {"left"' in job["detections.jsonl"] and job["alerts.jsonl"], "zones counted, alerts fired"


def test_a_job_at_reduced_precision_writes_what_detect_writes(
    model_path: Path, session_cache: Path, clip: Path, tmp_path: Path, capfd, monkeypatch
):
    from ovdet import OpenVocabDetector

    # OpenVINO, where BF16 is a different computation on a CPU (PyTorch's CPU path would run FP32 with a warning).
    detector = OpenVocabDetector(
        model_path, device="cpu", runtime="openvino", cache_dir=session_cache, imgsz=IMGSZ, conf=CONF,
        precision="bf16",
    )  # fmt: skip
    with serve(detector, tmp_path / "data", batch_wait_s=0.05) as live:
        with live.client() as client:
            assert client.get("/v1/health").json()["precision"] == "bf16"
        job = job_outputs(live, clip, tmp_path / "job")
    folder = tmp_path / "detect"
    folder.mkdir()
    detected = detect_outputs(
        capfd, monkeypatch, model_path, clip, folder, "--runtime", "openvino", "--precision", "bf16"
    )
    assert set(job) == set(detected) == {"detections.jsonl", "annotated.mp4"}
    for name in detected:
        assert job[name] == detected[name], f"{name} differs from ovdet detect --precision bf16's"


BAD_ZONES = [
    ("zones:\n  left: [[0, 0], [96, 0]\n", 422, ["zones.yaml:"]),
    ("zones:\n  left: [[0, 0], [96, 0], [96, 500]]\n", 422, ["zones.yaml:2", "left", "192x112"]),
    ("zones:\n  left: [[0, 0], [96, 0], [96, 100]]\nrules:\n  r: {appears: cat}\n", 422, ["zones.yaml:4", "cat"]),
    ("zones:\n  left: [[0, 0], [96, 0], [96, 100]]\nrules:\n  r: {dwell: bottle, zone: bay, seconds: 1}\n", 422,
     ["zones.yaml:4", "bay"]),
    (b"zones:\n  caf\xe9: [[0, 0], [96, 0], [96, 100]]\n", 422, ["zones.yaml:2", "UTF-8"]),
    ("# " + "x" * (128 << 10) + "\n", 413, ["zones.yaml", "128 KiB"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "status", "mentions"), BAD_ZONES)
def test_a_bad_zones_file_is_one_line_and_no_job(server, clip: Path, text, status: int, mentions: list[str]):
    jobs = server.app.state.server.jobs.folder
    before = sorted(jobs.iterdir())
    data = text.encode() if isinstance(text, str) else text
    with server.client() as client, clip.open("rb") as video:
        response = client.post(
            "/v1/jobs",
            files={"video": ("ward.mp4", video, "video/mp4"), "zones": ("zones.yaml", data, "application/yaml")},
            data={"classes": CLASSES},
        )
    one_line(response, status, *mentions)
    assert sorted(jobs.iterdir()) == before, "no job, no upload left"


def test_a_job_without_zones_has_no_alerts_or_summary(server, clip: Path):
    with server.client() as client:
        done = wait_for(client, post_job(client, clip, classes=CLASSES).json()["id"], ("done", "failed"))
        assert set(done["outputs"]) == {"detections.jsonl", "annotated.mp4"}
        response = client.get(f"/v1/jobs/{done['id']}/alerts.jsonl")
    one_line(response, 404, "no alerts.jsonl", "zones")


def test_a_segmenting_models_masks_are_in_the_jsonl_and_the_mp4(clip: Path, tmp_path: Path):
    with serve(MaskDetector(), tmp_path / "data", warm_up=False) as live:
        job = job_outputs(live, clip, tmp_path / "job")
    expected = mask_to_rings(MaskDetector.bottle(112, 192).mask[0])
    records = [json.loads(line) for line in job["detections.jsonl"].splitlines()]
    assert records and all(record["detections"][0]["polygon"] == expected for record in records)
    (tmp_path / "annotated.mp4").write_bytes(job["annotated.mp4"])
    drawn, source = (first_frame(path).astype(int) for path in (tmp_path / "annotated.mp4", clip))
    change = np.abs(drawn - source)
    assert change[35:45, 35:65].mean() > 3 * change[55:65, 75:85].mean() + 10, "the mask tinted, its hole not"


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")
