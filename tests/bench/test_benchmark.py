"""``ovdet bench`` and the harness of ``benchmarks/`` run on a tiny clip and return well-formed results; agreement is
right on known answers.

No timing is asserted: the numbers belong to ``benchmarks/speed.py`` output.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from benchmarks.agreement import agreement, agreement_report, match_boxes
from benchmarks.compute import ModelFlops, add_compute, machine_peaks
from benchmarks.configs import default_configs, prompts
from benchmarks.tables import comparison_table, sweep_table
from ovdet import bench
from ovdet.bench import LoopedClip, RunConfig, Subject
from ovdet.cli import main
from ovdet.core.profiling import STAGES
from tests.media import small_frames, write_clip

CLASSES = ("bottle", "person")
TORCH = next(config for config in default_configs() if config.label == "ovdet torch")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real frames of the bottle clip, 192×112."""
    return write_clip(tmp_path_factory.mktemp("bench") / "tiny.mp4", small_frames(6))


@pytest.fixture(scope="module")
def measured(tiny_clip: Path, model_path: Path) -> bench.Measurement:
    """One ovdet configuration measured in its own worker process: 4 frames in 2 turns, detections at conf 0.05."""
    subject = Subject("ovdet torch", TORCH, str(model_path), CLASSES, str(tiny_clip), imgsz=320, warmup=1)
    return bench.measure([subject], frames=4, rounds=2, settle=0.0, agreement_confs=(0.05,), agreement_frames=2)


def detections(boxes: list[list[float]], scores: list[float], classes: list[int]) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.array(scores, dtype=np.float32),
        class_id=np.array(classes, dtype=np.int64),
    )


def test_measure_returns_a_well_formed_row(measured: bench.Measurement) -> None:
    (row,) = measured.rows
    assert "error" not in row, row.get("error")
    assert row["label"] == "ovdet torch" and row["runtime"] == "torch" and row["precision"] == "fp32"
    assert row["frames"] == 4 and row["fps"] > 0 and row["fps_best_turn"] >= row["fps"] * 0.999
    assert set(row["ms_per_frame"]) == set(STAGES)
    assert all(row["ms_per_frame"][stage] > 0 for stage in ("decode", "preprocess", "inference", "postprocess"))
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p95"]
    assert 0 <= row["overhead"] < 1
    assert row["input_shape"] == [192, 320] and row["classes"] == row["slots"] == 2
    assert row["peak_rss_mb"] >= row["rss_mb"] > 0
    assert row["set_classes_first_ms"] > 0 and row["set_classes_warm_ms"] > 0
    assert measured.load_average["before"] and measured.load_average["after"]


def perturbed(found: sv.Detections, *, score: float = 0.0, shift: bool = False) -> sv.Detections:
    """The same detections with every score raised by ``score``, or every box moved right by its own width."""
    xyxy = found.xyxy.copy()
    if shift:
        xyxy[:, [0, 2]] += (xyxy[:, 2] - xyxy[:, 0])[:, None]
    return sv.Detections(xyxy=xyxy, confidence=found.confidence + np.float32(score), class_id=found.class_id)


def test_measured_detections_show_a_known_perturbation(measured: bench.Measurement) -> None:
    frames = measured.detections["ovdet torch"][0.05]
    assert len(frames) == 2 and all(isinstance(found, sv.Detections) for found in frames)
    assert sum(len(found) for found in frames) > 0, "no box at conf 0.05: agreement would hold whatever it compares"
    runs = {
        "measured": frames,
        "rescored": [perturbed(found, score=0.1) for found in frames],
        "shifted": [perturbed(found, shift=True) for found in frames],
    }
    report = agreement_report({label: {0.05: found} for label, found in runs.items()},
                              [("rescored", "measured"), ("shifted", "measured")])  # fmt: skip
    rescored, shifted = report
    assert rescored["conf"] == 0.05 and rescored["matched_share"] == 1.0
    assert rescored["max_score_diff"] == pytest.approx(0.1, abs=1e-6)
    assert shifted["matched_share"] == 0.0 and shifted["max_score_diff"] is None


def test_compute_and_tables_from_measured_rows(measured: bench.Measurement, model_path: Path) -> None:
    rows = [dict(row) for row in measured.rows]
    add_compute(rows, ModelFlops(model_path), {"fp32": 100.0})
    assert rows[0]["gflops_per_frame"] > 1 and rows[0]["pct_of_peak"] > 0
    assert rows[0]["gflops_per_s"] == pytest.approx(rows[0]["gflops_per_frame"] * rows[0]["fps"])
    table = comparison_table([*rows, {"label": "broken", "error": "ValueError: no"}])
    assert table.count("\n") == 3 and "| ovdet torch | torch | fp32 | 192×320 |" in table
    assert "| broken | ValueError: no |" in table
    assert "| ovdet torch |" in sweep_table(rows, [("warm ms", "set_classes_warm_ms")])


