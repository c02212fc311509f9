"""Nothing written under ``$HOME`` unasked, and no runtime's telemetry reaching out (issue 23).

Each command runs in a fresh interpreter whose ``$HOME`` is an empty folder, as a new user's would be, with the
native network guard preloaded: onnxruntime's telemetry looks its host up from C, past Python's ``socket``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests import labelled_data, network_guard
from tests.hostile.harness import REPO, assert_clean_stderr, run_subprocess

IMGSZ = "160"
# onnxruntime's 1DS uploader made its first lookup about 9 s after the session was created (it then retries).
TELEMETRY_WAIT_S = 20
_RUN_ONNX_EXPORT = """
import sys, time
import numpy as np
from ovdet import OpenVocabDetector

detector = OpenVocabDetector(sys.argv[1], device="cpu")
assert detector.backend.name == "onnxruntime", detector.backend.name
detector.detect(np.zeros((64, 64, 3), np.uint8))
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$HOME`` for the commands this test starts; the libraries' folders are left to ovdet to choose."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    for variable in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR", "ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(variable, raising=False)
    return folder


def _written_under(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*"))


@pytest.fixture(scope="module")
def onnx_export(session_detector, tmp_path_factory: pytest.TempPathFactory) -> Path:
    session_detector.set_classes(["bottle", "person"])
    return session_detector.export("onnx", imgsz=int(IMGSZ), output=tmp_path_factory.mktemp("onnx") / "e")


def test_an_onnx_export_runs_without_telemetry_or_files_in_home(
    onnx_export: Path, home: Path, native_network_guard: Path, tmp_path: Path
) -> None:
    """onnxruntime's telemetry is off: no device id under ``$HOME``, no lookup of its host (while it would retry)."""
    log = Path(os.environ[network_guard.LOG_VARIABLE])
    completed = subprocess.run(
        [sys.executable, "-c", _RUN_ONNX_EXPORT, str(onnx_export), str(TELEMETRY_WAIT_S)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    attempts = log.read_text() if log.is_file() else ""
    log.unlink(missing_ok=True)  # reported here, with the files, rather than by the no_network fixture
    assert attempts == "", f"network lookups from the ONNX run:\n{attempts}"
    assert _written_under(home) == [], "onnxruntime wrote under $HOME"


def test_the_native_guard_sees_lookups_from_c(native_network_guard: Path, tmp_path: Path) -> None:
    """The guard the test above relies on: a lookup through the C library (not Python's socket) is logged."""
    log = tmp_path / "attempts.log"
    probe = "import ctypes, ctypes.util; ctypes.CDLL(None).gethostbyname(b'example.com')"
    env = {**os.environ, network_guard.LOG_VARIABLE: str(log), "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=60)
    assert "native name lookup of 'example.com'" in log.read_text()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return labelled_data.write_coco(labelled_data.make_labelled_set(4), tmp_path_factory.mktemp("labelled"))


def test_detect_export_and_eval_write_nothing_under_home(
    home: Path, native_network_guard: Path, model_path: Path, labelled: Path, tmp_path: Path
) -> None:
    """Ultralytics' settings.json and matplotlib's cache go into ovdet's cache folder, not ``$HOME``."""
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), cv2.imread(str(next((labelled.parent / "images").iterdir()))))
    small = ["--model", str(model_path), "--imgsz", IMGSZ, "--device", "cpu", "--quiet"]
    commands = [
        ["detect", image, "--classes", "bottle", "--output", tmp_path / "out.jsonl", *small],
        ["export", "--classes", "bottle", "--format", "onnx", "-o", tmp_path / "export", *small],
        ["eval", "--data", labelled, "--classes", "bottle,person", *small],
    ]
    for command in commands:
        assert_clean_stderr(run_subprocess(command, timeout=600))
        assert _written_under(home) == [], f"ovdet {command[0]} wrote under $HOME"
    assert (Path(os.environ["OVDET_CACHE_DIR"]) / "Ultralytics" / "settings.json").is_file()


def test_a_library_folder_the_user_chose_is_kept(home: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "my-ultralytics"
    probe = "import os, ovdet; print(os.environ['YOLO_CONFIG_DIR'], os.environ['MPLCONFIGDIR'])"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(chosen)}
    shown = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == [str(chosen), str(Path(os.environ["OVDET_CACHE_DIR"]) / "matplotlib")]
