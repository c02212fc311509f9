"""``ovdet eval --precision fp32,bf16,int8`` on a small labelled set made here, its report and its recommendation
written into the vocabulary; ``ovdet detect --vocab`` (and ``OpenVocabDetector(vocabulary=...)``) then running in
the precision the vocabulary records. Random weights find noise: these tests check the comparison's figures
against each other and the files, not a good mAP."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest

from ovdet import OpenVocabDetector
from ovdet.cli import main
from ovdet.evaluation.precisions import MIN_AGREEMENT, MIN_FP32_MAP, PrecisionRun, recommend
from ovdet.export.quantize import calibration_digest
from ovdet.prompts.vocabulary import parse_classes
from ovdet.prompts.vocabulary_files import load_vocabulary
from ovdet.runtimes.converted import compiled_dir
from tests.hostile.harness import assert_error, run_cli
from tests.labelled_data import make_labelled_set, write_coco
from tests.media import small_frames, write_clip

IMGSZ = "160"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("scenes") / "scenes.mp4", small_frames(8))


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    write_coco(make_labelled_set(4), root)
    return root / "annotations.json"


@pytest.fixture(scope="module")
def compared(
    labels: Path, scenes: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory, _module_cache_dir: Path
) -> dict:
    """One ``ovdet eval`` comparing FP32, BF16 (as --half) and INT8, with a report and a written vocabulary; the
    module's tests share its embedding cache, and the INT8 conversion it makes (same weights, scenes, frames)."""
    out = tmp_path_factory.mktemp("eval")
    args = ["eval", "--data", labels, "--classes", "bottle,person", "--model", model_path, "--imgsz", IMGSZ,
            "--device", "cpu", "--conf", "0.05", "--precision", "int8", "--half", "--calibration", scenes,
            "--report", out / "report", "--write-vocab", out / "tuned.yaml"]  # fmt: skip
    console = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(console):
        patch.setenv("OVDET_CACHE_DIR", str(_module_cache_dir))
        code = main([str(arg) for arg in args])
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    converted = sorted(path.name for path in compiled_dir().glob(f"{model_path.stem}-*"))
    return {"code": code, "metrics": metrics, "vocabulary": out / "tuned.yaml", "report": out / "report",
            "converted": converted, "console": console.getvalue()}  # fmt: skip


def test_each_precision_is_measured_against_fp32(compared: dict) -> None:
    assert compared["code"] == 0
    comparison = compared["metrics"]["precisions"]
    runs = {run["precision"]: run for run in comparison["runs"]}
    assert list(runs) == ["fp32", "int8", "bf16"]  # FP32 first, then as asked
    assert (runs["fp32"]["fp32_boxes_kept"], runs["fp32"]["boxes_fp32_has"]) == (1.0, 1.0)
    assert runs["int8"]["computed"] == "int8" and runs["fp32"]["computed"] == "fp32"
    assert runs["bf16"]["computed"] in ("bf16", "fp32")  # FP32 on a CPU without BF16 units
    for run in runs.values():
        assert 0 <= run["map50_95"] <= run["map50"] <= 1 and run["fps"] > 0
        assert all(0 <= run[key] <= 1 for key in ("fp32_boxes_kept", "boxes_fp32_has") if run[key] is not None)
    again = recommend([PrecisionRun(**run) for run in comparison["runs"]], comparison["max_map_drop"])
    assert (comparison["recommended"], comparison["verdict"]) == again and comparison["max_map_drop"] == 1
    assert (comparison["min_agreement"], comparison["min_fp32_map"]) == (MIN_AGREEMENT, MIN_FP32_MAP)
    assert "## Numeric precision" in (compared["report"] / "report.md").read_text()


