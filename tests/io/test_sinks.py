"""Everything after the model, on detections hypothesis makes up: empty frames, single boxes, boxes on the edges,
degenerate boxes, long gaps, class names a spreadsheet would run — through tracker → events → every sink →
annotators. The files must agree with each other and with what went in."""

from __future__ import annotations

import csv
import json
import tempfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import supervision as sv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovdet.io.sinks import Annotator, CocoSink, CsvSink, EventsSink, JsonlSink, spreadsheet_safe
from ovdet.io.sources import Frame
from ovdet.io.video import AnnotatedVideoSink
from ovdet.vision.tracking import Tracker, lost_track_frames
from tests.hostile.harness import assert_valid_output, decoded_frames

NAMES = ["person", '=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "infusion pump, IV", 'say "hi"', "ñandú 🦙"]


@st.composite
def frame_detections(draw, width: int, height: int) -> sv.Detections:
    count = draw(st.integers(0, 4))
    if count == 0:
        return _detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))
    xs = draw(st.lists(st.tuples(st.integers(0, width), st.integers(0, width)), min_size=count, max_size=count))
    ys = draw(st.lists(st.tuples(st.integers(0, height), st.integers(0, height)), min_size=count, max_size=count))
    boxes = np.array([[min(x), min(y), max(x), max(y)] for x, y in zip(xs, ys)], dtype=float)
    confidence = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=count, max_size=count)))
    class_id = np.array(draw(st.lists(st.integers(0, len(NAMES) - 1), min_size=count, max_size=count)))
    return _detections(boxes, confidence, class_id)


def _detections(boxes: np.ndarray, confidence: np.ndarray, class_id: np.ndarray) -> sv.Detections:
    names = np.array([NAMES[i] for i in class_id], dtype=object).astype(str) if len(class_id) else np.array([], str)
    return sv.Detections(xyxy=boxes, confidence=confidence, class_id=class_id, data={"class_name": names})


@st.composite
def runs(draw):
    """A source: frame size, frame rate, and per frame its detections and the gap before it (long ones included)."""
    width, height = draw(st.sampled_from([(32, 24), (64, 48), (2, 2)]))
    fps = draw(st.sampled_from([1, 5, 25]))
    frames = draw(st.lists(frame_detections(width, height), min_size=1, max_size=14))
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 40]), min_size=len(frames), max_size=len(frames)))
    return width, height, fps, frames, gaps


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_tracker_events_sinks_and_annotators_agree(run) -> None:
    width, height, fps, frames, gaps = run
    tracker = Tracker(fps=fps, threshold=0.25)
    annotator = Annotator()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        sinks = [JsonlSink(out / "o.jsonl"), CsvSink(out / "o.csv"), CocoSink(out / "c.json", NAMES),
                 EventsSink(out / "ev.jsonl", lost_track_frames(fps)),
                 AnnotatedVideoSink(out / "o.mp4", Fraction(fps))]  # fmt: skip
        index = -1
        for detections, gap in zip(frames, gaps):
            index += gap
            frame = Frame(np.full((height, width, 3), 90, np.uint8), index, index / fps, "clip.mp4")
            tracked = tracker.update(detections, frame.timestamp)
            assert len(tracked) <= len(detections) and "class_name" in tracked.data
            assert annotator.draw(frame.image, tracked).shape == frame.image.shape
            for sink in sinks:
                sink.write(frame, tracked)
        for sink in sinks:
            sink.close()
        for name in ("o.jsonl", "o.csv", "c.json", "c.categories.json", "ev.jsonl"):
            assert_valid_output(out / name)
        _check_agreement(out, len(frames))


