"""Hostile webhooks: URLs that are no http(s) URL, carry secrets, or point at a loopback server that redirects,
answers without end, answers nonsense or hangs. A bad URL is refused in one usage line before any work (its secrets
masked); a hostile server costs one failed delivery (a warning), never a traceback, unbounded memory, a request to
where it redirects, or a secret on stderr. Every server here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ovdet.io.alerts import MAX_RESPONSE_BYTES, WebhookSender, masked_url
from tests.hostile.harness import assert_clean_stderr, assert_error, assert_valid_output, run_cli, unchanged
from tests.media import small_frames, write_clip

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run

SECRET = "s3cret-Xq7"
RULES = (
    "zones:\n  all: [[0, 0], [192, 0], [192, 112], [0, 112]]\nrules:\n  bottle: {appears: bottle, after_absence: 0}\n"
)
EARLIER = '{"earlier": "run"}\n'


class Server:
    """A loopback HTTP server; ``answer(handler)`` writes each response; every request is recorded."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.requests.append((self.command, self.path, dict(self.headers)))
                try:
                    answer(self)
                except OSError:  # the client hung up: what a capped reader does
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = handle_one

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/alerts"
        # shutdown() waits for the loop's next poll: 0.5 s a server by default
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable], Server]]:
    started: list[Server] = []

    def start(answer: Callable) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _no_content(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(204)
    handler.end_headers()


def _deliver_one(url: str, **options) -> WebhookSender:
    """One alert to ``url`` (one try, short timeouts); returns the closed sender with its counts."""
    sender = WebhookSender(url, retries=options.pop("retries", 0), timeout=2.0, drain_seconds=5.0, **options)
    sender.send({"rule": "r"})
    deadline = time.monotonic() + 10
    while sender.delivered + sender.failed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sender.close()
    return sender


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_a_failed_delivery(
    serve, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    target = serve(_no_content)

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Location", target.url + f"?token={SECRET}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    first = serve(redirect)
    with caplog.at_level(logging.WARNING, logger="ovdet.io.alerts"):
        sender = _deliver_one(first.url, retries=2, backoff=0.01)
    assert (sender.delivered, sender.failed) == (0, 1)
    assert len(first.requests) == 1, "a redirect is permanent: no retry"
    assert target.requests == [], "the redirect was followed"
    assert f"HTTP {code}, a redirect, not followed" in caplog.text and SECRET not in caplog.text


def _endless(chunked: bool) -> Callable[[BaseHTTPRequestHandler], None]:
    block = b"x" * (1 << 20)
    block = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block  # made once: the server allocates nothing

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(100 << 20))))
        handler.end_headers()
        for _ in range(100):  # 100 MB, unless the client hangs up first
            handler.wfile.write(block)

    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["100MB-content-length", "100MB-chunked"])
def test_a_huge_answer_is_read_no_further_than_the_cap(serve, chunked: bool) -> None:
    server = serve(_endless(chunked))
    tracemalloc.start()
    try:
        started = time.monotonic()
        sender = _deliver_one(server.url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sender.delivered, sender.failed) == (1, 0)
    assert peak < 8 * MAX_RESPONSE_BYTES + (4 << 20), f"reading the answer took {peak / 2**20:.0f} MiB"
    assert time.monotonic() - started < 10


