"""One precision flag everywhere: the same values on detect, export, bench and eval (``--half`` its alias), one-line
errors, the recommendation rule on known and generated cases, and a vocabulary's recorded precision."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ovdet import ConfigError, OpenVocabDetector, SourceError, VocabularyError
from ovdet.cli import build_parser
from ovdet.commands import precision_flags
from ovdet.core.precision import PRECISIONS, parse_precisions, precision_name, requested_precision
from ovdet.evaluation.precisions import MIN_AGREEMENT, MIN_FP32_MAP, PrecisionRun, recommend
from ovdet.export.quantize import calibration_digest
from ovdet.models import choose_precision
from ovdet.prompts.vocabulary import parse_classes
from ovdet.prompts.vocabulary_files import load_vocabulary
from tests.hostile.harness import assert_error, run_cli

COMMANDS = {
    "detect": ["detect", "clip.mp4", "--classes", "bottle"],
    "export": ["export", "--format", "openvino", "--dynamic-vocab"],
    "bench": ["bench", "clip.mp4"],
    "eval": ["eval", "--data", "labels.json", "--classes", "bottle"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", [*PRECISIONS, "BF16"])
def test_every_command_takes_the_same_precisions(command: str, value: str) -> None:
    args = build_parser().parse_args([*COMMANDS[command], "--precision", value])
    asked = args.precision if command != "eval" else args.precision[0]
    assert asked == value.lower()


@pytest.mark.parametrize("command", COMMANDS)
def test_half_is_bf16_everywhere(command: str) -> None:
    args = build_parser().parse_args([*COMMANDS[command], "--half"])
    assert precision_flags.requested(args) == "bf16"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", ["fp8", "half", "", "int8,fp4"])
def test_a_bad_precision_is_one_line(command: str, value: str, capfd) -> None:
    result = run_cli([*COMMANDS[command], "--precision", value], capfd)
    assert_error(result, 2, "--precision", "fp32, bf16, fp16, int8" if value.strip(",") else "fp32")


@pytest.mark.parametrize("command", ["detect", "bench", "export"])
def test_half_and_int8_are_one_or_the_other(command: str, capfd, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read")
    args = [str(clip) if arg == "clip.mp4" else arg for arg in COMMANDS[command]]
    result = run_cli([*args, "--half", "--precision", "int8", "--calibration", clip], capfd)
    assert_error(result, 2, "--half", "int8")


def test_eval_takes_a_list_and_keeps_its_order() -> None:
    args = build_parser().parse_args([*COMMANDS["eval"], "--precision", "int8, fp32,int8,bf16"])
    assert args.precision == ("int8", "fp32", "bf16")
    assert parse_precisions(" fp16 ") == ("fp16",)


def test_requested_precision_and_recorded_names() -> None:
    assert requested_precision(None, None) is None
    assert requested_precision("fp16", True) == "fp16"
    with pytest.raises(ConfigError, match="choose one") as raised:
        requested_precision("fp32", True)
    assert "\n" not in str(raised.value)
    assert [precision_name(name) for name in ("f32", "bf16", "f16", "FP32", "int8")] == [
        "fp32", "bf16", "fp16", "fp32", "int8"
    ]  # fmt: skip


def _run(precision: str, map50_95: float, fps: float, agreement: float = 1.0) -> PrecisionRun:
    return PrecisionRun(precision, precision, map50_95, map50_95, agreement, agreement, fps)


def test_recommendation_on_a_known_case() -> None:
    runs = [_run("fp32", 0.500, 9.0), _run("bf16", 0.495, 17.7), _run("fp16", 0.480, 18.0), _run("int8", 0.489, 31.0)]
    assert recommend(runs)[0] == "bf16"  # int8 loses 1.1 points, fp16 2; bf16 0.5
    assert recommend(runs, max_map_drop=1.2)[0] == "int8"
    assert recommend(runs, max_map_drop=0.1)[0] == "fp32"
    assert recommend([runs[0], _run("int8", 0.5, 31.0, agreement=0.0)])[0] == "fp32"  # same mAP, other boxes
    nothing = recommend([_run("fp32", math.nan, 9.0), _run("int8", math.nan, 30.0)])
    assert nothing[0] == "fp32" and nothing[1].startswith("cannot judge")  # nothing labelled
    assert recommend([_run("fp32", 0.5, 9.0), _run("bf16", 0.5, 9.0)])[0] == "fp32"  # as fast: the more precise


scores = st.floats(0, 1, allow_nan=False)
rates = st.floats(0.1, 1000, allow_nan=False)
shares = st.one_of(st.floats(0, 1, allow_nan=False), st.just(math.nan))


@given(
    fp32=st.tuples(scores, rates),
    others=st.dictionaries(
        st.sampled_from(PRECISIONS[1:]), st.tuples(st.one_of(scores, st.just(math.nan)), rates, shares, shares)
    ),
    drop=st.floats(0, 100, allow_nan=False),
)
def test_the_recommendation_is_the_fastest_that_stands_in_for_fp32(fp32, others, drop) -> None:
    runs = [PrecisionRun("fp32", "fp32", fp32[0], fp32[0], 1.0, 1.0, fp32[1])]
    runs += [PrecisionRun(p, p, score, score, kept, has, fps) for p, (score, fps, kept, has) in others.items()]
    chosen, verdict = recommend(runs, drop)
    if not (fp32[0] >= MIN_FP32_MAP and 100 * fp32[0] > drop):  # the labels cannot judge
        assert (chosen, verdict.startswith("cannot judge")) == ("fp32", True)
        return
    qualified = {"fp32"} | {
        run.precision
        for run in runs[1:]
        if 100 * (fp32[0] - run.map50_95) <= drop + 1e-9
        and not run.fp32_boxes_kept < MIN_AGREEMENT
        and not run.boxes_fp32_has < MIN_AGREEMENT
    }
    assert chosen in qualified  # never one that loses more than the drop or reports other boxes
    fps = {run.precision: run.fps for run in runs}
    assert fps[chosen] == max(fps[p] for p in qualified)


def _vocabulary(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tuned.yaml"
    path.write_text("classes:\n  bottle:\n" + text)
    return path


def test_a_vocabulary_records_its_precision_and_round_trips(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes.mp4"
    scenes.write_bytes(b"frames")
    digest = calibration_digest(scenes)
    vocabulary = load_vocabulary(_vocabulary(tmp_path, f"precision: int8\ncalibration: {scenes}\n"))
    assert (vocabulary.precision, vocabulary.calibration) == ("int8", str(scenes))
    saved = dataclasses.replace(vocabulary, calibration_digest=digest).save(tmp_path / "again.yaml")
    again = load_vocabulary(saved)
    assert (again.precision, again.calibration, again.calibration_digest) == ("int8", str(scenes), digest)
    assert again == dataclasses.replace(vocabulary, calibration_digest=digest)


@pytest.mark.parametrize(
    ("text", "line", "mentions"),
    [
        ("precision: int4\n", 3, "unknown: use one of fp32"),
        ("precision: int8\n", 3, "calibration"),
        ("calibration: scenes/\n", 3, "precision: int8"),
        ("precision: [int8]\n", 3, "must be text"),
        ("precision: int8\ncalibration: scenes/\ncalibration_digest: beef\n", 5, "64 hex digits"),
    ],
    ids=["unknown", "int8-without-scenes", "scenes-without-int8", "a-list", "short-digest"],
)
def test_precision_mistakes_in_a_vocabulary_name_the_line(tmp_path: Path, text: str, line: int, mentions: str):
    path = _vocabulary(tmp_path, text)
    with pytest.raises(VocabularyError, match=mentions) as raised:
        load_vocabulary(path)
    assert str(raised.value).startswith(f"{path}:{line}:") and "\n" not in str(raised.value)


def test_flags_override_the_vocabulary_and_fp32_is_the_default(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    vocabulary = load_vocabulary(_vocabulary(tmp_path, f"precision: int8\ncalibration: {scenes}\n"))
    assert choose_precision("w.pt", vocabulary=vocabulary).calibration == str(scenes)
    assert choose_precision("w.pt", "bf16", vocabulary=vocabulary).precision == "bf16"
    assert choose_precision("w.pt", half=True, vocabulary=vocabulary).precision == "bf16"
    assert choose_precision("w.pt", vocabulary=parse_classes("bottle")).precision == "fp32"
    with pytest.raises(ConfigError, match="--calibration"):
        choose_precision("w.pt", "int8")


def test_a_vocabulary_whose_scenes_are_gone_or_changed(tmp_path: Path, caplog) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "a.jpg").write_bytes(b"one")
    digest = calibration_digest(scenes)
    path = _vocabulary(tmp_path, f"precision: int8\ncalibration: {scenes}\ncalibration_digest: {digest}\n")
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        choose_precision("w.pt", vocabulary=load_vocabulary(path))
    assert not caplog.records
    (scenes / "b.jpg").write_bytes(b"two")
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        assert choose_precision("w.pt", vocabulary=load_vocabulary(path)).precision == "int8"
    assert "changed since ovdet eval" in caplog.text
    (scenes / "b.jpg").unlink()
    (scenes / "a.jpg").unlink()
    scenes.rmdir()
    with pytest.raises(SourceError, match="--precision fp32") as raised:
        choose_precision("w.pt", vocabulary=load_vocabulary(path))
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        ({"precision": "fp8"}, "unknown"),
        ({"precision": "int8", "half": True}, "choose one"),
        ({"precision": "int8"}, "--calibration"),
    ],
    ids=["unknown", "int8-and-half", "int8-without-scenes"],
)
def test_python_refuses_a_bad_precision_in_one_line(model_path: Path, options: dict, mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions) as raised:
        OpenVocabDetector(model_path, **options)
    assert "\n" not in str(raised.value)


def test_fp32_asked_of_an_int8_export_says_what_runs(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from types import SimpleNamespace

    from ovdet import models

    monkeypatch.setattr(models, "exported_metadata", lambda path: SimpleNamespace(precision="int8"))
    with caplog.at_level(logging.WARNING, logger="ovdet.models"):
        assert choose_precision("export-int8/model.xml", "fp32").precision == "fp32"
        assert choose_precision("export-int8/model.xml", "bf16").precision == "bf16"  # INT8, its rest in BF16
    assert [record.getMessage() for record in caplog.records] == [
        "model.xml was exported in INT8, so its convolutions run in INT8 (the rest in FP32): export it again without "
        "--precision int8 for FP32 throughout"
    ]