def test_labels_fp32_scores_nothing_on_judge_no_precision(compared: dict) -> None:
    """The random-init model scores about nothing on any labels: every precision was "within 1 point" of FP32, and
    INT8, the fastest, was recommended though it reported none of FP32's boxes. Now FP32 is kept, and every place
    the recommendation shows says the labels cannot judge."""
    comparison = compared["metrics"]["precisions"]
    assert comparison["runs"][0]["map50_95"] < MIN_FP32_MAP, "the premise: FP32 scores about nothing here"
    assert comparison["recommended"] == "fp32"
    assert comparison["verdict"].startswith("cannot judge: the mAP50-95 of fp32 is")
    assert f"recommended precision: fp32 ({comparison['verdict']})" in compared["console"]
    assert "**fp32**: cannot judge" in (compared["report"] / "report.md").read_text()
    assert load_vocabulary(compared["vocabulary"]).precision is None
    assert "precision fp32 (cannot judge" in compared["vocabulary"].read_text()


def _run(precision: str, map50_95: float, kept: float, has: float, fps: float) -> PrecisionRun:
    return PrecisionRun(precision, precision, map50_95, map50_95 + 0.2, kept, has, fps)


FP32 = _run("fp32", 0.40, 1.0, 1.0, 10.0)


RECOMMENDATIONS = {
    "no-agreement-within-the-drop": ([FP32, _run("int8", 0.4, 0.0, 0.0, 30)], 1, "fp32", "int8 keeps 0% of fp32's"),
    "extra-boxes": ([FP32, _run("int8", 0.4, 0.95, 0.5, 30)], 1, "fp32", "(50% are fp32's, 90% needed)"),
    "misses-boxes": ([FP32, _run("int8", 0.4, 0.89, 0.95, 30)], 1, "fp32", "keeps 89% of fp32's boxes (90% needed)"),
    "over-the-drop": ([FP32, _run("int8", 0.38, 0.95, 0.95, 30)], 1, "fp32", "loses 2.0 mAP50-95 points (1 allowed)"),
    "drop-allowed": ([FP32, _run("int8", 0.38, 0.95, 0.95, 30)], 2.5, "int8", "the fastest within 2.5 mAP50-95"),
    "fastest-that-agrees": (
        [FP32, _run("bf16", 0.4, 0.9, 0.9, 20), _run("int8", 0.4, 0.2, 0.9, 30)],
        1,
        "bf16",
        "at least 90%",
    ),
    "not-faster": ([FP32, _run("bf16", 0.4, 1.0, 1.0, 9)], 1, "fp32", "bf16 is not faster"),
    "neither-reports-a-box": ([FP32, _run("bf16", 0.4, math.nan, math.nan, 20)], 1, "bf16", "the fastest"),
    "fp32-scores-about-nothing": ([_run("fp32", 0.001, 1, 1, 10), _run("int8", 0, 0, 0, 30)], 1, "fp32", "under 0.05"),
    "fp32-scores-0": ([_run("fp32", 0, math.nan, math.nan, 10), _run("int8", 0, 0, 0, 30)], 0, "fp32", "0.000"),
    "nothing-labelled": ([_run("fp32", math.nan, 1, 1, 10), _run("int8", math.nan, 1, 1, 30)], 1, "fp32", "nothing"),
    "drop-as-large-as-fp32-s-map": ([FP32, _run("int8", 0, 1, 1, 30)], 40, "fp32", "no more than the 40 point(s)"),
    "fp32-alone": ([FP32], 1, "fp32", "nothing else compared"),
}


@pytest.mark.parametrize("case", sorted(RECOMMENDATIONS))
def test_a_precision_stands_in_for_fp32_only_within_the_drop_and_agreeing(case: str) -> None:
    runs, max_map_drop, expected, verdict = RECOMMENDATIONS[case]
    chosen, why = recommend(runs, max_map_drop)
    assert chosen == expected and verdict in why, why
    assert why.startswith("cannot judge") == (not runs[0].map50_95 >= MIN_FP32_MAP or max_map_drop >= 40)


