"""Alerts out: the alerts file, and the webhook on a loopback HTTP server that works, is down, or hangs. The pipeline
never waits for the webhook: its queue is bounded and what does not fit is dropped, logged, and still in the file."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ovdet.io.alerts import WebhookSender
from tests.hostile.harness import assert_clean_stderr, assert_valid_output, run_cli
from tests.media import small_frames, write_clip

RULES = (
    "zones:\n  all: [[0, 0], [192, 0], [192, 112], [0, 112]]\nrules:\n  bottle: {appears: bottle, after_absence: 0}\n"
)


class _Server:
    """A loopback webhook that records every JSON body; ``hold`` makes each request wait until it is released."""

    def __init__(self, hold: bool = False) -> None:
        self.bodies: list[dict] = []
        self.release = threading.Event()
        self.arrived = threading.Event()
        if not hold:
            self.release.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.arrived.set()
                server.release.wait(30)
                server.bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/alerts"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.close()


def _dead_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/alerts"


def test_webhook_delivers_every_alert(server: _Server) -> None:
    sender = WebhookSender(server.url)
    for number in range(5):
        sender.send({"rule": "r", "number": number})
    sender.close()
    assert sorted(body["number"] for body in server.bodies) == list(range(5))
    assert (sender.delivered, sender.failed, sender.dropped) == (5, 0, 0)


def test_webhook_down_warns_once_and_counts_every_failure(caplog: pytest.LogCaptureFixture) -> None:
    sender = WebhookSender(_dead_url(), retries=2, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="ovdet.io.alerts"):
        for number in range(3):
            sender.send({"rule": f"r{number}"})
        sender.close()
    assert (sender.delivered, sender.failed) == (0, 3)
    assert len(caplog.messages) == 2
    assert "alert 'r0' not delivered (" in caplog.messages[0]
    assert "3 alert(s) not delivered, 0 dropped" in caplog.messages[1]


def test_hanging_webhook_never_holds_up_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    hanging = _Server(hold=True)
    sender = WebhookSender(hanging.url, queue_size=2, drain_seconds=0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="ovdet.io.alerts"):
            sender.send({"rule": "r", "number": 0})
            assert hanging.arrived.wait(10)  # the first request hangs in the server
            for number in range(1, 20):  # each send returns at once although no request ever completes
                sender.send({"rule": "r", "number": number})
            sender.close()
        # one request in flight, two queued, the other 17 dropped at once: the caller never waited for a slot
        assert (sender.dropped, sender.delivered) == (17, 0)
        assert len(caplog.messages) == 2 and "alert 'r' dropped (2 queued)" in caplog.messages[0]
        assert "17 dropped while it was not keeping up, 2 still queued" in caplog.messages[-1]
    finally:
        hanging.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "ward.mp4"
    write_clip(path, small_frames(8))
    return path


def _detect(clip: Path, tmp_path: Path, capfd, *flags) -> tuple:
    zones = tmp_path / "ward.yaml"
    zones.write_text(RULES)
    alerts = tmp_path / "alerts.jsonl"
    result = run_cli(
        ["detect", clip, "--classes", "bottle", "--conf", "0.01", "--imgsz", 160, "--zones", zones,
         "--alerts", alerts, "--quiet", *flags],
        capfd,
    )  # fmt: skip
    assert_valid_output(alerts)
    return result, [json.loads(line) for line in alerts.read_text().splitlines()]


def test_cli_run_with_a_dead_webhook_completes_with_alerts_in_the_file(clip: Path, tmp_path: Path, capfd) -> None:
    result, alerts = _detect(clip, tmp_path, capfd, "--webhook", _dead_url())
    lines = assert_clean_stderr(result)
    assert len(alerts) == 8
    warnings = [line.lower() for line in lines if "webhook" in line]
    assert warnings[0].startswith("ovdet: warning: webhook") and "alert 'bottle' not delivered" in warnings[0]
    assert "8 alert(s) not delivered" in warnings[-1] and len(warnings) == 2
