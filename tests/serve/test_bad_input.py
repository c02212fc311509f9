"""What the server refuses, and how: 401, 413, 415, 422 (naming the line), 404, 503 with Retry-After, 504,
a name like ``../x``, and a client that disconnects mid-upload."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.hostile.harness import assert_no_temporaries
from tests.media import png_header
from tests.serve.conftest import TOKEN, serve

PNG_TYPE = "image/png"
YAML = {"Content-Type": "application/yaml"}


def one_line(response, status: int, *mentions: str) -> str:
    """The status, and a ``detail`` of one line mentioning each of ``mentions``."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail, detail
    for mention in mentions:
        assert mention.lower() in detail.lower(), f"{mention!r} not in {detail!r}"
    return detail


@pytest.mark.parametrize("token", [None, "wrong", f"{TOKEN}x"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/detect"), ("GET", "/v1/vocabularies"), ("PUT", "/v1/vocabularies/a"),
     ("DELETE", "/v1/vocabularies/a"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/0"), ("GET", "/v1/health"),
     ("GET", "/metrics")],
)  # fmt: skip
def test_every_api_call_needs_the_token(server, method: str, path: str, token: str | None):
    with server.client(token) as client:
        response = client.request(method, path)
    one_line(response, 401, "token")
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_page_and_docs_need_no_token(server):
    with server.client(None) as client:
        assert client.get("/").status_code == 200
        assert client.get("/docs").status_code == 200


def multipart_head(field: str, filename: str, content_type: str) -> bytes:
    """The start of a multipart body (boundary ``x``) whose file part ``field`` follows."""
    return (
        f'--x\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def test_an_upload_over_the_limit_is_413(server):
    body = bytes(21 << 20)
    chunks = [multipart_head("image", "big.png", PNG_TYPE)] + [
        body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)
    ]
    with server.client() as client:
        declared = client.post("/v1/detect", files={"image": ("big.png", body, PNG_TYPE)}, data={"classes": "a"})
        streamed = client.post(  # no Content-Length: counted while it arrives
            "/v1/detect", content=iter(chunks), headers={"Content-Type": "multipart/form-data; boundary=x"}
        )
    one_line(declared, 413, "20 MB")
    one_line(streamed, 413, "20 MB")


def test_an_image_over_the_pixel_limit_is_413(server):
    with server.client() as client:
        response = client.post(
            "/v1/detect", files={"image": ("bomb.png", png_header(9000, 9000), PNG_TYPE)}, data={"classes": "a"}
        )
    one_line(response, 413, "9000×9000", "pixels")


@pytest.mark.parametrize(
    ("name", "data", "content_type", "mention"),
    [("notes.png", b"these are words, not pixels", PNG_TYPE, "not an image"),
     ("notes.txt", b"these are words", "text/plain", "text/plain, not an image"),
     ("empty.png", b"", PNG_TYPE, "empty")],
)  # fmt: skip
def test_not_an_image_is_415_with_a_message(server, name: str, data: bytes, content_type: str, mention: str):
    with server.client() as client:
        response = client.post("/v1/detect", files={"image": (name, data, content_type)}, data={"classes": "a"})
    one_line(response, 415, mention)


def test_an_unknown_body_type_is_415(server):
    with server.client() as client:
        detect = client.post("/v1/detect", content=b"hello", headers={"Content-Type": "text/plain"})
        vocabulary = client.put("/v1/vocabularies/a", content=b"classes: [a]", headers={"Content-Type": PNG_TYPE})
        job = client.post("/v1/jobs", files={"video": ("clip.txt", b"words", "text/plain")}, data={"classes": "a"})
    one_line(detect, 415, "text/plain")
    one_line(vocabulary, 415, "yaml")
    one_line(job, 415, "not a video")


@pytest.mark.parametrize(
    ("body", "line", "mention"),
    [("classes:\n  bottle:\n  bottle:\n", 3, "duplicate"),
     ("classes:\n  bottle: [a\n  person:\n", 3, "not valid YAML"),
     ("classes:\n  bottle:\ntemplate: ['{}']\n", 3, "did you mean 'templates'"),
     ("classes:\n  bottle: {conf: 2}\n", 2, "conf")],
)  # fmt: skip
def test_a_malformed_vocabulary_is_422_naming_the_line(server, body: str, line: int, mention: str):
    with server.client() as client:
        response = client.put("/v1/vocabularies/bad", content=body, headers=YAML)
        assert client.get("/v1/vocabularies/bad").status_code == 404, "nothing was stored"
    one_line(response, 422, f"vocabulary bad:{line}:", mention)


def test_an_unknown_vocabulary_is_404(server, images):
    with server.client() as client:
        detect = client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data={"vocabulary": "nope"})
        fetched = client.get("/v1/vocabularies/nope")
        deleted = client.delete("/v1/vocabularies/nope")
    for response in (detect, fetched, deleted):
        one_line(response, 404, "nope")


