"""Frames where nothing is found, end to end: a clip with no detection at all, one where only later frames have
some, and the README's headline command and Python snippets — with tracking and events. The notebooks run on
clips that start empty too (tests/test_notebooks.py)."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import cv2
import pytest

from tests.conftest import PEOPLE
from tests.hostile.harness import assert_valid_output, decoded_frames, run_cli, unchanged
from tests.media import empty_frames, small_frames, write_clip

README = Path(__file__).resolve().parents[1] / "README.md"
LEAD_IN = 8


def test_gray_frames_really_are_empty(detector) -> None:
    """The premise of this file: at the conf used here, the test model finds nothing in a gray frame."""
    gray = empty_frames(1, small_frames(1)[0])[0]
    assert len(detector.detect(gray, conf=0.05, imgsz=160)) == 0
    assert len(detector.detect(cv2.resize(gray, (768, 432)), conf=0.05)) == 0
    assert any(len(detector.detect(frame, conf=0.05, imgsz=160)) for frame in small_frames(4, people=True))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("empty")
    people = small_frames(12, people=True)
    return {
        "nothing-found": write_clip(folder / "nothing.mp4", empty_frames(10, people[0])),
        "found-later": write_clip(folder / "later.mp4", empty_frames(LEAD_IN, people[0]) + people),
        "one-empty-frame": write_clip(folder / "one.mp4", empty_frames(1, people[0])),
    }


@pytest.mark.parametrize("name", ["nothing-found", "found-later", "one-empty-frame"])
def test_every_output_with_tracking_on_empty_frames(name: str, clips: dict[str, Path], tmp_path: Path, capfd) -> None:
    clip = clips[name]
    out = tmp_path / "out"
    names = ["o.jsonl", "o.csv", "o.mp4", "coco.json", "coco.categories.json", "ev.jsonl"]
    with unchanged(clip):
        result = run_cli(["detect", clip, "--classes", "person,bottle", "--conf", "0.05", "--imgsz", "160",
                          "--device", "cpu", "--track", "--batch", "3", "--output", out / "o.jsonl",
                          "--output", out / "o.csv", "--output", out / "o.mp4", "--coco", out / "coco.json",
                          "--events", out / "ev.jsonl", "--save-annotated", out / "drawn"], capfd)  # fmt: skip
    assert result.code == 0, result.err
    for output in names:
        assert_valid_output(out / output)
    records = [json.loads(line) for line in (out / "o.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(records))) and decoded_frames(out / "o.mp4") == len(records)
    assert len(list((out / "drawn").iterdir())) == len(records)
    boxes = [d for r in records for d in r["detections"]]
    rows = list(csv.DictReader((out / "o.csv").read_text().splitlines()))
    assert len(rows) == len(boxes) == len(json.loads((out / "coco.json").read_text()))
    assert all(not r["detections"] for r in records[: LEAD_IN if name == "found-later" else None])
    events = [json.loads(line) for line in (out / "ev.jsonl").read_text().splitlines()]
    if name == "found-later":
        assert boxes and any(d["track_id"] is not None for d in boxes) and events
        assert all(e["first_seen"]["frame"] >= LEAD_IN for e in events)
    else:
        assert not boxes and not events
    assert "0 detection(s) (nothing found)" in result.out or name == "found-later"


@pytest.mark.slow
def test_one_frame_per_second_confirms_tracks(tmp_path: Path, capfd) -> None:
    """The issue's check: --vid-stride 10 on the 10 frames/s clip is 1 frame/s; tracks and events must come."""
    events = tmp_path / "ev.jsonl"
    out = tmp_path / "out.jsonl"
    result = run_cli(["detect", PEOPLE, "--classes", "person", "--vid-stride", "10", "--track", "--events", events,
                      "--output", out, "--quiet"], capfd)  # fmt: skip
    assert result.code == 0, result.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records][:3] == [0, 10, 20]
    tracked = {d["track_id"] for r in records for d in r["detections"]} - {None}
    finished = [json.loads(line) for line in events.read_text().splitlines()]
    assert tracked and finished and {e["track_id"] for e in finished} <= tracked
    assert any(e["frames_seen"] >= 3 for e in finished), "tracks survive from one frame to the next, 1 s apart"


def _readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    return next(block for block in blocks if containing in block)


@pytest.fixture
def readme_files(clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the README's examples name, in a fresh working folder: videos whose first frames hold nothing."""
    for name in ("video.mp4", "shop.mp4"):
        (tmp_path / name).write_bytes(clips["found-later"].read_bytes())
    cv2.imwrite(str(tmp_path / "street.jpg"), empty_frames(1, small_frames(1)[0])[0])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_headline_command_on_a_clip_that_starts_empty(readme_files: Path, capfd) -> None:
    command = _readme_block("bash", "ovdet detect video.mp4").replace("\\\n", " ").splitlines()[0]
    arguments = shlex.split(command)
    assert arguments[:3] == ["ovdet", "detect", "video.mp4"] and "--track" in arguments and "--events" in arguments
    with unchanged(readme_files / "video.mp4"):
        result = run_cli([*arguments[1:], "--imgsz", "160", "--quiet"], capfd)
    assert result.code == 0, result.err
    for name in ("out.jsonl", "out.mp4", "events.jsonl"):
        assert_valid_output(readme_files / name)


def test_readme_python_snippets_on_files_that_start_empty(readme_files: Path) -> None:
    namespace: dict = {}
    for snippet in (_readme_block("python", "detector.detect("), _readme_block("python", "detector.stream(")):
        exec(compile(snippet, str(README), "exec"), namespace)
    assert namespace["frame"].index == 18  # the last of the clip's 20 frames at vid_stride=2


def test_readme_ward_python_snippet_runs_as_written(clips: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """The zones section's Python runs as printed, with the section's own vocabulary and zones files."""
    for name in ("ward-vocab.yaml", "ward-zones.yaml"):
        (tmp_path / name).write_text(_readme_block("yaml", f"# {name}"))
    (tmp_path / "ward.mp4").write_bytes(clips["found-later"].read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_block("python", "Analytics("), str(README), "exec"), namespace)
    assert namespace["frame"].index == LEAD_IN + 11, "both loops read the whole clip"
    assert "zones" in namespace["detections"].data and isinstance(namespace["alerts"], list)
