"""Zones, lines and rules applied to a stream of frames: each frame's detections learn their zones, and the frame
carries its counts, its alerts and a drawing of the zones, for every sink that wants them.

What travels with the detections (``detections.data`` / ``detections.metadata``), so sinks never need the rules:

- ``data["zones"]``: for each detection, the names of the zones it is in;
- ``metadata["zone_counts"]``: zone → class → detections inside; ``metadata["line_counts"]``: line → in/out so far;
- ``metadata["alerts"]``: the :class:`~ovdet.analytics.rules.Alert` objects fired on this frame;
- ``metadata["overlay"]``: draws the zones, lines and counts on an image (annotated video and images).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import supervision as sv

from ..core.errors import ZonesError
from ..io.sources import Frame, FrameSource
from ..vision.tracking import LOST_TRACK_SECONDS, lost_track_seconds
from .rules import Alert, Rule, RuleEngine
from .zones import Geometry, Observation, ZoneCounter
from .zones_yaml import ZonesFile, read_zones_yaml

__all__ = ["Analysed", "Analytics", "analyse_stream"]

_NEEDS = {"dwell": "zone", "crosses": "line"}  # a dwell happens in a zone, a crossing on a line


class Analysed(NamedTuple):
    """One frame of ``detector.stream(..., zones=..., rules=...)``: the frame, its detections, the alerts fired."""

    frame: Frame
    detections: sv.Detections
    alerts: list[Alert]


class Analytics:
    """Applies a zones file's geometry and rules to frame after frame.

    Args:
        zones: A zones file (path), a parsed :class:`~ovdet.analytics.zones_yaml.ZonesFile`, a bare
            :class:`Geometry`, or ``None``.
        rules: Rules to use instead of the zones file's own.
        lost_after: Seconds an unseen track keeps its stay in a zone (the tracker's lost-track time).

    Frames without a timestamp (still images) are timed by their arrival.
    """

    def __init__(
        self,
        zones: ZonesFile | Geometry | str | Path | None = None,
        rules: Sequence[Rule] | None = None,
        lost_after: float = LOST_TRACK_SECONDS,
    ) -> None:
        if isinstance(zones, (str, Path)):
            zones = read_zones_yaml(zones)
        geometry = zones.geometry if isinstance(zones, ZonesFile) else zones
        own_rules = zones.rules if isinstance(zones, ZonesFile) else ()
        self.origin = geometry.origin if geometry is not None else "rules"
        self.counter = ZoneCounter(geometry) if geometry is not None else None
        self.engine = RuleEngine(tuple(rules) if rules is not None else own_rules, lost_after)
        self._check_places(geometry or Geometry())
        self._started = time.monotonic()

    def _check_places(self, geometry: Geometry) -> None:
        """Every zone and line a rule watches must be in the geometry."""
        zones, lines = {zone.name for zone in geometry.zones}, {line.name for line in geometry.lines}
        for rule in self.engine.rules:
            for place, name, known in (("zone", rule.zone, zones), ("line", rule.line, lines)):
                needed = name is not None or _NEEDS.get(rule.kind) == place
                if needed and name not in known:
                    raise ZonesError(
                        f"{self.origin}:{rule.line_number}: rule {rule.name!r} watches {place} {name!r}, which is "
                        f"not among the zones file's {place}s ({', '.join(sorted(known)) or 'none'}); add it there"
                    )

    def check_source(self, source: FrameSource) -> None:
        """Refuse zones and lines that do not fit ``source``'s frames, where their size is known before reading (a
        video file, images); a live source's frames are checked as they come."""
        if self.counter is not None and source.size is not None:
            self.counter.geometry.fit(*source.size)

    def follow_tracks_of(self, source: FrameSource) -> None:
        """Keep a stay in a zone through a gap as long as the tracker keeps a lost track at ``source``'s rate."""
        self.engine.stays.lost_after = lost_track_seconds(source.frame_rate)

    @property
    def needs_tracks(self) -> bool:
        """Lines and the ``dwell`` and ``crosses`` rules follow tracks."""
        has_lines = self.counter is not None and bool(self.counter.geometry.lines)
        return has_lines or any(rule.needs_tracks for rule in self.engine.rules)

    def update(self, frame: Frame, detections: sv.Detections) -> list[Alert]:
        """Annotate ``detections`` (see the module's description) and return the alerts this frame fired."""
        timestamp = frame.timestamp if frame.timestamp is not None else time.monotonic() - self._started
        observation = Observation()
        if self.counter is not None:
            observation = self.counter.observe(detections, frame.width, frame.height)
            zones = np.empty(len(detections), dtype=object)
            for index, names in enumerate(observation.zones_of(len(detections))):
                zones[index] = names
            detections.data["zones"] = zones
            detections.metadata["zone_counts"] = observation.zone_counts
            detections.metadata["line_counts"] = observation.line_counts
            detections.metadata["overlay"] = self.counter.overlay(observation)
        alerts = self.engine.update(timestamp, detections, observation, frame.index, frame.source)
        detections.metadata["alerts"] = alerts
        return alerts

    def dwell_totals(self) -> dict[str, dict[str, float]]:
        """Zone → class → seconds spent inside so far."""
        return self.engine.stays.totals()


def analyse_stream(stream: Iterable[tuple[Frame, sv.Detections]], analytics: Analytics) -> Iterator[Analysed]:
    """Each ``(frame, detections)`` of ``stream`` with its zones and the alerts it fired."""
    for frame, detections in stream:
        yield Analysed(frame, detections, analytics.update(frame, detections))