@pytest.mark.parametrize("name", ["..%2Fx", "..%2F..%2Fetc%2Fpasswd", "a%2Fb", ".hidden", "%2E%2E", "%2Fabs", "x" * 65])
def test_a_vocabulary_name_that_is_not_a_plain_stem_is_422(server, name: str):
    with server.client() as client:
        stored = client.put(f"/v1/vocabularies/{name}", content="classes: [a]", headers=YAML)
        fetched = client.get(f"/v1/vocabularies/{name}")
        deleted = client.delete(f"/v1/vocabularies/{name}")
    for response in (stored, fetched, deleted):
        one_line(response, 422, "is not allowed")


@pytest.mark.parametrize(
    ("fields", "mention"),
    [({}, "either classes"), ({"classes": "a", "vocabulary": "b"}, "either classes"), ({"classes": "a", "conf": "x"},
     "conf must be a number"), ({"classes": "a", "conf": "2"}, "conf must be a number in [0, 1]"),
     ({"classes": "a", "imgsz": "100"}, "imgsz"), ({"classes": " , "}, "blank")],
)  # fmt: skip
def test_bad_fields_are_422(server, images, fields: dict, mention: str):
    with server.client() as client:
        response = client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data=fields)
    one_line(response, 422, mention)


@pytest.mark.parametrize(
    ("body", "mention"),
    [(b"{not json", "json"), (b'{"classes": "a"}', "image"), (b'{"image": "***", "classes": "a"}', "base64")],
)
def test_bad_json_is_422(server, body: bytes, mention: str):
    with server.client() as client:
        response = client.post("/v1/detect", content=body, headers={"Content-Type": "application/json"})
    one_line(response, 422, mention)


def test_a_full_queue_is_503_with_retry_after(blocking, images):
    detector, live = blocking
    answers: list = []

    def detect() -> None:
        with live.client() as client:
            answers.append(
                client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data={"classes": "a"})
            )

    first = threading.Thread(target=detect)
    first.start()
    assert detector.busy.wait(30), "the first request reached the model"
    second = threading.Thread(target=detect)
    second.start()
    with live.client() as client:
        while client.get("/v1/health").json()["waiting"] < 1:
            second.join(0.02)
        refused = client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data={"classes": "a"})
    one_line(refused, 503, "busy")
    assert refused.headers["retry-after"] == "1"
    detector.release.set()
    first.join()
    second.join()
    assert [answer.status_code for answer in answers] == [200, 200]


def test_a_request_not_answered_in_time_is_504_and_the_server_goes_on(blocking, images):
    detector, live = blocking
    with live.client() as client:
        timed_out = client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data={"classes": "a"})
        one_line(timed_out, 504, "within 2 s")
        detector.release.set()
        later = client.post("/v1/detect", files={"image": ("f.png", images[0], PNG_TYPE)}, data={"classes": "a"})
    assert later.status_code == 200, later.text


@pytest.mark.parametrize(("path", "field"), [("/v1/jobs", "video"), ("/v1/detect", "image")])
def test_a_client_that_disconnects_mid_upload_leaves_nothing(tmp_path: Path, path: str, field: str):
    from tests.serve.conftest import BlockingDetector

    data = tmp_path / "data"
    with serve(BlockingDetector(), data, warm_up=False) as live:
        before = sorted(data.rglob("*"))
        head = multipart_head(field, "clip.mp4", "video/mp4")
        with socket.create_connection(("127.0.0.1", live.port)) as connection:
            connection.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {5 << 20}\r\n"
                f"Content-Type: multipart/form-data; boundary=x\r\n\r\n".encode()
                + head
                + bytes(2 << 20)
            )
        with live.client() as client:  # the server is still there, and answers
            assert client.get("/v1/health").status_code == 200
            assert client.get("/metrics").status_code == 200
    after = sorted(data.rglob("*"))  # once the server has stopped, whatever it would have written is there
    assert after == before, f"left behind: {set(after) - set(before)}"
    assert_no_temporaries(data)