def _raw(data: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        handler.close_connection = True

    return answer


def _status(code: int) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(_raw(b"HELLO THERE\r\n\r\n"), "not an HTTP response", id="garbage-status-line"),
        pytest.param(_raw(b""), "", id="hangs-up-without-answer"),
        pytest.param(_raw(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"), "not an HTTP response",
                     id="header-flood"),
        pytest.param(_raw(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"), "not an HTTP response",
                     id="header-line-too-long"),
        pytest.param(_raw(b"HTTP/1.1 999999 WHAT\r\n\r\n"), "not an HTTP response", id="status-out-of-range"),
        pytest.param(_status(404), "HTTP 404", id="not-found"),
        pytest.param(_status(500), "HTTP 500", id="server-error"),
        pytest.param(_status(401), "HTTP 401", id="unauthorised"),
    ],
)  # fmt: skip
def test_a_server_that_answers_nonsense_is_a_failed_delivery_not_a_traceback(
    serve, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], answer, reason: str
) -> None:
    server = serve(answer)
    with caplog.at_level(logging.WARNING, logger="ovdet.io.alerts"):
        sender = _deliver_one(server.url)
    assert (sender.delivered, sender.failed) == (0, 1), "the delivery thread died or counted it delivered"
    assert reason in caplog.messages[0] and "Traceback" not in capfd.readouterr().err


def test_a_hanging_server_costs_one_timeout(serve) -> None:
    release = threading.Event()
    server = serve(lambda handler: release.wait(20))
    try:
        started = time.monotonic()
        sender = WebhookSender(server.url, retries=0, timeout=0.3, drain_seconds=3.0)
        sender.send({"rule": "r"})
        sender.close()
        assert (sender.delivered, sender.failed) == (0, 1)
        assert time.monotonic() - started < 3
    finally:
        release.set()


def test_user_info_is_sent_as_basic_authentication_and_never_printed(serve, caplog) -> None:
    server = serve(_status(503))
    url = server.url.replace("http://", f"http://bot:{SECRET}@") + f"?token={SECRET}&room=3"
    with caplog.at_level(logging.INFO, logger="ovdet.io.alerts"):
        sender = _deliver_one(url)
    (method, path, headers), *_ = server.requests
    assert (method, path) == ("POST", f"/alerts?token={SECRET}&room=3")
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"bot:{SECRET}".encode()).decode()
    assert sender.failed == 1 and caplog.messages and SECRET not in caplog.text
    assert "http://***@127.0.0.1:" in caplog.messages[0] and "?token=***&room=***" in caplog.messages[0]


@pytest.mark.parametrize(
    "url",
    [
        f"https://bot:{SECRET}@hooks.example/ward?token={SECRET}",
        f"http://{SECRET}@h/x",
        f"http://h/x?{SECRET}",
        f"http://h/x?a=1&token={SECRET}#frag",
        f"http://h/x#{SECRET}",
        f"http://u:{SECRET}@[::1",
    ],
)
def test_masked_url_keeps_no_secret(url: str) -> None:
    shown = masked_url(url)
    assert SECRET not in shown and ("***" in shown or shown == "(an invalid URL)")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "ward.mp4"
    write_clip(path, small_frames(4))
    return path


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _detect(clip: Path, tmp_path: Path, capfd, url: str, *flags):
    zones = tmp_path / "ward.yaml"
    zones.write_text(RULES)
    alerts = tmp_path / "out" / "alerts.jsonl"
    alerts.parent.mkdir(exist_ok=True)
    alerts.write_text(EARLIER)
    with unchanged(zones, clip):
        result = run_cli(
            ["detect", clip, "--classes", "bottle", "--conf", "0.01", "--imgsz", 160, "--zones", zones,
             "--alerts", alerts, "--webhook", url, *flags],
            capfd,
        )  # fmt: skip
    return result, alerts


def test_cli_never_prints_the_secrets_of_a_failing_webhook(clip: Path, tmp_path: Path, capfd) -> None:
    url = f"http://bot:{SECRET}@127.0.0.1:{_dead_port()}/alerts?token={SECRET}"
    result, alerts = _detect(clip, tmp_path, capfd, url)
    lines = assert_clean_stderr(result)
    assert any("not delivered" in line for line in lines)
    assert SECRET not in result.err + result.out
    assert_valid_output(alerts)


