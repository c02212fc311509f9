"""``ovdet batch`` takes ``ovdet detect``'s capability flags (precision, task, zones, alerts, summary, crops) and,
with the same settings on the same file, writes byte-identical outputs. Both runs name the source by the same path,
which every record carries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.hostile.harness import assert_clean_stderr, assert_valid_output, checksums, run_cli
from tests.media import small_frames, write_clip

CLASSES = "bottle,person"
ZONES = """\
zones:
  left: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
  all: [[0, 0], [1, 0], [1, 1], [0, 1]]
rules:
  bottle seen: {appears: bottle}
  person seen: {appears: person, zone: all}
  bottle stays: {dwell: bottle, zone: left, seconds: 0.01}
"""


@pytest.fixture(autouse=True)
def shared_embeddings(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run here embeds the same classes: the text model loads once, not per run."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "door.mp4", small_frames(4))


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory: pytest.TempPathFactory, mobileclip_paths: dict) -> Path:
    """One random-init YOLOE -seg checkpoint (its MobileCLIP text tower in the session's weights folder)."""
    from tests.weights_fixtures import read_calibration_frames
    from tests.yoloe_fixtures import build_yoloe_checkpoint

    folder = tmp_path_factory.mktemp("seg")
    return build_yoloe_checkpoint(folder / "yoloe-11n-seg.pt", "yoloe-11n-seg", read_calibration_frames(4))


def _settings(model: Path, *more: object) -> list:
    return ["--classes", CLASSES, "--model", model, "--imgsz", 160, "--conf", 0.01, "--device", "cpu", *more]


def _batch_and_detect(capfd, monkeypatch, clip: Path, tmp_path: Path, settings: list, flags: dict) -> tuple:
    """Run ``ovdet batch`` and ``ovdet detect`` on ``clip``, each in a folder of its own and writing to ``out/`` in
    it under the names batch gives: records that name an output (an alert's crop) then read the same.

    ``flags``: batch's flag → (detect's flag, the suffix batch names the output by). Returns the two ``out/``.
    """
    folders = tmp_path / "batch", tmp_path / "detect"
    for folder in folders:
        folder.mkdir()
    monkeypatch.chdir(folders[0])
    batch = ["batch", clip, *settings, "--output-dir", "out", *flags, "--quiet"]
    assert_clean_stderr(run_cli(batch, capfd))
    monkeypatch.chdir(folders[1])
    detect = ["detect", clip, *settings, "--quiet"]
    for flag, suffix in flags.values():
        detect += [flag, f"out/door.mp4{suffix}"]
    assert_clean_stderr(run_cli(detect, capfd))
    return folders[0] / "out", folders[1] / "out"


def _assert_same_bytes(batch: Path, detect: Path, flags: dict) -> None:
    for _, suffix in flags.values():
        name = f"door.mp4{suffix}"
        if (detect / name).is_dir():
            assert _tree(batch / name) == _tree(detect / name), suffix
        else:
            assert (batch / name).read_bytes() == (detect / name).read_bytes(), suffix
            assert_valid_output(batch / name)


def _tree(folder: Path) -> dict[str, str]:
    """Each file's name below ``folder`` and its SHA-256."""
    return {path.relative_to(folder).as_posix(): digest for path, digest in checksums([folder]).items()}


FILES = {"--jsonl": ("--output", ".jsonl"), "--csv": ("--output", ".csv"), "--coco": ("--coco", ".coco.json")}


def test_precision_gives_the_outputs_of_ovdet_detect(clip, model_path, tmp_path, capfd, monkeypatch) -> None:
    settings = _settings(model_path, "--precision", "bf16")
    batch, detect = _batch_and_detect(capfd, monkeypatch, clip, tmp_path, settings, FILES)
    _assert_same_bytes(batch, detect, FILES)
    assert json.loads((batch / "manifest.json").read_text())["settings"]["precision"] == "bf16"


def test_zones_alerts_summary_and_crops_give_the_outputs_of_ovdet_detect(
    clip, model_path, tmp_path, capfd, monkeypatch
) -> None:
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZONES)
    flags = {"--jsonl": ("--output", ".jsonl"), "--events": ("--events", ".events.jsonl"),
             "--alerts": ("--alerts", ".alerts.jsonl"), "--summary": ("--summary", ".summary.json"),
             "--save-crops": ("--save-crops", ".crops")}  # fmt: skip
    batch, detect = _batch_and_detect(
        capfd, monkeypatch, clip, tmp_path, _settings(model_path, "--zones", zones), flags
    )
    _assert_same_bytes(batch, detect, flags)
    frames = [json.loads(line) for line in (batch / "door.mp4.jsonl").read_text().splitlines()]
    assert all("zones" in frame for frame in frames), "the zones reached the JSONL"
    assert (batch / "door.mp4.alerts.jsonl").read_text(), "the rules fired"
    assert any((batch / "door.mp4.crops").iterdir()), "crops were saved"
    assert json.loads((batch / "door.mp4.summary.json").read_text())["frames"] == len(frames)


def test_alerts_without_rules_are_refused_as_by_ovdet_detect(clip, model_path, tmp_path, capfd) -> None:
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones:\n  all: [[0, 0], [1, 0], [1, 1], [0, 1]]\n")
    result = run_cli(["batch", clip, *_settings(model_path, "--zones", zones), "--output-dir", tmp_path / "out",
                      "--alerts"], capfd)  # fmt: skip
    lines = assert_clean_stderr(result, 2)
    assert len(lines) == 1 and "--alerts needs rules" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_task_segment_puts_masks_in_every_output_as_ovdet_detect(clip, seg_model, tmp_path, capfd, monkeypatch) -> None:
    settings = _settings(seg_model, "--task", "segment", "--runtime", "torch")
    batch, detect = _batch_and_detect(capfd, monkeypatch, clip, tmp_path, settings, FILES)
    _assert_same_bytes(batch, detect, FILES)
    lines = (batch / "door.mp4.jsonl").read_text().splitlines()
    detections = [row for line in lines for row in json.loads(line)["detections"]]
    assert detections and all("polygon" in row for row in detections)
    assert all("segmentation" in result for result in json.loads((batch / "door.mp4.coco.json").read_text()))
    assert pq.read_table(next((batch / "detections").rglob("*.parquet"))).column("polygon").null_count == 0