def test_eval_s_detect_task_on_a_detection_model_converts_nothing_apart(compared: dict) -> None:
    """eval asks for task detect, which a detection model does anyway: its conversions are the ones ovdet detect
    uses, not copies cached under another name."""
    assert compared["converted"] and not any(name.endswith("-detect") for name in compared["converted"])


def test_the_recommendation_is_written_into_the_vocabulary(compared: dict, scenes: Path) -> None:
    recommended = compared["metrics"]["precisions"]["recommended"]
    vocabulary = load_vocabulary(compared["vocabulary"])
    assert vocabulary.precision == (None if recommended == "fp32" else recommended)
    if recommended == "int8":
        assert (vocabulary.calibration, vocabulary.calibration_digest) == (str(scenes), calibration_digest(scenes))
    assert compared["metrics"]["precisions"]["calibration_digest"] == calibration_digest(scenes)


@pytest.fixture
def int8_vocabulary(tmp_path: Path, scenes: Path) -> Path:
    path = tmp_path / "tuned.yaml"
    digest = calibration_digest(scenes)
    path.write_text(f"classes:\n  bottle:\nprecision: int8\ncalibration: {scenes}\ncalibration_digest: {digest}\n")
    return path


def test_detect_runs_in_the_precision_the_vocabulary_records(
    int8_vocabulary: Path, scenes: Path, model_path: Path, tmp_path: Path, capfd, compared, module_embedding_cache
) -> None:
    output = tmp_path / "out.jsonl"
    run = ["detect", scenes, "--vocab", int8_vocabulary, "--model", model_path, "--imgsz", IMGSZ, "--conf", "0.01",
           "--device", "cpu", "--output", output]  # fmt: skip
    result = run_cli(run, capfd)
    assert result.code == 0, result.err
    assert f"precision int8, as {int8_vocabulary} records, calibrated on {scenes}" in result.err
    assert len(output.read_text().splitlines()) == 8


def test_python_takes_the_vocabulary_and_its_precision(
    int8_vocabulary: Path, model_path: Path, compared, module_embedding_cache
) -> None:
    detector = OpenVocabDetector(model_path, device="cpu", imgsz=int(IMGSZ), vocabulary=int8_vocabulary)
    assert (detector.precision, detector.backend.precision, detector.classes) == ("int8", "int8", ("bottle",))
    overridden = OpenVocabDetector(
        model_path, device="cpu", vocabulary=load_vocabulary(int8_vocabulary), precision="fp32"
    )
    assert (overridden.precision, overridden.calibration) == ("fp32", None)
    plain = OpenVocabDetector(model_path, device="cpu", vocabulary=parse_classes("bottle"))
    assert (plain.precision, plain.backend.precision) == ("fp32", "fp32")


def test_a_vocabulary_whose_scenes_are_missing_is_one_line(int8_vocabulary: Path, capfd) -> None:
    moved = int8_vocabulary.read_text().replace("calibration: ", "calibration: /nowhere")
    int8_vocabulary.write_text(moved)
    result = run_cli(["detect", "x.mp4", "--vocab", int8_vocabulary, "--no-save"], capfd)
    assert_error(result, 1, str(int8_vocabulary), "/nowhere", "--precision fp32")


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [
        (["--precision", "fp32,int8"], ["--calibration", "labelled"]),
        (["--precision", "bf16", "--calibration", "{scenes}"], ["--calibration", "int8"]),
        (["--max-map-drop", "1"], ["--precision"]),
        (["--precision", "int8", "--calibration", "{scenes}", "--max-map-drop", "-1"], ["--max-map-drop"]),
    ],
    ids=["int8-without-scenes", "scenes-without-int8", "drop-without-comparison", "negative-drop"],
)
def test_eval_precision_mistakes_are_one_line_before_work(flags, mentions, labels: Path, scenes: Path, capfd):
    flags = [flag.format(scenes=scenes) for flag in flags]
    result = run_cli(["eval", "--data", labels, "--classes", "bottle,person", *flags], capfd)
    assert_error(result, 2, *mentions)