def test_cli_reports_a_redirecting_webhook_and_the_target_gets_nothing(
    clip: Path, tmp_path: Path, capfd, serve
) -> None:
    target = serve(_no_content)

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", target.url)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    first = serve(redirect)
    result, alerts = _detect(clip, tmp_path, capfd, first.url, "--quiet")
    warnings = [line for line in assert_clean_stderr(result) if "webhook" in line]
    assert "a redirect, not followed" in warnings[0] and warnings[0].startswith("ovdet: warning: webhook")
    assert target.requests == [] and first.requests
    assert_valid_output(alerts)


BAD_URLS = [
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("ftp://127.0.0.1/alerts", id="ftp"),
    pytest.param("gopher://127.0.0.1:70/_POST", id="gopher"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("data:text/plain,hello", id="data"),
    pytest.param("127.0.0.1:8080/alerts", id="no-scheme"),
    pytest.param("//127.0.0.1/alerts", id="scheme-relative"),
    pytest.param("", id="empty"),
    pytest.param("http://", id="no-host"),
    pytest.param("http:///alerts", id="empty-host"),
    pytest.param("http://:8080/alerts", id="port-without-host"),
    pytest.param("http://[::1/alerts", id="unclosed-ipv6"),
    pytest.param("http://127.0.0.1:99999/alerts", id="port-out-of-range"),
    pytest.param("http://127.0.0.1:-1/alerts", id="negative-port"),
    pytest.param("http://127.0.0.1:http/alerts", id="port-text"),
    pytest.param("http://127.0.0.1:0/alerts", id="port-zero"),
    pytest.param("http://127.0.0.1/al erts", id="blank"),
    pytest.param("http://127.0.0.1/\x1b[31malerts", id="escape-sequence"),
    pytest.param("http://127.0.0.1/alerts\r\nX-Injected: 1", id="header-injection"),
    pytest.param("http://127.0.0.1/\x00", id="nul"),
    pytest.param(f"ftp://bot:{SECRET}@127.0.0.1/?token={SECRET}", id="secret-in-wrong-scheme"),
    pytest.param(f"http://bot:{SECRET}@[::1/?token={SECRET}", id="secret-in-invalid-url"),
    pytest.param(f"http://bot:{SECRET}@127.0.0.1:99999/?token={SECRET}", id="secret-with-bad-port"),
    pytest.param(f"http://bot:{SECRET}@/alerts?token={SECRET}", id="secret-without-host"),
]


def _detect_with_webhook(tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], url: str, third: str):
    """``detect`` with an appears rule on a zone whose third point is ``third``, alerts to a file and ``url``; the
    image, its zones file and an earlier alerts file are left byte-identical."""
    zones = image.parent / "ward.yaml"
    zones.write_text(f"zones:\n  bay: [[0, 0], [{third}], [50, 50]]\nrules:\n  r: {{appears: pump}}\n")
    alerts = tmp_path / "out" / "alerts.jsonl"
    alerts.parent.mkdir()
    alerts.write_text(EARLIER)
    with unchanged(image.parent, alerts.parent):
        return run_cli(
            ["detect", image, "--classes", "pump", "--zones", zones, "--alerts", alerts, "--webhook", url], capfd
        )


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_webhook_url_is_one_usage_line_before_any_work(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], url: str
) -> None:
    line = assert_error(_detect_with_webhook(tmp_path, image, capfd, url, "50, 0"), 2, "--webhook")
    assert SECRET not in line and "\x1b" not in line


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.example.com/ovdet?token={SECRET}",
        f"http://bot:{SECRET}@10.0.0.1:8080/alerts",
        "http://169.254.169.254/latest/meta-data",
        "https://xn--nxasmq6b.example/alerts",
    ],
)
def test_a_run_refused_for_its_zones_contacts_no_webhook(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], url: str
) -> None:
    """The autouse network guard fails the test on any attempt to reach past loopback."""
    result = _detect_with_webhook(tmp_path, image, capfd, url, "500, 0")
    line = assert_error(result, 1, "ward.yaml:2:", "(500, 0)", "outside")
    assert SECRET not in line
