"""Signals in the middle of a run, in a real process: every output closed valid and the exit code the signal's."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.harness import (
    REPO,
    Result,
    assert_clean_stderr,
    assert_no_temporaries,
    assert_valid_output,
    decoded_frames,
    unchanged,
)
from tests.media import small_frames, write_clip

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 small frames: long enough to be mid-run when the signals come."""
    frames = small_frames(60)
    return write_clip(tmp_path_factory.mktemp("signals") / "clip.mp4", frames * 5)


def _start(args: list[str | Path], stderr: Path) -> subprocess.Popen:
    with open(stderr, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "ovdet", *map(str, args)], stdout=subprocess.DEVNULL, stderr=handle, cwd=REPO
        )


def _wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ovdet ended early with {process.returncode}"
        assert time.monotonic() < deadline, "the run never reached the point of the test"
        time.sleep(0.05)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _finish(process: subprocess.Popen, stderr: Path, timeout: float = 60) -> Result:
    process.wait(timeout=timeout)
    return Result(process.returncode, "", stderr.read_text())


@pytest.mark.parametrize(
    "signals, code",
    [((signal.SIGINT,), 130), ((signal.SIGTERM,), 143), ((signal.SIGINT, signal.SIGINT), 130),
     ((signal.SIGTERM, signal.SIGINT), 143)],
    ids=["ctrl-c", "sigterm", "two-ctrl-c-0.2s-apart", "sigterm-then-ctrl-c"],
)  # fmt: skip
def test_signals_mid_run_leave_every_output_valid(
    signals: tuple[int, ...], code: int, long_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["detect", long_clip, "--classes", "person,bottle", "--model", model_path, "--device", "cpu", "--imgsz",
            "160", "--conf", "0.05", "--quiet", "--track", "--output", out / "o.jsonl", "--output", out / "o.mp4",
            "--output", out / "o.csv", "--coco", out / "coco.json", "--events", out / "ev.jsonl"]  # fmt: skip
    with unchanged(long_clip):
        process = _start(args, tmp_path / "stderr")
        _wait_for(lambda: _lines(out / "o.jsonl") >= 3, process)
        for number, signum in enumerate(signals):
            if number:
                time.sleep(0.2)
            process.send_signal(signum)
        result = _finish(process, tmp_path / "stderr")
    lines = assert_clean_stderr(result, code)
    assert lines == [f"ovdet: warning: stopped by {signal.Signals(signals[0]).name} after {_lines(out / 'o.jsonl')} "
                     "frame(s); every output holds those frames and is complete"]  # fmt: skip
    for name in ("o.jsonl", "o.mp4", "o.csv", "coco.json", "coco.categories.json", "ev.jsonl"):
        assert_valid_output(out / name)
    frames = _lines(out / "o.jsonl")
    assert 3 <= frames < 300, "stopped mid-run"
    assert decoded_frames(out / "o.mp4") == frames
    categories = json.loads((out / "coco.categories.json").read_text())
    assert len(categories["images"]) == frames
    assert_no_temporaries(out)


def test_sigterm_while_a_stream_reconnects_ends_at_once(model_path: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port where nothing listens: the stream never connects
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "live.jsonl"
    args = ["detect", f"http://127.0.0.1:{port}/live.ts", "--classes", "person", "--model", model_path,
            "--device", "cpu", "--imgsz", "160", "--reconnect-timeout", "600", "--quiet", "--output", out]  # fmt: skip
    process = _start(args, tmp_path / "stderr")
    _wait_for(lambda: "reconnecting" in (tmp_path / "stderr").read_text(), process)
    process.send_signal(signal.SIGTERM)
    result = _finish(process, tmp_path / "stderr", timeout=60)  # ignoring it would take the full 600 s
    lines = assert_clean_stderr(result, 143)
    assert all("reconnecting" in line for line in lines[:-1])
    assert lines[-1].startswith("ovdet: warning: stopped by SIGTERM after 0 frame(s)")
    assert_valid_output(out)


def test_sigint_before_the_model_loads_exits_130(long_clip: Path, model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    args = ["detect", long_clip, "--classes", "person", "--model", model_path, "--device", "cpu", "--imgsz", "160",
            "--quiet", "--output", out]  # fmt: skip
    process = _start(args, tmp_path / "stderr")
    _wait_for(out.exists, process)  # outputs are opened before the model loads
    process.send_signal(signal.SIGINT)
    result = _finish(process, tmp_path / "stderr")
    assert_clean_stderr(result, 130)
    assert_valid_output(out)
