"""A live stream served on loopback (MPEG-TS over HTTP) that drops once: ovdet reconnects, then gives up."""

from __future__ import annotations

import http.server
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ovdet.io.sources import LiveStream, open_source
from tests.media import small_frames, write_clip


class _LiveHandler(http.server.BaseHTTPRequestHandler):
    """Sends the clip in small timed chunks; the first connection is cut half-way, later ones are refused."""

    clip: bytes = b""
    connections = 0

    def do_GET(self) -> None:
        type(self).connections += 1
        if self.connections > 2:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        data = self.clip[: len(self.clip) // 2] if self.connections == 1 else self.clip
        for start in range(0, len(data), 4096):
            self.wfile.write(data[start : start + 4096])
            self.wfile.flush()
            time.sleep(0.005)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[str]:
    clip = write_clip(tmp_path / "live.ts", small_frames(40, people=True), keyframe_interval=5)
    _LiveHandler.clip, _LiveHandler.connections = clip.read_bytes(), 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LiveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    server.shutdown()
    server.server_close()


def test_dropped_stream_reconnects_then_gives_up(live_url: str, caplog: pytest.LogCaptureFixture) -> None:
    source = open_source(live_url, reconnect_timeout=2.0)
    assert isinstance(source, LiveStream) and source.live
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        frames = list(source)
    assert source.reconnects >= 1 and _LiveHandler.connections >= 3
    assert 40 < len(frames) < 80, "the first connection's frames, then the whole clip again"
    assert [f.index for f in frames] == list(range(len(frames)))
    assert (np.diff([f.timestamp for f in frames]) > 0).all(), "timestamps keep increasing across reconnects"
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "reconnecting" in messages and "giving up" in messages


def test_live_stream_through_the_detector(detector, live_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Frames come faster than the model takes them: each result is the newest frame, the rest are counted."""
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        results = list(detector.stream(live_url, reconnect_timeout=1.0, conf=0.05, imgsz=320, batch=4))
    indices = [frame.index for frame, _ in results]
    assert results and indices == sorted(set(indices))
    reports = [re.search(r"(\d+) of (\d+) frame\(s\) dropped to stay live", r.getMessage()) for r in caplog.records]
    dropped, decoded = next((tuple(map(int, match.groups())) for match in reports if match), (0, len(results)))
    assert decoded > 40 and dropped + len(results) == decoded
