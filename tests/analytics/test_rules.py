"""The rule engine on scripted synthetic scenes: known tracks enter and leave a zone, cross a line, dwell, vanish and
come back. Alerts, counts and dwell times are exact, and the same at 30, 10 and 1 frames/s (and any whole rate),
because every duration comes from timestamps.

The scene (640×480, zone "bay" = the left half, line "door" down the middle):

- pump, track 1: in the bay from 0 s until 10 s; gone; back as track 3 from 15 s until 20 s;
- person, track 2: right of the door from 2 s, in the bay from 3 s (crosses in), out again from 8 s (crosses out);
- person, track 4: in the bay from 5 s until 12 s.
"""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ovdet.analytics.rules import Rule, RuleEngine
from ovdet.analytics.stream import Analytics
from ovdet.analytics.zones import Observation
from ovdet.analytics.zones_yaml import parse_zones_yaml
from ovdet.io.sources import Frame

ZONES = """\
zones:
  bay: [[0, 0], [320, 0], [320, 480], [0, 480]]
lines:
  door: [[320, 480], [320, 0]]  # "in" is right to left, into the bay
rules:
  pump seen: {appears: pump, zone: bay, after_absence: 4}
  pump parked: {dwell: pump, zone: bay, seconds: 6}
  person waits: {dwell: person, zone: bay, seconds: 4}
  crowded: {count: person, zone: bay, at_least: 2, seconds: 2}
  door used: {crosses: person, line: door, cooldown: 10}
  leaves: {crosses: person, line: door, direction: out}
"""
LEFT, RIGHT = 100.0, 500.0
IMAGE = np.zeros((480, 640, 3), np.uint8)


def _objects(t: float) -> list[tuple[int, str, float, float]]:
    """(track id, class, centre x, confidence) of what is in the scene at ``t`` seconds."""
    scene = []
    if t < 10:
        scene.append((1, "pump", LEFT, 0.7))
    if 15 <= t < 20:
        scene.append((3, "pump", LEFT, 0.7))
    if 2 <= t < 3 or t >= 8:
        scene.append((2, "person", RIGHT, 0.9))
    elif 3 <= t < 8:
        scene.append((2, "person", LEFT + 60, 0.9))
    if 5 <= t < 12:
        scene.append((4, "person", LEFT - 60, 0.8))
    return scene


def _detections(t: float) -> sv.Detections:
    scene = _objects(t)
    if not scene:
        detections = sv.Detections.empty()
        detections.tracker_id = np.zeros(0, dtype=int)
        detections.data["class_name"] = np.array([], dtype=str)
        return detections
    return sv.Detections(
        xyxy=np.array([[x - 20, 200, x + 20, 300] for _, _, x, _ in scene], dtype=float),
        confidence=np.array([c for *_, c in scene]),
        class_id=np.array([0 if name == "pump" else 1 for _, name, _, _ in scene]),
        tracker_id=np.array([track for track, *_ in scene]),
        data={"class_name": np.array([name for _, name, _, _ in scene])},
    )


def _run(fps: int, start: float = 0.0) -> tuple[list, Analytics, dict[float, dict]]:
    """Feed 22 s of the scene at ``fps``, timestamps from ``start``; returns alerts, the analytics, counts by time."""
    analytics = Analytics(parse_zones_yaml(ZONES, "ward.yaml"))
    alerts, counts = [], {}
    for index in range(22 * fps):
        t = index / fps
        detections = _detections(t)
        alerts += analytics.update(Frame(IMAGE, index, start + t, "scene"), detections)
        counts[t] = detections.metadata["zone_counts"]["bay"]
    return alerts, analytics, counts


def _expected(fps: int) -> list[tuple]:
    """(rule, track, time, value) of every alert the scene must fire; ``dt``: the frame period."""
    dt = 1 / fps
    return [
        ("pump seen", 1, 0.0, None),
        ("door used", 2, 3.0, "in"),
        ("pump parked", 1, 6.0, 6.0),
        ("person waits", 2, 7.0, 4.0),
        ("crowded", 2, 7.0, 2),
        ("leaves", 2, 8.0, "out"),  # "door used" crossed out too, but is cooling down until 13 s
        ("person waits", 4, 9.0, 4.0),
        ("pump seen", 3, 15.0, round(5.0 + dt, 6)),
    ]


def _observed(alerts, start: float) -> list[tuple]:
    return [(a.rule, a.track_id, round(a.timestamp - start, 6), a.value) for a in alerts]


