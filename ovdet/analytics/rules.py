"""The rule engine: turns a stream of ``supervision.Detections`` with timestamps into alerts a team can act on.

Four kinds of rule, each with a cooldown (a rule fires at most once per ``cooldown`` seconds):

- ``appears``: a class is seen (optionally in a zone) for the first time, or again after ``after_absence`` s;
- ``dwell``: a track stays in a zone for at least ``seconds``;
- ``count``: at least ``at_least`` objects of a class are in a zone, held for ``seconds``;
- ``crosses``: a track of a class crosses a line, ``in``, ``out`` or ``any``.

Every duration comes from the timestamps given, never from frame counts, so a rule means the same at any frame
rate, stride or for a live stream. Nothing here imports a model: feed it any detector's detections.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import supervision as sv

from .zones import Observation

__all__ = ["RULE_KINDS", "Alert", "Rule", "RuleEngine", "Stays"]

RULE_KINDS = ("appears", "dwell", "count", "crosses")
DIRECTIONS = ("in", "out", "any")
# Timestamps are sums of frame periods: 7.1 - 3.1 is 3.9999999999999996 s. Durations are compared to a microsecond.
_EPSILON = 1e-6


@dataclass(frozen=True)
class Rule:
    """One alert rule.

    Attributes:
        name: Shown in alerts.
        kind: One of :data:`RULE_KINDS`.
        class_name: The class it watches (as the vocabulary names it).
        zone: The zone it watches (``appears``, ``dwell``, ``count``); ``None`` for the whole frame.
        line: The line a ``crosses`` rule watches.
        seconds: ``dwell``: how long a track must stay; ``count``: how long the count must hold.
        after_absence: ``appears``: fire again once the class was gone this long; ``None``: only the first time.
        at_least: ``count``: how many objects.
        direction: ``crosses``: ``in``, ``out`` or ``any``.
        cooldown: Seconds after a firing in which the rule stays silent.
        line_number: Where the rules file defines it, for messages.
    """

    name: str
    kind: str
    class_name: str
    zone: str | None = None
    line: str | None = None
    seconds: float = 0.0
    after_absence: float | None = None
    at_least: int = 1
    direction: str = "any"
    cooldown: float = 0.0
    line_number: int = 0

    @property
    def needs_tracks(self) -> bool:
        return self.kind in ("dwell", "crosses")


@dataclass
class Alert:
    """One firing of a rule, with the detection behind it.

    ``value`` is the dwell in seconds (``dwell``), the count (``count``), the direction (``crosses``), or the
    absence in seconds before the class came back (``appears``; ``None`` the first time).
    """

    rule: str
    kind: str
    class_name: str
    track_id: int | None
    zone: str | None
    frame: int
    timestamp: float
    box: list[float]
    confidence: float
    value: float | int | str | None = None
    source: str = ""
    crop: str | None = None

    def record(self) -> dict[str, Any]:
        """The alert as one JSON object (the ``--alerts`` line and the webhook body)."""
        record = asdict(self)
        record["timestamp"] = round(self.timestamp, 6)
        return record


@dataclass
class _Stay:
    class_name: str
    entered: float
    last_inside: float
    alerted: bool = False


class Stays:
    """How long each track has been in each zone, and the total time each class spent in each zone.

    A stay ends when its track is seen outside the zone, or has not been seen for more than ``lost_after`` s.
    Its length is from the first to the last timestamp the track was seen inside.
    """

    def __init__(self, lost_after: float = 1.0) -> None:
        self.lost_after = lost_after
        self.open: dict[tuple[int, str], _Stay] = {}
        self._closed: dict[str, Counter[str]] = defaultdict(Counter)

    def update(self, timestamp: float, detections: sv.Detections, membership: dict[str, np.ndarray]) -> None:
        names = _class_names(detections)
        ids = detections.tracker_id if detections.tracker_id is not None else np.full(len(detections), -1)
        for zone, inside in membership.items():
            for track_id, name, is_inside in zip(ids, names, inside):
                if track_id < 0:
                    continue
                key = (int(track_id), zone)
                if is_inside:
                    stay = self.open.setdefault(key, _Stay(str(name), timestamp, timestamp))
                    stay.last_inside = timestamp
                elif key in self.open:
                    self._close(key)
        ended = [key for key, stay in self.open.items() if timestamp - stay.last_inside > self.lost_after + _EPSILON]
        for key in ended:
            self._close(key)

    def _close(self, key: tuple[int, str]) -> None:
        stay = self.open.pop(key)
        self._closed[key[1]][stay.class_name] += stay.last_inside - stay.entered

    def totals(self) -> dict[str, dict[str, float]]:
        """Zone → class → seconds spent inside, open stays included."""
        totals = {zone: Counter(counts) for zone, counts in self._closed.items()}
        for (_, zone), stay in self.open.items():
            totals.setdefault(zone, Counter())[stay.class_name] += stay.last_inside - stay.entered
        return {zone: {name: round(seconds, 6) for name, seconds in counts.items()} for zone, counts in totals.items()}


@dataclass
class _RuleState:
    last_fired: float | None = None
    last_seen: float | None = None
    held_since: float | None = None
    held_fired: bool = False


class RuleEngine:
    """Evaluates rules frame by frame.

    Args:
        rules: The rules.
        lost_after: Seconds a track may go unseen before its stay in a zone ends (the tracker's lost-track time).

    Example:
        >>> engine = RuleEngine([Rule("pump seen", "appears", "pump")])
        >>> seen = sv.Detections(np.array([[0, 0, 10, 10.0]]), confidence=np.array([0.9]), class_id=np.array([0]),
        ...                      data={"class_name": np.array(["pump"])})
        >>> [alert.rule for alert in engine.update(0.0, seen, Observation())]
        ['pump seen']
    """

    def __init__(self, rules: list[Rule] | tuple[Rule, ...], lost_after: float = 1.0) -> None:
        self.rules = tuple(rules)
        self.stays = Stays(lost_after)
        self._states = {rule.name: _RuleState() for rule in self.rules}

    def update(
        self, timestamp: float, detections: sv.Detections, observation: Observation, frame: int = 0, source: str = ""
    ) -> list[Alert]:
        """Take one frame (its timestamp in seconds, its detections, what the zones saw); return the alerts fired."""
        self.stays.update(timestamp, detections, observation.membership)
        fired: list[Alert] = []
        for rule in self.rules:
            state = self._states[rule.name]
            for index, value in self._triggers(rule, state, timestamp, detections, observation):
                if state.last_fired is not None and timestamp - state.last_fired < rule.cooldown - _EPSILON:
                    continue
                state.last_fired = timestamp
                if rule.kind == "dwell":
                    self.stays.open[(int(detections.tracker_id[index]), rule.zone)].alerted = True
                if rule.kind == "count":
                    state.held_fired = True
                fired.append(_alert(rule, detections, index, value, timestamp, frame, source))
        return fired

    def _triggers(self, rule: Rule, state: _RuleState, timestamp: float, detections, observation):
        """(detection index, alert value) of each firing the rule's condition asks for this frame."""
        matches = _matching(rule, detections, observation)
        if rule.kind == "appears":
            absent = None if state.last_seen is None else timestamp - state.last_seen
            if matches.size:
                state.last_seen = timestamp
                if absent is None or (rule.after_absence is not None and absent >= rule.after_absence - _EPSILON):
                    return [(_best(detections, matches), None if absent is None else round(absent, 6))]
            return []
        if rule.kind == "count":
            if matches.size < rule.at_least:
                state.held_since, state.held_fired = None, False
                return []
            state.held_since = timestamp if state.held_since is None else state.held_since
            ready = timestamp - state.held_since >= rule.seconds - _EPSILON and not state.held_fired
            return [(_best(detections, matches), int(matches.size))] if ready else []
        if rule.kind == "dwell":
            return [
                (index, round(timestamp - stay.entered, 6))
                for index in matches
                if (stay := self.stays.open.get((int(detections.tracker_id[index]), rule.zone))) is not None
                and not stay.alerted
                and timestamp - stay.entered >= rule.seconds - _EPSILON
            ]
        crossed_in, crossed_out = observation.crossed.get(rule.line, (np.zeros(0, bool), np.zeros(0, bool)))
        triggers = []
        for index in matches:
            for direction, crossed in (("in", crossed_in), ("out", crossed_out)):
                if crossed[index] and rule.direction in (direction, "any"):
                    triggers.append((int(index), direction))
        return triggers


def _class_names(detections: sv.Detections) -> np.ndarray:
    return detections.data.get("class_name", np.array([""] * len(detections)))


def _matching(rule: Rule, detections: sv.Detections, observation: Observation) -> np.ndarray:
    """Indices of the detections of the rule's class, in its zone where it names one (tracked only if it needs)."""
    selected = _class_names(detections) == rule.class_name
    if rule.zone is not None:
        selected &= observation.membership.get(rule.zone, np.zeros(len(detections), dtype=bool))
    if rule.needs_tracks:
        ids = detections.tracker_id if detections.tracker_id is not None else np.full(len(detections), -1)
        selected &= ids >= 0
    return np.flatnonzero(selected)


def _best(detections: sv.Detections, indices: np.ndarray) -> int:
    return int(indices[np.argmax(detections.confidence[indices])])


def _alert(rule: Rule, detections: sv.Detections, index: int, value, timestamp: float, frame: int, source: str):
    track_id = -1 if detections.tracker_id is None else int(detections.tracker_id[index])
    return Alert(
        rule=rule.name, kind=rule.kind, class_name=rule.class_name, track_id=track_id if track_id >= 0 else None,
        zone=rule.zone if rule.kind != "crosses" else rule.line, frame=frame, timestamp=timestamp,
        box=[round(float(v), 2) for v in detections.xyxy[index]],
        confidence=round(float(detections.confidence[index]), 5), value=value, source=source,
    )  # fmt: skip
