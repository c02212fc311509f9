"""INT8 OpenVINO exports: convolutions quantized on the user's frames, everything that takes the class embeddings in
floating point, so a changeable vocabulary still takes new classes — with neither torch nor Ultralytics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovdet import ConfigError, OpenVocabDetector, SourceError
from ovdet.core.environment import import_openvino
from ovdet.runtimes.artifact import Artifact
from tests.export.test_export import TORCH_FREE_CLI
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli
from tests.media import small_frames, write_clip

IMGSZ = 160
SLOTS = 4
BAKED = ["bottle", "person"]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("calibration") / "scenes.mp4", small_frames(24))


@pytest.fixture(scope="module")
def int8_exports(model_path: Path, calibration: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A changeable export through the Python API, and a fixed one through the CLI (its console output kept)."""
    detector = OpenVocabDetector(model_path, device="cpu", imgsz=IMGSZ, cache_dir=tmp_path_factory.mktemp("cache"))
    root = tmp_path_factory.mktemp("int8")
    int8 = {"int8": True, "calibration": calibration, "calibration_frames": 8}
    dynamic = detector.export("openvino", dynamic_vocab=True, max_classes=SLOTS, output=root / "dyn", **int8)
    command = [sys.executable, "-m", "ovdet", "export", "--model", str(model_path), "--format", "openvino",
               "--classes", ",".join(BAKED), "--imgsz", str(IMGSZ), "--precision", "int8", "--calibration",
               str(calibration), "--calibration-frames", "8", "-o", str(root / "fixed")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return {"dynamic": dynamic, "fixed": root / "fixed" / model_path.with_suffix(".xml").name, "console": result}


def _read(model_file: Path):
    """The OpenVINO model, through ovdet (importing openvino before ovdet would let its telemetry load)."""
    return import_openvino("reading the export").Core().read_model(str(model_file))


def _feeders(model) -> dict[str, set[str]]:
    """Each operation's name → the types of the operations feeding it."""
    return {
        op.get_friendly_name(): {source.get_source_output().get_node().get_type_name() for source in op.inputs()}
        for op in model.get_ordered_ops()
    }


@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_only_convolutions_are_quantized(kind: str, int8_exports: dict) -> None:
    model = _read(int8_exports[kind])
    feeders = _feeders(model)
    types = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    quantized = {name for name, sources in feeders.items() if "FakeQuantize" in sources}
    assert sum(types[name] == "Convolution" for name in quantized) >= 40
    text_operations = [name for name, kind_ in types.items() if kind_ == "MatMul"]
    assert len(text_operations) >= 8 and not quantized & set(text_operations)  # attention and class scores
    around_the_network = {name for name in types if name.startswith("/") and not name.startswith("/model.")}
    assert not quantized & around_the_network  # empty-slot mask and the scores it multiplies
    assert not {name for name in quantized if name.startswith("/model.22/dfl")}  # box decoding
    assert Artifact.open(int8_exports[kind], "openvino").metadata.precision == "int8"


@pytest.mark.slow
def test_an_int8_changeable_export_takes_new_classes_without_torch(int8_exports: dict[str, Path], tmp_path: Path):
    cv2.imwrite(str(tmp_path / "scene.png"), small_frames(1, size=(320, 192))[0])
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-c", TORCH_FREE_CLI, "detect", str(tmp_path / "scene.png"), "--model",
               str(int8_exports["dynamic"].parent), "--classes", "cup,hand,lamp", "--conf", "0.001",
               "--imgsz", str(IMGSZ), "--output", str(output), "--quiet"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [record] = [json.loads(line) for line in output.read_text().splitlines()]
    names = {row["class_name"] for row in record["detections"]}
    assert names and names <= {"cup", "hand", "lamp"}


def test_the_int8_export_console_is_ovdets_own(int8_exports: dict) -> None:
    """NNCF logs every operation it skips and draws progress bars: none of that reaches the user."""
    console = int8_exports["console"]
    assert console.stdout.startswith("exported ") and "int8" in console.stdout.splitlines()[0]
    text = console.stdout + console.stderr
    assert "nncf" not in text.lower() and "━" not in text and "cpp_extension" not in text


def test_an_int8_fixed_export_reports_its_baked_classes(int8_exports: dict[str, Path]) -> None:
    detector = OpenVocabDetector(int8_exports["fixed"], imgsz=IMGSZ)
    detector.set_classes(BAKED)
    detections = detector.detect(small_frames(1)[0], conf=0.001)
    assert len(detections) and set(detections.data["class_name"]) <= set(BAKED)
    assert np.isfinite(detections.xyxy).all()


@pytest.mark.parametrize(
    ("options", "error", "mentions"),
    [
        ({"format": "onnx", "int8": True, "calibration": "x.mp4"}, ConfigError, "--format openvino"),
        ({"format": "openvino", "int8": True}, ConfigError, "--calibration"),
        ({"format": "openvino", "int8": True, "half": True, "calibration": "x.mp4"}, ConfigError, "--half"),
        ({"format": "openvino", "calibration": "x.mp4"}, ConfigError, "--precision int8"),
        ({"format": "openvino", "int8": True, "calibration": "missing.mp4"}, SourceError, "--calibration"),
        ({"format": "openvino", "int8": True, "calibration_frames": 0}, ConfigError, "--calibration-frames"),
    ],
    ids=["not-openvino", "no-calibration", "with-half", "calibration-without-int8", "missing-scenes", "zero-frames"],
)
def test_int8_options_are_checked_before_anything_is_written(
    options: dict, error: type, mentions: str, session_detector, calibration: Path, tmp_path: Path
) -> None:
    options = {"calibration": calibration, **options} if options.get("calibration_frames") == 0 else options
    with pytest.raises(error, match=mentions) as raised:
        session_detector.export(dynamic_vocab=True, output=tmp_path / "out", **options)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_cli_half_and_int8_are_one_or_the_other(capfd) -> None:
    result = run_cli(["export", "--format", "openvino", "--dynamic-vocab", "--half", "--precision", "int8"], capfd)
    assert_error(result, 2, "--half", "int8")


def test_detect_converts_a_pt_to_int8_once_per_calibration(
    model_path: Path, calibration: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    monkeypatch.setenv("OVDET_COMPILED_DIR", str(tmp_path / "compiled"))
    run = ["detect", calibration, "--model", model_path, "--runtime", "openvino", "--classes", "bottle,person",
           "--imgsz", "160", "--conf", "0.01", "--precision", "int8", "--calibration", calibration,
           "--quiet"]  # fmt: skip
    for name in ("first.jsonl", "again.jsonl"):
        result = run_cli([*run, "--output", tmp_path / name], capfd)
        assert_clean_stderr(result)
        [converted] = (tmp_path / "compiled").iterdir()  # the second run reuses the first one's conversion
    assert "-int8-" in converted.name
    assert Artifact.open(converted, "openvino").metadata.precision == "int8"
    assert (tmp_path / "first.jsonl").read_bytes() == (tmp_path / "again.jsonl").read_bytes()
    assert len((tmp_path / "first.jsonl").read_text().splitlines()) == 24


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [
        (["--precision", "int8"], ["--calibration"]),
        (["--precision", "int8", "--half"], ["--half", "int8"]),
        (["--calibration", "{clip}"], ["--precision int8"]),
    ],
    ids=["int8-without-scenes", "int8-and-half", "scenes-without-int8"],
)
def test_detect_precision_flags_are_checked_first(flags: list[str], mentions: list[str], calibration: Path, capfd):
    flags = [flag.format(clip=calibration) for flag in flags]
    result = run_cli(["detect", calibration, "--classes", "bottle", "--no-save", *flags], capfd)
    assert_error(result, 2, *mentions)