@pytest.mark.parametrize("fps", [30, 10, 1])
def test_scripted_scene_gives_exact_alerts_counts_and_dwell(fps: int) -> None:
    alerts, analytics, counts = _run(fps)
    assert _observed(alerts, 0.0) == _expected(fps)
    assert counts[0.0] == {"pump": 1}
    assert counts[6.0] == {"pump": 1, "person": 2}
    assert counts[13.0] == {}
    dt = 1 / fps
    totals = analytics.dwell_totals()["bay"]
    assert totals["pump"] == pytest.approx((10 - dt) + (5 - dt))
    assert totals["person"] == pytest.approx((5 - dt) + (7 - dt))
    first = alerts[0]
    assert (first.class_name, first.zone, first.frame, first.box, first.confidence) == (
        "pump", "bay", 0, [80.0, 200.0, 120.0, 300.0], 0.7,
    )  # fmt: skip


@settings(max_examples=8, deadline=None)
@example(fps=1, start=0.1875)  # 1 s frames at a 1 s lost-track time: float noise once ended the stays
@example(fps=30, start=0.1)  # 7.1 - 3.1 < 4: durations compared exactly once fired a frame late
@given(fps=st.integers(1, 40), start=st.floats(0, 1e5, allow_nan=False))
def test_any_frame_rate_and_any_clock_start_give_the_same_alerts(fps: int, start: float) -> None:
    start = round(start, 3)  # a live stream's clock: timestamps need not start at 0
    alerts, _, _ = _run(fps, start)
    observed = [(rule, track, round(t, 3), value) for rule, track, t, value in _observed(alerts, start)]
    expected = [(rule, track, t, value if not isinstance(value, float) else pytest.approx(value, abs=1e-3))
                for rule, track, t, value in _expected(fps)]  # fmt: skip
    assert observed == expected


def _one(name: str, track: int = 1, x: float = 10.0) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array([[x, 10, x + 10, 20.0]]), confidence=np.array([0.5]), class_id=np.array([0]),
        tracker_id=np.array([track]), data={"class_name": np.array([name])},
    )  # fmt: skip


def test_cooldown_silences_a_rule_for_its_seconds_only() -> None:
    engine = RuleEngine([Rule("pump back", "appears", "pump", after_absence=0, cooldown=5)])
    fired = [t for t in np.arange(0, 12, 0.5) if engine.update(float(t), _one("pump"), Observation())]
    assert fired == [0.0, 5.0, 10.0]


def test_dwell_ends_when_the_track_is_gone_longer_than_the_lost_time() -> None:
    bay = Observation(membership={"bay": np.array([True])})
    empty = sv.Detections.empty()
    engine = RuleEngine([Rule("stays", "dwell", "pump", zone="bay", seconds=3)], lost_after=1.0)
    engine.update(0.0, _one("pump"), bay)
    engine.update(1.0, empty, Observation(membership={"bay": np.zeros(0, bool)}))
    engine.update(2.5, empty, Observation(membership={"bay": np.zeros(0, bool)}))  # 2.5 s unseen: the stay ended
    assert engine.update(3.0, _one("pump"), bay) == []  # a new stay starts at 3 s
    assert [a.value for a in engine.update(6.0, _one("pump"), bay)] == [3.0]
    assert engine.stays.totals() == {"bay": {"pump": 3.0}}


def test_untracked_detections_count_and_appear_but_never_dwell() -> None:
    untracked = _one("pump", track=-1)
    inside = Observation(membership={"bay": np.array([True])})
    engine = RuleEngine([
        Rule("seen", "appears", "pump", zone="bay"), Rule("stays", "dwell", "pump", zone="bay", seconds=0),
        Rule("one", "count", "pump", zone="bay"),
    ])  # fmt: skip
    assert sorted(a.rule for a in engine.update(0.0, untracked, inside)) == ["one", "seen"]
    assert engine.stays.totals() == {}


def test_a_rule_for_a_zone_or_line_that_does_not_exist_is_refused() -> None:
    from ovdet.core.errors import ZonesError

    with pytest.raises(ZonesError, match=r"ward.yaml:0: rule 'r' watches zone 'bay 9'.*\(bay\)"):
        Analytics(parse_zones_yaml(ZONES, "ward.yaml"), [Rule("r", "dwell", "pump", zone="bay 9", seconds=1)])
    with pytest.raises(ZonesError, match=r"rule 'c' watches line None.*\(none\)"):
        Analytics(None, [Rule("c", "crosses", "pump")])
    with pytest.raises(ZonesError, match=r"rule 'd' watches zone None"):
        Analytics(None, [Rule("d", "dwell", "pump", seconds=1)])
