"""``ovdet serve`` from the command line: refusals before the model loads, and a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.hostile.harness import REPO, assert_error, run_cli
from tests.serve.conftest import TOKEN, encode


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "camera.example"])
def test_serving_beyond_loopback_without_a_token_is_refused(capfd, monkeypatch, host: str):
    monkeypatch.delenv("OVDET_TOKEN", raising=False)
    result = run_cli(["serve", "--host", host, "--model", "never-loaded.pt"], capfd)
    assert_error(result, 2, f"--host {host}", "token")


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [(["--max-batch", "0"], ["--max-batch"]), (["--timeout", "-1"], ["--timeout"]),
     (["--vocab", "missing.yaml"], ["missing.yaml"]), (["--conf", "2"], ["conf"]),
     (["--port", "99999"], ["--port", "99999", "65535"]), (["--port", "0"], ["--port", "0 is out of range"]),
     (["--task", "track"], ["--task", "track"]), (["--precision", "fp64"], ["--precision", "fp64"]),
     (["--precision", "int8", "--calibration", "missing.mp4"], ["--calibration", "missing.mp4"]),
     (["--half", "--precision", "int8"], ["--half", "int8"]), (["--precision", "int8"], ["--calibration"])],
)  # fmt: skip
def test_bad_options_fail_before_the_model_loads(capfd, tmp_path: Path, flags: list[str], mentions: list[str]):
    result = run_cli(["serve", "--model", "never-loaded.pt", "--data", str(tmp_path / "data"), *flags], capfd)
    assert_error(result, result.code, *mentions)
    assert result.code in (1, 2)


def test_a_port_in_use_is_one_line(capfd, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--model", "never-loaded.pt", "--port", str(port), "--data", str(tmp_path)], capfd)
    assert_error(result, 2, f"127.0.0.1:{port}", "--port")


def test_ovdet_serve_answers_with_its_default_vocabulary(model_path: Path, tmp_path: Path, bottle_frames):
    vocab = tmp_path / "ward.yaml"
    vocab.write_text("classes:\n  bottle: [bottle, water bottle]\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ["--imgsz", "160", "--conf", "0.01", "--device", "cpu", "--precision", "fp32", "--task", "detect"]
    command = [sys.executable, "-m", "ovdet", "serve", "--model", str(model_path), "--port", str(port), *settings,
               "--vocab", str(vocab), "--data", str(tmp_path / "data")]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, "OVDET_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert "serving on http://127.0.0.1" in server.stdout.readline()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
            health = client.get("/v1/health").json()
            assert (health["status"], health["precision"], health["task"]) == ("ok", "fp32", "detect")
            record = client.post("/v1/detect", files={"image": ("f.png", encode(bottle_frames[0]), "image/png")})
            assert record.status_code == 200, record.text
            assert record.json()["detections"] and {d["class_name"] for d in record.json()["detections"]} == {"bottle"}
            assert client.get("/v1/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == ["ovdet: interrupted"], err


def test_the_readme_serve_lines_send_the_token_the_server_reads():
    """The README exports OVDET_TOKEN (which ovdet serve reads) before starting the server and sending it with curl."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Serve: ") :]
    section = section[: section.index("\n## ")]
    exported = section.index("export OVDET_TOKEN=")
    assert exported < section.index("ovdet serve --model") < section.index('Bearer $OVDET_TOKEN"')
    assert '--token "$(' not in section, "a token made inline is never exported for the curl lines"
