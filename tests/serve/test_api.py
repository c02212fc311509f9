"""The API through a real uvicorn on loopback: detect, vocabularies, health, metrics, docs, concurrency."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.harness import assert_clean_stderr, run_cli
from tests.serve.conftest import CONF, IMGSZ, metric

CLASSES = "bottle,person,red backpack"
VOCABULARY = "classes:\n  bottle:\n  person: [person, nurse]\ntemplates: ['a photo of a {}']\n"


def detect_multipart(client, image: bytes, name: str = "frame.png", **fields):
    return client.post("/v1/detect", files={"image": (name, image, "image/png")}, data={"classes": CLASSES, **fields})


def assert_same_detections(served: list[dict], reference: list[dict]) -> None:
    """Same boxes, classes and scores; a batch may differ from a single forward pass in the last float bits."""
    assert [d["class_name"] for d in served] == [d["class_name"] for d in reference]
    if served:
        np.testing.assert_allclose([d["xyxy"] for d in served], [d["xyxy"] for d in reference], atol=0.05)
        np.testing.assert_allclose([d["confidence"] for d in served], [d["confidence"] for d in reference], atol=1e-4)


@pytest.fixture(scope="module")
def reference(images, model_path: Path, tmp_path_factory, bottle_frames) -> list[dict]:
    """``ovdet detect`` on the same image files, as JSONL records."""
    import cv2

    folder = tmp_path_factory.mktemp("reference")
    for position, frame in enumerate(bottle_frames):
        cv2.imwrite(str(folder / f"frame{position}.png"), frame)
    output = folder.parent / f"{folder.name}.jsonl"
    from ovdet.cli import main  # called directly: run_cli needs capfd, which a module-scoped fixture cannot use

    settings = ["--imgsz", str(IMGSZ), "--conf", str(CONF), "--runtime", "torch", "--device", "cpu"]
    code = main(["detect", str(folder), "--classes", CLASSES, "--model", str(model_path), *settings,
                 "--output", str(output), "--quiet"])  # fmt: skip
    assert code == 0
    return [json.loads(line) for line in output.read_text().splitlines()]


def test_detect_multipart_gives_a_jsonl_record_equal_to_ovdet_detect(server, images, reference):
    with server.client() as client:
        response = detect_multipart(client, images[0], "frame0.png")
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["source"] == "frame0.png" and record["frame"] == 0 and record["timestamp"] is None
    assert (record["width"], record["height"]) == (reference[0]["width"], reference[0]["height"])
    assert record["detections"], "the random-init model at conf 0.01 finds boxes"
    assert_same_detections(record["detections"], reference[0]["detections"])


def test_detect_json_base64_equals_multipart(server, images):
    with server.client() as client:
        multipart = detect_multipart(client, images[1]).json()
        payload = {"image": base64.b64encode(images[1]).decode(), "classes": CLASSES, "name": "frame.png"}
        as_json = client.post("/v1/detect", json=payload)
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["detections"] == multipart["detections"]


def test_settings_of_a_request_apply(server, images):
    with server.client() as client:
        low = detect_multipart(client, images[0]).json()["detections"]
        high = detect_multipart(client, images[0], conf="0.5").json()["detections"]
    assert [d for d in low if d["confidence"] > 0.5] == high
    assert len(high) < len(low)


def test_vocabularies_crud_and_detect_by_name(server, images):
    with server.client() as client:
        stored = client.put("/v1/vocabularies/ward", content=VOCABULARY, headers={"Content-Type": "application/yaml"})
        assert stored.status_code == 201, stored.text
        assert stored.json()["classes"] == ["bottle", "person"]
        assert "ward" in client.get("/v1/vocabularies").json()["vocabularies"]
        fetched = client.get("/v1/vocabularies/ward")
        assert fetched.text == VOCABULARY and fetched.headers["content-type"].startswith("application/yaml")
        by_name = client.post(
            "/v1/detect", files={"image": ("f.png", images[0], "image/png")}, data={"vocabulary": "ward"}
        )
        assert by_name.status_code == 200, by_name.text
        assert {d["class_name"] for d in by_name.json()["detections"]} <= {"bottle", "person"}
        assert client.delete("/v1/vocabularies/ward").status_code == 204
        assert client.get("/v1/vocabularies/ward").status_code == 404
        assert "ward" not in client.get("/v1/vocabularies").json()["vocabularies"]


def test_health_docs_and_page(server):
    with server.client() as client:
        health = client.get("/v1/health").json()
        assert health["status"] == "ok" and health["model"] == "yolov8s-worldv2.pt"
        assert (health["precision"], health["task"]) == ("fp32", "detect")
        schema = client.get("/openapi.json").json()
        assert {"/v1/detect", "/v1/jobs", "/v1/vocabularies/{name}", "/metrics"} <= set(schema["paths"])
        assert "multipart/form-data" in schema["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
        assert client.get("/docs").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text and "/static/style.css" in page.text
        files = [page.text, *(client.get(f"/static/{name}").text for name in ("app.js", "style.css"))]
    assert all("://" not in text and "//cdn" not in text for text in files), "the page loads nothing from elsewhere"


def test_concurrent_clients_are_batched_and_answered_like_ovdet_detect(server, images, reference):
    with server.client() as client:
        before = client.get("/metrics").text

    def one_client(number: int) -> list[tuple[int, dict]]:
        with server.client() as client:
            answers = []
            for request in range(10):
                which = (number + request) % len(images)
                response = detect_multipart(client, images[which])
                assert response.status_code == 200, response.text
                answers.append((which, response.json()))
            return answers

    with ThreadPoolExecutor(16) as pool:
        answered = [answer for answers in pool.map(one_client, range(16)) for answer in answers]
    assert len(answered) == 160
    for which, record in answered:
        assert_same_detections(record["detections"], reference[which]["detections"])
    with server.client() as client:
        after = client.get("/metrics").text
    route = {"route": "/v1/detect", "status": "200"}
    assert metric(after, "ovdet_requests_total", **route) - metric(before, "ovdet_requests_total", **route) == 160
    batches = metric(after, "ovdet_batch_size_count") - metric(before, "ovdet_batch_size_count")
    images_run = metric(after, "ovdet_batch_size_sum") - metric(before, "ovdet_batch_size_sum")
    assert images_run == 160
    assert batches < 160, "some forward passes carried more than one request"
    single = metric(after, "ovdet_batch_size_bucket", le="1.0") - metric(before, "ovdet_batch_size_bucket", le="1.0")
    assert single < batches, "a batch larger than one shows in the histogram"


def test_metrics_are_prometheus_text(server):
    with server.client() as client:
        client.get("/v1/health")
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert metric(response.text, "ovdet_requests_total", route="/v1/health") >= 1
    assert "# TYPE ovdet_request_seconds histogram" in response.text


def test_cli_registers_serve(capfd):
    result = run_cli(["serve", "--help"], capfd)
    assert_clean_stderr(result)
    assert "--token" in result.out and "--max-batch" in result.out
