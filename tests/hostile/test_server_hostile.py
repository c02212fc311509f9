"""The server under hostile use: what a request may cost is bounded before it is admitted (classes, pixels from
headers, a memory budget), new classes never hold the batch for others, vocabulary writers are serialised and
large ones parse off the event loop, readiness is reported, /docs works offline. Loopback only; every loop is
bounded in count and time.

The server here allows 16 classes per request, 2000×2000 pixels per image, 640×480 per video frame and 20 MB of
decoded images waiting.
"""

from __future__ import annotations

import base64
import re
import struct
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovdet.serve.security import Limits
from ovdet.serve.vocabularies import UnknownVocabulary, VocabularyStore
from tests.hostile.harness import assert_no_temporaries
from tests.media import png_header, small_frames, write_clip
from tests.serve.conftest import CONF, IMGSZ, TOKEN, BlockingDetector, encode, serve
from tests.serve.test_bad_input import one_line

MB = 1 << 20
MAX_CLASSES = 16
PIXELS = 2000 * 2000
VIDEO_PIXELS = 640 * 480
YAML = {"Content-Type": "application/yaml"}
HYPOTHESIS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def hostile_detector(model_path: Path, session_cache: Path):
    from ovdet import OpenVocabDetector

    return OpenVocabDetector(model_path, device="cpu", cache_dir=session_cache, imgsz=IMGSZ, conf=CONF)


@pytest.fixture(scope="module")
def hostile(hostile_detector, tmp_path_factory: pytest.TempPathFactory):
    limits = Limits(pixels=PIXELS, video_pixels=VIDEO_PIXELS, queued_bytes=20 * MB)
    data = tmp_path_factory.mktemp("hostile-data")
    with serve(hostile_detector, data, max_classes=MAX_CLASSES, limits=limits, timeout_s=120) as live:
        yield live


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(small_frames(1, size=(64, 48))[0])


def detect(client: httpx.Client, image: bytes, transport: str = "multipart", name: str = "f.png", **fields):
    if transport == "json":
        body = {"image": base64.b64encode(image).decode(), "name": name, **fields}
        return client.post("/v1/detect", json=body)
    form = {key: str(value) for key, value in fields.items()}
    return client.post("/v1/detect", files={"image": (name, image, "application/octet-stream")}, data=form)


# --- classes per request ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [MAX_CLASSES + 1, 1000, 10_000])
@pytest.mark.parametrize("transport", ["multipart", "json-list", "json-string"])
def test_too_many_classes_are_413_and_never_encoded(hostile, hostile_detector, photo, monkeypatch, transport, count):
    encoded: list[str] = []
    encoder = hostile_detector.text_encoder
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda prompts: encoded.extend(prompts) or original(prompts))
    names = [f"thing number {index}" for index in range(count)]
    classes = names if transport == "json-list" else ",".join(names)
    with hostile.client() as client:
        response = detect(client, photo, "json" if transport.startswith("json") else "multipart", classes=classes)
    one_line(response, 413, f"{count} classes", f"limit of {MAX_CLASSES}", "--max-classes")
    assert encoded == []


@HYPOTHESIS
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=MAX_CLASSES + 4))
def test_generated_class_lists_are_answered_or_refused_in_one_line(hostile, photo, names: list[str]):
    with hostile.client() as client:
        response = detect(client, photo, "json", classes=names)
    if len(names) > MAX_CLASSES:
        one_line(response, 413, "--max-classes")
    elif response.status_code != 200:
        one_line(response, 422)


