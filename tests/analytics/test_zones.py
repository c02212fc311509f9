"""Zones and lines on a real clip, end to end: one ``ovdet detect`` run with a zones file, rules, a loopback webhook,
crops, a summary, JSONL and annotated video. Every zone membership and line count in the JSONL equals what
supervision's ``PolygonZone`` and ``LineZone`` give when recomputed from the JSONL's own boxes."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from ovdet.analytics.zones import Geometry, ZoneCounter, ZoneSpec
from ovdet.analytics.zones_yaml import MAX_ZONE_POINTS, parse_zones_yaml
from ovdet.core.errors import ZonesError
from tests.conftest import BOTTLES, read_frames
from tests.hostile.harness import assert_clean_stderr, assert_valid_output, decoded_frames, run_cli
from tests.io.test_alerts import _Server
from tests.media import write_clip

FRAMES = 24
# Random weights find boxes wherever they like: a grid of lines makes sure some are crossed, whatever the weights.
GRID = {f"{axis}{step}": ((step / 20, 0), (step / 20, 1)) if axis == "x" else ((0, step / 20), (1, step / 20))
        for axis in "xy" for step in range(1, 20)}  # fmt: skip
WARD = (
    """\
units: fractions
zones:
  bay: [[0, 0.3], [0.5, 0.3], [0.5, 1], [0, 1]]
  door side: [[0.6, 0], [1, 0], [1, 1], [0.6, 1]]
lines:
  door: [[0.5, 0], [0.5, 1]]
"""
    + "".join(f"  {name}: [[{a[0]}, {a[1]}], [{b[0]}, {b[1]}]]\n" for name, (a, b) in GRID.items())
    + """\
rules:
  seen in bay: {appears: bottle, zone: bay, cooldown: 0.3}
  waits: {dwell: bottle, zone: bay, seconds: 0.2}
  bottle passes: {crosses: bottle, line: door}
  person passes: {crosses: person, line: door}
