"""The ``ovdet`` command: detect on images, JSONL schema, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from ovdet import __version__
from ovdet.cli import main
from tests.conftest import BOTTLES, read_frames


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i, frame in enumerate(read_frames(BOTTLES, 3, step=150)):
        cv2.imwrite(str(folder / f"frame{i}.jpg"), frame)
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image")
    return folder


def _detect(*args: str) -> int:
    return main(["detect", *args])


def test_folder_to_jsonl_and_annotated_images(image_folder: Path, tmp_path: Path, capsys, model_path: Path) -> None:
    out = tmp_path / "out" / "detections.jsonl"
    annotated = tmp_path / "drawn"
    code = _detect(
        str(image_folder), "--classes", "bottle,person", "--model", str(model_path), "--conf", "0.01",
        "--output", str(out), "--save-annotated", str(annotated), "--batch", "2", "--device", "cpu",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["source"]).name for r in records] == ["frame0.jpg", "frame1.jpg", "frame2.jpg", "gray.png"]
    for record in records:
        assert set(record) == {"source", "frame", "timestamp", "width", "height", "detections"}
        assert record["frame"] == 0 and record["timestamp"] is None
        assert (record["width"], record["height"]) == (640, 360)
        assert record["detections"], "the recalibrated model finds boxes at conf 0.01"
        for row in record["detections"]:
            assert set(row) == {"xyxy", "confidence", "class_id", "class_name", "track_id"}
            x1, y1, x2, y2 = row["xyxy"]
            assert 0 <= x1 <= x2 <= record["width"] and 0 <= y1 <= y2 <= record["height"]
            assert row["class_name"] == ["bottle", "person"][row["class_id"]] and row["track_id"] is None
            assert row["confidence"] >= 0.01
    assert sorted(p.name for p in annotated.iterdir()) == ["frame0.jpg", "frame1.jpg", "frame2.jpg", "gray.png"]
    assert "empty.jpg" in captured.err and "readme.txt" in captured.err
    assert "4 image(s)" in captured.out


def test_single_image_and_glob(image_folder: Path, tmp_path: Path, model_path: Path) -> None:
    out = tmp_path / "one.jsonl"
    assert _detect(str(image_folder / "frame1.jpg"), "--classes", "bottle", "--model", str(model_path),
                   "--output", str(out), "--quiet") == 0  # fmt: skip
    assert len(out.read_text().splitlines()) == 1
    assert _detect(str(image_folder / "frame*.jpg"), "--classes", "bottle", "--model", str(model_path),
                   "--output", str(out), "--quiet") == 0  # fmt: skip
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{folder}/missing.jpg", "--classes", "a"], "does not exist"),
        (["{folder}/empty.jpg", "--classes", "a"], "empty (0 bytes)"),
        (["{folder}", "--classes", " , "], "blank"),
        (["{folder}", "--classes", "a,A"], "duplicate"),
        (["{folder}", "--classes", "a", "--output", "/proc/forbidden/x.jsonl"], "cannot write output"),
        (["{folder}", "--classes", "a", "--model", "yolov9-magic"], "unknown model"),
    ],
)
def test_errors_are_one_line_with_exit_1(image_folder: Path, capsys, args: list[str], message: str) -> None:
    code = _detect(*[a.format(folder=image_folder) for a in args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("ovdet: warning:")]
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith("ovdet: error:") and message in errors[0], err


def test_a_value_out_of_range_is_a_usage_error(image_folder: Path, capsys) -> None:
    code = _detect(str(image_folder), "--classes", "a", "--conf", "2")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ovdet: error: conf must be") and err.count("\n") == 1, err


def test_usage_errors_exit_2(capsys) -> None:
    assert main(["detect", "x.jpg"]) == 2
    assert "--classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "x.jpg", "--classes", "a", "--vocab", "v.yaml"])
    assert exit_info.value.code == 2


def test_console_script_version_and_help() -> None:
    version = subprocess.run([sys.executable, "-m", "ovdet", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"ovdet {__version__}"
    helped = subprocess.run(["ovdet", "detect", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--save-annotated" in helped.stdout


def test_warnings_start_their_own_line_above_the_progress_bar(tmp_path: Path, capfd, model_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, frame in enumerate(read_frames(BOTTLES, 4, step=40)):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(frame, (96, 64)))
    (folder / "2.jpg").write_bytes(b"\xff\xd8\xff broken in the middle of the run")
    code = _detect(str(folder), "--classes", "bottle", "--model", str(model_path), "--imgsz", "96", "--device", "cpu")
    err = capfd.readouterr().err
    assert code == 0 and "ovdet: warning: skipped" in err
    for position in (i for i in range(len(err)) if err.startswith("ovdet:", i)):
        assert position == 0 or err[position - 1] in "\r\n", f"a message was written onto the bar: {err!r}"