def test_encoding_new_classes_never_holds_the_batch_for_others(hostile, hostile_detector, photo, monkeypatch):
    """While one request's new classes are being encoded (held here), requests for known classes are answered."""
    with hostile.client() as client:
        assert detect(client, photo, classes="bottle").status_code == 200
    encoder = hostile_detector.text_encoder
    original, entered, gate = encoder.encode, threading.Event(), threading.Event()

    def held(prompts):
        if any("slow walrus" in prompt for prompt in prompts):
            entered.set()
            gate.wait(120)
        return original(prompts)

    monkeypatch.setattr(encoder, "encode", held)
    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(detect(hostile.client(), photo, classes="slow walrus")))
    slow.start()
    try:
        assert entered.wait(60), "the new classes reached the encoder"
        with hostile.client(timeout=20) as client:
            others = [detect(client, photo, classes="bottle") for _ in range(3)]
        assert slow.is_alive(), "the slow request was still being encoded while the others were answered"
    finally:
        gate.set()
        slow.join(120)
    assert [response.status_code for response in others] == [200, 200, 200]
    assert answers[0].status_code == 200, answers[0].text


# --- pixels, from headers --------------------------------------------------------------------------------------------


def gif_header(width: int, height: int, frame: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF whose logical screen is ``width``×``height`` and whose one frame is ``frame`` (35 bytes for 1×1)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    return screen + b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x44\x01\x00\x3b"


def bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + info + bytes(16)


def jpeg_header(width: int, height: int) -> bytes:
    tables = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    scan = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + tables + frame + scan + bytes(10) + b"\xff\xd9"


HEADERS = {"png": png_header, "gif": gif_header, "bmp": bmp_header, "jpeg": jpeg_header}


@pytest.mark.parametrize("transport", ["multipart", "json"])
@pytest.mark.parametrize("size", [(2001, 2000), (9000, 9000), (12000, 12000), (65535, 65535)])
@pytest.mark.parametrize("kind", sorted(HEADERS))
def test_an_image_header_over_the_pixel_limit_is_413(hostile, kind: str, size: tuple[int, int], transport: str):
    with hostile.client() as client:
        response = detect(client, HEADERS[kind](*size), transport, name=f"bomb.{kind}", classes="a")
    one_line(response, 413, "bomb", "pixels")


@pytest.mark.parametrize("screen", [(12000, 12000), (641, 480), (65535, 65535)])
def test_a_gif_job_whose_logical_screen_is_over_the_frame_limit_is_413(hostile, screen: tuple[int, int]):
    jobs = hostile.app.state.server.jobs.folder
    before = sorted(jobs.iterdir())
    with hostile.client() as client:
        response = client.post(
            "/v1/jobs", files={"video": ("bomb.gif", gif_header(*screen), "image/gif")}, data={"classes": "a"}
        )
    one_line(response, 413, f"{screen[0]}×{screen[1]}", "--max-video-pixels")
    assert sorted(jobs.iterdir()) == before, "no job, no upload left"


def test_a_video_job_over_the_frame_limit_is_413(hostile, tmp_path: Path):
    clip = write_clip(tmp_path / "large.mp4", small_frames(3, size=(800, 608)))
    with hostile.client() as client, clip.open("rb") as video:
        response = client.post("/v1/jobs", files={"video": ("large.mp4", video, "video/mp4")}, data={"classes": "a"})
    one_line(response, 413, "800×608")


@pytest.mark.parametrize("frame", [(12000, 12000), (1000, 1000), (65535, 5)])
def test_a_gif_frame_over_the_limit_is_413_whatever_its_screen(hostile, frame: tuple[int, int]):
    with hostile.client() as client:
        response = client.post(
            "/v1/jobs", files={"video": ("f.gif", gif_header(64, 48, frame), "image/gif")}, data={"classes": "a"}
        )
    one_line(response, 413, f"{frame[0]}×{frame[1]}")


# --- the memory budget -----------------------------------------------------------------------------------------------


def test_an_image_needing_more_than_the_whole_budget_is_413_before_decoding(hostile):
    with hostile.client() as client:  # 2000×2000 is within the pixel limit, but 2 × 12 MB is over the 20 MB budget
        response = detect(client, png_header(2000, 2000), classes="a")
    one_line(response, 413, "MB", "--max-queued-mb")


def test_images_waiting_over_the_budget_get_503_with_retry_after(tmp_path: Path):
    detector = BlockingDetector()
    image = encode(np.zeros((1000, 1000, 3), np.uint8))  # 6 MB reserved while it waits
    limits = Limits(queued_bytes=10 * MB)
    answers: list[httpx.Response] = []
    with serve(detector, tmp_path / "data", warm_up=False, limits=limits, max_batch=1, batch_wait_s=0.0) as live:
        first = threading.Thread(target=lambda: answers.append(detect(live.client(), image, classes="a")))
        first.start()
        try:
            assert detector.busy.wait(30)
            with live.client() as client:
                refused = detect(client, image, classes="a")
        finally:
            detector.release.set()
            first.join(60)
        with live.client() as client:
            later = detect(client, image, classes="a")
    one_line(refused, 503, "memory budget")
    assert refused.headers["retry-after"] == "1"
    assert answers[0].status_code == 200 and later.status_code == 200, "the budget is given back once answered"


# --- numbers in a request --------------------------------------------------------------------------------------------

BAD_NUMBERS = [
    ("conf", "nan"), ("conf", "inf"), ("conf", "-inf"), ("conf", "1e309"), ("conf", "-0.5"), ("conf", "2"),
    ("conf", "x"), ("iou", "nan"), ("iou", "inf"), ("iou", "-inf"), ("iou", "1e309"), ("iou", "-0.5"), ("iou", "2"),
    ("iou", "0x1p3"), ("imgsz", "nan"), ("imgsz", "inf"), ("imgsz", "1000000000"), ("imgsz", "-32"), ("imgsz", "0"),
    ("imgsz", "33"), ("imgsz", "3.5"),
]  # fmt: skip


@pytest.mark.parametrize("transport", ["multipart", "json"])
@pytest.mark.parametrize(("field", "value"), BAD_NUMBERS)
def test_a_bad_number_in_a_request_is_422(hostile, photo, transport: str, field: str, value: str):
    with hostile.client() as client:
        response = detect(client, photo, transport, classes="a", **{field: value})
    one_line(response, 422, field)


# --- the token -------------------------------------------------------------------------------------------------------

WRONG_AUTHORIZATIONS = [
    "", "Bearer", f"bearer {TOKEN.upper()}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}",
    f"Bearer {TOKEN} {TOKEN}", "Bearer " + "a" * 8000, f"Token {TOKEN}",
]  # fmt: skip


@pytest.mark.parametrize("authorization", WRONG_AUTHORIZATIONS)
def test_a_wrong_authorization_header_is_401(hostile, photo, authorization: str):
    with httpx.Client(base_url=hostile.url, timeout=60) as client:
        response = client.post(
            "/v1/detect",
            headers={"Authorization": authorization},
            files={"image": ("f.png", photo)},
            data={"classes": "a"},
        )
    one_line(response, 401, "token")


@HYPOTHESIS
@given(
    st.lists(st.one_of(st.integers(0x21, 0x7E), st.integers(0x80, 0xFF), st.just(0x20)), max_size=200)
    .map(bytes)
    .filter(lambda raw: raw == raw.strip())
)
def test_generated_authorization_bytes_are_401_never_500(hostile, raw: bytes):
    with httpx.Client(base_url=hostile.url, timeout=60) as client:
        response = client.get("/v1/vocabularies", headers=[(b"Authorization", raw)])
    assert response.status_code == 401, response.text


# --- vocabulary writes -----------------------------------------------------------------------------------------------


def test_eight_clients_alternating_put_and_delete_leave_a_consistent_store(hostile):
    bodies = [f"classes:\n  kind {client}:\n" for client in range(8)]
    statuses: list[int] = []

    def alternate(body: str) -> None:
        with hostile.client() as client:
            for _ in range(12):
                statuses.append(client.put("/v1/vocabularies/raced", content=body, headers=YAML).status_code)
                statuses.append(client.delete("/v1/vocabularies/raced").status_code)

    threads = [threading.Thread(target=alternate, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(statuses) <= {201, 204, 404}, sorted(set(statuses))
    with hostile.client() as client:
        final = client.get("/v1/vocabularies/raced")
        assert final.status_code == 404 or final.text in bodies
    assert_no_temporaries(hostile.app.state.server.vocabularies.folder)


def test_the_store_serialises_writers(tmp_path: Path):
    store = VocabularyStore(tmp_path)
    bodies = [f"classes:\n  kind {writer}:\n".encode() for writer in range(8)]
    failures: list[BaseException] = []

    def alternate(body: bytes) -> None:
        for _ in range(40):
            try:
                store.put("raced", body)
                store.delete("raced")
            except UnknownVocabulary:
                pass  # another writer deleted it first
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=alternate, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert not (tmp_path / "raced.yaml").exists() or (tmp_path / "raced.yaml").read_bytes() in bodies
    assert_no_temporaries(tmp_path)


@pytest.mark.parametrize(
    "body",
    ["classes:\n" + "".join(f"  c{index}:\n" for index in range(90_000)),
     "classes: {" + ", ".join(f"c{index}" for index in range(90_000)) + "}\n"],
    ids=["block", "flow"],
)  # fmt: skip
def test_a_vocabulary_of_90000_classes_is_413_and_not_stored(hostile, body: str):
    with hostile.client() as client:
        response = client.put("/v1/vocabularies/huge", content=body, headers=YAML)
        assert client.get("/v1/vocabularies/huge").status_code == 404
    one_line(response, 413, f"{MAX_CLASSES} classes", "--max-classes")


def test_a_large_vocabulary_is_parsed_off_the_event_loop(hostile_detector, tmp_path: Path):
    """80,000 lines of YAML pass the line count of a server allowing 4096 classes and take seconds to parse; the
    server answers others meanwhile (one process: the parse, the server and this test share the GIL)."""
    body = "classes:\n" + "".join(f"  c{index}:\n" for index in range(80_000))
    answers: list[httpx.Response] = []
    with serve(hostile_detector, tmp_path / "data", max_classes=4096, warm_up=False) as live:
        put = threading.Thread(
            target=lambda: answers.append(live.client().put("/v1/vocabularies/long", content=body, headers=YAML))
        )
        put.start()
        with live.client() as client:
            time.sleep(0.5)  # 700 kB on loopback arrive in milliseconds; parsing them takes seconds
            health = client.get("/v1/health")
            answered_while_parsing = put.is_alive()
        put.join(120)
    assert health.status_code == 200
    assert answered_while_parsing, "health was answered while the vocabulary was still being parsed"
    one_line(answers[0], 413, "80000 classes")


# --- readiness -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/health"), ("POST", "/v1/detect"), ("POST", "/v1/jobs")])
def test_the_server_says_loading_until_its_model_is_warm(tmp_path: Path, photo, method: str, path: str):
    detector = BlockingDetector()  # its warm-up inference waits for release
    with serve(detector, tmp_path / "data", wait_ready=False) as live, live.client() as client:
        try:
            assert detector.busy.wait(30), "the warm-up inference started"
            loading = client.request(method, path, files={"image": ("f.png", photo)}, data={"classes": "a"})
        finally:
            detector.release.set()
        assert live.app.state.server.ready.wait(30)
        ready = client.get("/v1/health")
    assert loading.status_code == 503 and loading.headers["retry-after"] == "5", loading.text
    assert "loading" in loading.text
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


# --- /docs offline ---------------------------------------------------------------------------------------------------

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


def test_docs_reference_nothing_beyond_this_server(hostile):
    with httpx.Client(base_url=hostile.url, timeout=60) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
        script = "".join(client.get(asset).text for asset in assets if asset.endswith(".js"))
        answers = {asset: client.get(asset).status_code for asset in assets}
        spec = client.get("/openapi.json")
    assert URL.findall(page.text + script) == [], "every URL is this server's own"
    assert assets and set(answers.values()) == {200}, answers
    assert "/v1/detect" in spec.json()["paths"]
