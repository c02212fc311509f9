"""Video jobs: upload, progress, the JSONL and annotated MP4 when done; unfinished jobs read "interrupted" after
a restart, never vanish."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.hostile.harness import assert_no_temporaries, assert_valid_output, decoded_frames
from tests.media import small_frames, write_clip
from tests.serve.conftest import BlockingDetector, serve

FRAMES = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "ward.mp4", small_frames(FRAMES))


def post_job(client, clip: Path, **fields):
    with clip.open("rb") as video:
        return client.post("/v1/jobs", files={"video": ("ward.mp4", video, "video/mp4")}, data=fields)


def wait_for(client, job_id: str, states: tuple[str, ...]) -> dict:
    """Poll the job until it reaches one of ``states`` (the test's own timeout ends a hang)."""
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in states:
        time.sleep(0.05)
    return job


def test_a_job_runs_to_a_jsonl_and_an_annotated_mp4(server, clip: Path, tmp_path: Path):
    with server.client() as client:
        created = post_job(client, clip, classes="bottle,person")
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["state"] == "queued" and job["video"] == "ward.mp4"
        done = wait_for(client, job["id"], ("done", "failed"))
        assert done["state"] == "done", done
        assert (done["frames_done"], done["frames_total"]) == (FRAMES, FRAMES)
        assert set(done["outputs"]) == {"detections.jsonl", "annotated.mp4"}
        for name, url in done["outputs"].items():
            response = client.get(url)
            assert response.status_code == 200
            (tmp_path / name).write_bytes(response.content)
    for name in ("detections.jsonl", "annotated.mp4"):
        assert_valid_output(tmp_path / name)
    records = [json.loads(line) for line in (tmp_path / "detections.jsonl").read_text().splitlines()]
    assert [record["frame"] for record in records] == list(range(FRAMES))
    assert any(record["detections"] for record in records), "conf 0.01 finds boxes on the random-init model"
    assert decoded_frames(tmp_path / "annotated.mp4") == FRAMES


def test_unknown_jobs_and_outputs_are_404(server):
    with server.client() as client:
        for path in ("/v1/jobs/0123", "/v1/jobs/%2E%2E", f"/v1/jobs/{'0' * 32}"):
            response = client.get(path)
            assert response.status_code == 404, (path, response.text)
            assert "no job" in response.json()["detail"]
        assert client.get("/v1/jobs/..%2F..%2Fvocabularies").status_code == 404
        assert client.get(f"/v1/jobs/{'0' * 32}/job.json").status_code == 404


def test_an_unfinished_job_reads_interrupted_after_a_restart(tmp_path: Path, clip: Path):
    data = tmp_path / "data"
    detector = BlockingDetector()
    with serve(detector, data, warm_up=False) as first:
        with first.client() as client:
            job_id = post_job(client, clip, classes="bottle").json()["id"]
            running = wait_for(client, job_id, ("running",))
            assert running["frames_done"] == 0
            assert client.get(f"/v1/jobs/{job_id}/detections.jsonl").status_code == 409
        assert detector.busy.wait(30)
        # The model stays busy until the stopping server has given up on the job; then it may finish its batch.
        releaser = threading.Thread(target=release_when, args=(detector, data / "jobs" / job_id / "job.json"))
        releaser.start()
    releaser.join()
    with serve(BlockingDetector(), data, warm_up=False) as second, second.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "interrupted" and "submit it again" in job["error"]
    assert_no_temporaries(data)


def release_when(detector: BlockingDetector, state_file: Path, state: str = "interrupted") -> None:
    while json.loads(state_file.read_text())["state"] != state:
        time.sleep(0.02)
    detector.release.set()


def test_a_job_left_running_by_a_crash_reads_interrupted(tmp_path: Path):
    job_id = "f" * 32
    folder = tmp_path / "data" / "jobs" / job_id
    folder.mkdir(parents=True)
    state = {"id": job_id, "state": "running", "video": "ward.mp4", "frames_done": 3, "frames_total": 6}
    (folder / "job.json").write_text(json.dumps(state))
    half_received = folder.parent / ".upload-0123.part"
    half_received.write_bytes(bytes(100))
    with serve(BlockingDetector(), tmp_path / "data", warm_up=False) as live, live.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["frames_done"]) == ("interrupted", 3)
    assert not half_received.exists()