def test_a_failing_configuration_becomes_an_error_row(tiny_clip: Path) -> None:
    broken = RunConfig("broken", options={"runtime": "no-such-runtime"})
    result = bench.measure([Subject("broken", broken, "yolov8s-worldv2", CLASSES, str(tiny_clip))], frames=1)
    assert result.rows[0]["label"] == "broken" and "runtime" in result.rows[0]["error"]


def test_looped_clip_keeps_counting_across_loops(tiny_clip: Path) -> None:
    frames = list(LoopedClip(tiny_clip, 14))
    assert [frame.index for frame in frames] == list(range(14))
    assert np.array_equal(frames[6].image, frames[0].image)


def test_prompts_are_distinct() -> None:
    names = prompts(1203)
    assert len(set(names)) == 1203 and names[:2] == ["person", "bicycle"]


def test_identical_detections_agree_fully() -> None:
    found = detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.5, 0.3], [0, 1])
    result = agreement([found], [found])
    assert result["matched_share"] == 1.0 and result["max_score_diff"] == 0.0 and result["matched"] == 2


def test_shifted_or_relabelled_boxes_do_not_match() -> None:
    reference = detections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.5, 0.3], [0, 1])
    shifted = detections([[2, 0, 12, 10], [20, 20, 40, 40]], [0.5, 0.3], [0, 0])  # IoU 0.67; the other relabelled
    result = agreement([reference], [shifted])
    assert result["matched_share"] == 0.0 and result["max_score_diff"] is None


def test_partial_agreement_counts_the_larger_side_per_frame() -> None:
    reference = [detections([[0, 0, 100, 100]], [0.5], [0]), detections([], [], [])]
    candidate = [detections([[0, 0, 100, 101]], [0.45], [0]), detections([[5, 5, 9, 9]], [0.2], [0])]
    result = agreement(reference, candidate)
    assert result["matched"] == 1 and result["matched_share"] == 0.5
    assert result["max_score_diff"] == pytest.approx(0.05, abs=1e-6)


def test_matching_is_greedy_by_iou() -> None:
    reference = detections([[0, 0, 100, 100]], [0.5], [0])
    candidate = detections([[0, 0, 100, 105], [0, 0, 100, 101]], [0.4, 0.45], [0, 0])
    assert match_boxes(reference, candidate) == [(0, 1)]


def test_no_boxes_on_either_side_is_full_agreement() -> None:
    empty = detections([], [], [])
    assert agreement([empty], [empty])["matched_share"] == 1.0


def test_machine_peaks_take_the_fastest_measurement() -> None:
    peaks = machine_peaks({"fp32": {"a": 1.0, "b": 3.0}}, {"fp32": {"a": 2.0}, "bf16": {"a": 5.0}})
    assert peaks == {"fp32": 3.0, "bf16": 5.0}


def test_cli_bench_with_ultralytics_baseline(tiny_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", str(tiny_clip), "--classes", "bottle", "--frames", "2", "--imgsz", "320",
                 "--runtime", "torch", "--rounds", "1", "--compare-ultralytics"])  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0
    assert "ultralytics torch (torch fp32, input 192×320" in output
    assert "ovdet (torch fp32, input 192×320, batch 1)" in output and "write" in output
    assert "ovdet / Ultralytics PyTorch:" in output


def test_cli_bench_live_counts_every_paced_frame(tiny_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The clip arrives at its frame rate; each of its frames is either processed or dropped as stale."""
    code = main(["bench", str(tiny_clip), "--classes", "bottle", "--frames", "12", "--imgsz", "160",
                 "--runtime", "torch", "--live"])  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0
    dropped, processed = map(int, re.search(r"live: (\d+) stale frame\(s\) dropped, (\d+) processed", output).groups())
    assert dropped + processed == 12 and processed >= 1
    assert re.search(r"over \d+ frames", output) and "latency p50" in output


def test_cli_bench_live_is_not_compared_with_ultralytics(tiny_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tiny_clip), "--live", "--compare-ultralytics"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ovdet: error: --live") and "\n" not in error


def test_cli_bench_refuses_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tmp_path / "missing.mp4")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("ovdet: error:") and "missing.mp4" in error and "\n" not in error