def _check_agreement(out: Path, frame_count: int) -> None:
    records = [json.loads(line) for line in (out / "o.jsonl").read_text().splitlines()]
    assert len(records) == frame_count and [r["frame"] for r in records] == sorted({r["frame"] for r in records})
    assert decoded_frames(out / "o.mp4") == frame_count
    boxes = [(r["frame"], d) for r in records for d in r["detections"]]
    rows = list(csv.DictReader((out / "o.csv").read_text(encoding="utf-8").splitlines()))
    coco = json.loads((out / "c.json").read_text())
    meta = json.loads((out / "c.categories.json").read_text())
    category = {c["id"]: c["name"] for c in meta["categories"]}
    assert len(rows) == len(coco) == len(boxes)
    for (frame, box), row, result in zip(boxes, rows, coco):
        assert int(row["frame"]) == frame == meta["images"][result["image_id"] - 1]["frame"]
        assert [float(row[k]) for k in ("x1", "y1", "x2", "y2")] == box["xyxy"]
        assert (
            row["class_name"] == spreadsheet_safe(box["class_name"])
            and category[result["category_id"]] == box["class_name"]
        )
        x1, y1, x2, y2 = box["xyxy"]
        assert result["bbox"] == [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)] and result["score"] == box["confidence"]
        assert (row["track_id"] or None) == (None if box["track_id"] is None else str(box["track_id"]))
    _check_events_lie_within_tracks(out, boxes)


def _check_events_lie_within_tracks(out: Path, boxes: list) -> None:
    seen: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for frame, box in boxes:
        if box["track_id"] is not None:
            seen[box["track_id"]].append((frame, box["confidence"]))
    events = [json.loads(line) for line in (out / "ev.jsonl").read_text().splitlines()]
    assert {e["track_id"] for e in events} == set(seen)
    for track_id, appearances in seen.items():
        frames = [frame for frame, _ in appearances]
        assert len(frames) == len(set(frames)), "a track is in a frame at most once"
        spans = sorted((e for e in events if e["track_id"] == track_id), key=lambda e: e["first_seen"]["frame"])
        assert sum(e["frames_seen"] for e in spans) == len(frames)
        for event in spans:
            inside = [c for f, c in appearances if event["first_seen"]["frame"] <= f <= event["last_seen"]["frame"]]
            assert len(inside) == event["frames_seen"] and event["first_seen"]["frame"] in frames
            assert event["best_confidence"] == max(inside)


@given(st.text(max_size=12))
def test_spreadsheet_safe_cells_never_start_a_formula(text: str) -> None:
    cell = spreadsheet_safe(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell.removeprefix("'") == text or cell == text


def test_csv_escapes_formulas_in_class_names_and_sources(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "o.csv")
    frame = Frame(np.zeros((8, 8, 3), np.uint8), 0, None, "=cmd|' /C calc'!A0.jpg")
    detections = _detections(np.array([[1.0, 1, 4, 4]]), np.array([0.5]), np.array([1]))
    sink.write(frame, detections)
    sink.close()
    row = next(csv.DictReader((tmp_path / "o.csv").read_text().splitlines()))
    assert row["source"] == "'=cmd|' /C calc'!A0.jpg" and row["class_name"] == "'" + NAMES[1]


def test_coco_keeps_results_when_the_vocabulary_changes(tmp_path: Path) -> None:
    from ovdet.prompts.vocabulary import parse_classes

    sink = CocoSink(tmp_path / "c.json")
    sink.use_vocabulary(parse_classes("person"))
    first = _detections(np.array([[1.0, 1, 4, 4]]), np.array([0.5]), np.array([0]))
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, "v.mp4"), first)
    sink.use_vocabulary(parse_classes("forklift, person"))  # a live reload
    second = sv.Detections(xyxy=np.array([[2.0, 2, 6, 6]]), confidence=np.array([0.7]), class_id=np.array([0]),
                           data={"class_name": np.array(["forklift"])})  # fmt: skip
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 1, 0.04, "v.mp4"), second)
    sink.close()
    results = json.loads((tmp_path / "c.json").read_text())
    categories = json.loads((tmp_path / "c.categories.json").read_text())["categories"]
    assert [r["image_id"] for r in results] == [1, 2]
    assert [categories[r["category_id"] - 1]["name"] for r in results] == ["person", "forklift"]
