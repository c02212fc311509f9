"""detector.stream and the sinks: every frame once and in order, vocabulary changes mid-stream, tracking."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from pycocotools.coco import COCO

from ovdet.io.sinks import CocoSink, CsvSink, EventsSink, JsonlSink
from ovdet.io.sources import open_source
from ovdet.io.video import AnnotatedVideoSink
from ovdet.run.writer import SinkWriter
from tests.conftest import PEOPLE_GIF
from tests.media import small_frames, write_clip

SETTINGS = {"conf": 0.05, "imgsz": 320}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", small_frames(24, people=True))


def test_every_frame_once_in_order_for_any_batch(detector, clip: Path) -> None:
    one = [(f.index, d.xyxy.copy()) for f, d in detector.stream(clip, batch=1, **SETTINGS)]
    five = [(f.index, d.xyxy.copy()) for f, d in detector.stream(clip, batch=5, **SETTINGS)]
    assert [i for i, _ in one] == [i for i, _ in five] == list(range(24))
    for (_, a), (_, b) in zip(one, five):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_vid_stride_processes_exactly_the_selected_frames(detector) -> None:
    indices = [frame.index for frame, _ in detector.stream(PEOPLE_GIF, vid_stride=4, batch=3, **SETTINGS)]
    assert indices == [0, 4, 8, 12, 16, 20]


def test_set_classes_between_frames_applies_to_the_next_frame(detector, clip: Path) -> None:
    seen = []
    stream = detector.stream(clip, batch=4, track=True, **SETTINGS)
    for frame, detections in stream:
        seen.append((frame.index, set(detections.data["class_name"]), detections.tracker_id.copy()))
        if frame.index == 5:
            detector.set_classes(["label", "cap"])
    assert [index for index, _, _ in seen] == list(range(24))
    assert all(names <= {"bottle", "person", "red backpack"} for _, names, _ in seen[:6])
    assert all(names <= {"label", "cap"} and names for _, names, _ in seen[6:])
    ids_before = {int(i) for _, _, ids in seen[:6] for i in ids if i >= 0}
    ids_after = {int(i) for _, _, ids in seen[6:] for i in ids if i >= 0}
    assert ids_before and ids_after and not ids_before & ids_after, "the restarted tracker never reuses an id"


def test_tracking_gives_stable_ids(detector, clip: Path) -> None:
    tracked = [d for _, d in detector.stream(clip, track=True, **SETTINGS)]
    ids = [set(d.tracker_id[d.tracker_id >= 0].tolist()) for d in tracked]
    assert any(ids)
    persistent = set.intersection(*[s for s in ids[5:] if s]) if any(ids[5:]) else set()
    assert persistent, "some track keeps its id through the clip"


def test_sinks_write_valid_files(detector, clip: Path, tmp_path: Path) -> None:
    source = open_source(clip)
    paths = {name: tmp_path / name for name in ("out.jsonl", "out.csv", "coco.json", "events.jsonl", "out.mp4")}
    sinks = [
        JsonlSink(paths["out.jsonl"]),
        CsvSink(paths["out.csv"]),
        CocoSink(paths["coco.json"], detector.classes),
        EventsSink(paths["events.jsonl"], end_after=3),
        AnnotatedVideoSink(paths["out.mp4"], source.fps),
    ]
    with SinkWriter(sinks) as writer:
        for frame, detections in detector.stream(source, track=True, **SETTINGS):
            writer.put(frame, detections)

    records = [json.loads(line) for line in paths["out.jsonl"].read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(24))
    assert records[1]["timestamp"] == pytest.approx(1 / 25)
    boxes = sum(len(r["detections"]) for r in records)

    rows = paths["out.csv"].read_text().splitlines()
    assert rows[0] == "source,frame,timestamp,x1,y1,x2,y2,confidence,class_id,class_name,track_id"
    assert len(rows) - 1 == boxes

    coco = COCO()
    meta = json.loads((tmp_path / "coco.categories.json").read_text())
    coco.dataset = {"images": meta["images"], "categories": meta["categories"], "annotations": []}
    coco.createIndex()
    results = coco.loadRes(str(paths["coco.json"]))
    assert len(results.anns) == boxes
    assert [c["name"] for c in meta["categories"]] == list(detector.classes)

    events = [json.loads(line) for line in paths["events.jsonl"].read_text().splitlines()]
    assert events and len({e["track_id"] for e in events}) == len(events)
    for event in events:
        assert event["first_seen"]["frame"] <= event["last_seen"]["frame"]
        assert 1 <= event["frames_seen"] <= event["last_seen"]["frame"] - event["first_seen"]["frame"] + 1
        assert event["class_name"] in detector.classes and len(event["best_box"]) == 4

    with av.open(str(paths["out.mp4"])) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (192, 112, 25)
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 24


def test_source_errors_reach_the_consumer(detector, tmp_path: Path) -> None:
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(4000))
    from ovdet import SourceError

    with pytest.raises(SourceError):
        list(detector.stream(noise, **SETTINGS))