"""
)


def _panned_frames(count: int) -> list[np.ndarray]:
    """The bottle clip's first frame, the camera panning right 12 px a frame: every box in it moves across the door."""
    frame = cv2.resize(read_frames(BOTTLES, 1)[0], (320, 180))
    return [np.roll(frame, 12 * index, axis=1) for index in range(count)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ward")
    write_clip(folder / "ward.mp4", _panned_frames(FRAMES))
    (folder / "ward.yaml").write_text(WARD)
    return folder / "ward.mp4"


def _ward_run(clip: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> dict:
    """One CLI run with every analytics flag; returns the paths, the run's result and what the webhook received."""
    paths = {name: tmp_path / name for name in ("o.jsonl", "o.mp4", "alerts.jsonl", "crops", "summary.json")}
    server = _Server()
    try:
        result = run_cli([
            "detect", clip, "--classes", "bottle,person", "--conf", "0.01", "--imgsz", 160,
            "--zones", clip.with_suffix(".yaml"), "--output", paths["o.jsonl"], "--output", paths["o.mp4"],
            "--alerts", paths["alerts.jsonl"], "--webhook", server.url, "--save-crops", paths["crops"],
            "--summary", paths["summary.json"], "--quiet",
        ], capfd)  # fmt: skip
    finally:
        server.close()
    assert not assert_clean_stderr(result)
    for name in ("o.jsonl", "alerts.jsonl", "summary.json"):
        assert_valid_output(paths[name])
    records = [json.loads(line) for line in paths["o.jsonl"].read_text().splitlines()]
    alerts = [json.loads(line) for line in paths["alerts.jsonl"].read_text().splitlines()]
    return {"result": result, "records": records, "alerts": alerts, "received": server.bodies, **paths}


def test_ward_run_end_to_end(clip: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    ward = _ward_run(clip, tmp_path, capfd)
    assert decoded_frames(ward["o.mp4"]) == FRAMES
    assert len(ward["records"]) == FRAMES
    _check_zones_and_lines_equal_supervision_recomputed(ward)
    _check_alerts_in_the_file_and_at_the_webhook_with_their_crops(ward)
    _check_every_finished_track_has_one_crop(ward)
    _check_summary_matches_the_jsonl_and_the_alerts(ward)


def _detections(record: dict) -> sv.Detections:
    rows = record["detections"]
    if not rows:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([row["xyxy"] for row in rows], dtype=float),
        confidence=np.array([row["confidence"] for row in rows]),
        class_id=np.array([row["class_id"] for row in rows]),
        tracker_id=np.array([-1 if row["track_id"] is None else row["track_id"] for row in rows]),
    )


def _check_zones_and_lines_equal_supervision_recomputed(ward: dict) -> None:
    width, height = ward["records"][0]["width"], ward["records"][0]["height"]
    bay = sv.PolygonZone(np.array([[0, 0.3 * height], [0.5 * width, 0.3 * height], [0.5 * width, height],
                                   [0, height]]).round().astype(int))  # fmt: skip
    door_side = sv.PolygonZone(
        np.array([[0.6 * width, 0], [width, 0], [width, height], [0.6 * width, height]]).round().astype(int)
    )
    lines = {"door": ((0.5, 0), (0.5, 1)), **GRID}
    lines = {
        name: sv.LineZone(*(sv.Point(round(x * width), round(y * height)) for x, y in ends))
        for name, ends in lines.items()
    }
    memberships = Counter()
    for record in ward["records"]:
        detections = _detections(record)
        in_bay = bay.trigger(detections) if len(detections) else []
        by_door = door_side.trigger(detections) if len(detections) else []
        for line in lines.values():
            line.trigger(detections)
        expected = [[name for name, hit in (("bay", a), ("door side", b)) if hit] for a, b in zip(in_bay, by_door)]
        assert [row["zones"] for row in record["detections"]] == expected
        names = [row["class_name"] for row in record["detections"]]
        assert record["zones"]["bay"] == dict(Counter(n for n, hit in zip(names, in_bay) if hit))
        assert record["lines"] == {name: {"in": line.in_count, "out": line.out_count} for name, line in lines.items()}
        memberships.update(name for zones in expected for name in zones or ["none"])
    assert min(memberships["bay"], memberships["door side"], memberships["none"]) > 0, memberships
    # Whether random weights' tracks cross a line depends on the numeric set-up (threads, load); counts that are
    # certain to be non-zero are checked by test_line_counts_in_the_jsonl_equal_supervision_for_known_tracks.


def _check_alerts_in_the_file_and_at_the_webhook_with_their_crops(ward: dict) -> None:
    alerts = ward["alerts"]
    assert {"seen in bay", "waits"} <= {alert["rule"] for alert in alerts}
    crossings = ward["records"][-1]["lines"]["door"]
    assert sum(alert["kind"] == "crosses" for alert in alerts) == crossings["in"] + crossings["out"]
    assert sorted(ward["received"], key=lambda a: (a["frame"], a["rule"], a["track_id"] or -1)) == sorted(
        alerts, key=lambda a: (a["frame"], a["rule"], a["track_id"] or -1)
    )
    for alert in alerts:
        assert Path(alert["crop"]).is_file() and Path(alert["crop"]).parent == ward["crops"]
    timestamps = [alert["timestamp"] for alert in alerts if alert["rule"] == "seen in bay"]
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(timestamps)), "the cooldown holds"
    by_frame = {record["frame"]: record for record in ward["records"]}
    for alert in alerts:
        expected = [alert[key] for key in ("box", "confidence", "class_name", "track_id")]
        keys = ("xyxy", "confidence", "class_name", "track_id")
        behind = [row for row in by_frame[alert["frame"]]["detections"] if [row[key] for key in keys] == expected]
        assert behind, f"no detection behind {alert}"
        assert alert["kind"] == "crosses" or any("bay" in row["zones"] for row in behind)


def _check_every_finished_track_has_one_crop(ward: dict) -> None:
    names: dict[int, set[str]] = {}
    for record in ward["records"]:
        for row in record["detections"]:
            if row["track_id"] is not None:
                names.setdefault(row["track_id"], set()).add(row["class_name"])
    crops = {int(path.name[6:12]): path.name[13:-4] for path in ward["crops"].glob("track-*.jpg")}
    assert set(crops) == set(names)
    assert all(crops[track] in names[track] for track in crops)


def _check_summary_matches_the_jsonl_and_the_alerts(ward: dict) -> None:
    summary = json.loads(ward["summary.json"].read_text())
    records = ward["records"]
    assert summary["frames"] == len(records)
    bottle = summary["classes"]["bottle"]
    seen = [r for r in records if any(row["class_name"] == "bottle" for row in r["detections"])]
    assert bottle["frames_seen"] == len(seen)
    assert bottle["first_seen"]["frame"] == seen[0]["frame"] and bottle["last_seen"]["frame"] == seen[-1]["frame"]
    tracks = {row["track_id"] for r in records for row in r["detections"] if row["class_name"] == "bottle"}
    assert bottle["tracks"] == len(tracks - {None})
    assert summary["alerts"] == dict(Counter(alert["rule"] for alert in ward["alerts"]))
    assert bottle["alerts"] == sum(alert["class_name"] == "bottle" for alert in ward["alerts"])
    assert set(bottle["dwell_seconds"]) <= {"bay", "door side"} and bottle["dwell_seconds"]["bay"] > 0


def test_zones_file_in_fractions_scales_to_any_frame() -> None:
    zones = parse_zones_yaml(WARD, "ward.yaml")
    assert zones.geometry.fractions and [zone.line for zone in zones.geometry.zones] == [3, 4]
    assert [rule.line_number for rule in zones.rules] == [46, 47, 48, 49]
    bay = zones.geometry.zones[0]
    assert zones.geometry.pixels(bay.points, 200, 100, bay).tolist() == [[0, 30], [100, 30], [100, 100], [0, 100]]


def test_stream_yields_alerts_only_when_asked(detector, clip: Path) -> None:
    plain = list(detector.stream(clip, imgsz=160, conf=0.01, vid_stride=8))
    assert [len(item) for item in plain] == [2] * 3 and plain[0][1].tracker_id is None
    analysed = list(detector.stream(clip, imgsz=160, conf=0.01, vid_stride=8, zones=clip.with_suffix(".yaml")))
    assert [len(item) for item in analysed] == [3] * 3
    assert all(item.detections.tracker_id is not None for item in analysed)  # a line implies tracking
    assert any(item.alerts for item in analysed)


def test_zone_counter_counts_classes_per_zone() -> None:
    counter = ZoneCounter(Geometry((ZoneSpec("left", ((0, 0), (50, 0), (50, 100), (0, 100))),)))
    detections = sv.Detections(
        xyxy=np.array([[10, 10, 20, 20], [60, 10, 70, 20], [30, 50, 40, 60.0]]), class_id=np.array([0, 0, 1]),
        data={"class_name": np.array(["pump", "pump", "person"])},
    )  # fmt: skip
    observation = counter.observe(detections, 100, 100)
    assert observation.zone_counts == {"left": {"pump": 1, "person": 1}}
    assert observation.zones_of(3) == [["left"], [], ["left"]]


def test_line_counts_in_the_jsonl_equal_supervision_for_known_tracks(tmp_path: Path) -> None:
    """Two tracks cross the door (and some of the grid) on the panned real frames, one each way; the JSONL's counts
    are supervision's LineZone counts of the same boxes, and the crossings are really there."""
    from ovdet.analytics.stream import Analytics
    from ovdet.io.sinks import JsonlSink
    from ovdet.io.sources import Frame

    zones_file = tmp_path / "ward.yaml"
    zones_file.write_text(WARD)
    analytics = Analytics(zones_file)
    frames = _panned_frames(FRAMES)
    width = frames[0].shape[1]
    door = sv.LineZone(sv.Point(width // 2, 0), sv.Point(width // 2, frames[0].shape[0]))
    sink = JsonlSink(tmp_path / "known.jsonl")
    for index, image in enumerate(frames):
        right, left = 10 + 12 * index, width - 30 - 12 * index
        detections = sv.Detections(
            xyxy=np.array([[right, 60, right + 20, 90], [left, 100, left + 20, 130]], dtype=float),
            confidence=np.array([0.9, 0.8]),
            class_id=np.array([0, 1]),
            tracker_id=np.array([1, 2]),
            data={"class_name": np.array(["bottle", "person"])},
        )
        door.trigger(detections)
        analytics.update(Frame(image, index, index / 25, "panned"), detections)
        sink.write(Frame(image, index, index / 25, "panned"), detections)
    sink.close()
    last = json.loads((tmp_path / "known.jsonl").read_text().splitlines()[-1])
    assert door.in_count == 1 and door.out_count == 1
    assert last["lines"]["door"] == {"in": door.in_count, "out": door.out_count}


def test_a_zone_may_have_1000_points_and_no_more() -> None:
    def polygon(count: int) -> str:
        return "zones:\n  bay: [" + ",".join(f"[{i % 50},{(i * 7) % 50}]" for i in range(count)) + "]\n"

    assert len(parse_zones_yaml(polygon(MAX_ZONE_POINTS), "z.yaml").geometry.zones[0].points) == MAX_ZONE_POINTS
    with pytest.raises(ZonesError, match=r"z.yaml:2: zone 'bay' has 1,001 points, more than the 1,000"):
        parse_zones_yaml(polygon(MAX_ZONE_POINTS + 1), "z.yaml")


def test_a_line_is_checked_in_whole_pixels() -> None:
    with pytest.raises(ZonesError, match=r"z.yaml:2: line 'door' is shorter than a pixel"):
        parse_zones_yaml("lines:\n  door: [[10.2, 5], [10.4, 5]]\n", "z.yaml")
    fractions = parse_zones_yaml("units: fractions\nlines:\n  door: [[0.5, 0.5], [0.501, 0.5]]\n", "z.yaml")
    assert fractions.geometry.fit(2000, 1000)[1]["door"].tolist() == [[1000, 500], [1002, 500]]
    with pytest.raises(ZonesError, match=r"z.yaml:3: line 'door' is shorter than a pixel in the 192x112 frame"):
        fractions.geometry.fit(192, 112)
    with pytest.raises(ZonesError, match="shorter than a pixel"):  # supervision's LineZone would raise ValueError
        ZoneCounter(fractions.geometry).observe(sv.Detections.empty(), 192, 112)


def test_sources_know_their_frame_size_before_reading(tmp_path: Path) -> None:
    from ovdet.io.sources import open_source
    from tests.media import small_frames

    frames = small_frames(2)
    write_clip(tmp_path / "clip.mp4", frames)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame{index}.png"), frame)
    for name in ("clip.mp4", "frame0.png", "*.png"):
        assert open_source(str(tmp_path / name)).size == (192, 112), name


def test_stream_refuses_zones_that_do_not_fit_before_the_first_frame(detector, tmp_path: Path) -> None:
    from ovdet.io.sources import FrameSource

    class Unread(FrameSource):
        size = (192, 112)

        def __iter__(self):
            raise AssertionError("the source was read")

    zones = parse_zones_yaml("zones:\n  bay: [[0, 0], [300, 0], [0, 50]]\n", "z.yaml")
    with pytest.raises(ZonesError, match=r"z.yaml:2: 'bay' has point \(300, 0\) outside the 192x112 frame"):
        detector.stream(Unread(), zones=zones)
