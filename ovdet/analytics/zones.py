"""Named zones (polygons) and lines on the frame: which detections are in which zone, how many of each class, and
which tracks crossed which line — all through supervision's ``PolygonZone`` and ``LineZone``.

Points are pixels, or fractions of the frame's width and height (``units: fractions`` in the zones file), so one
file fits any resolution. Membership uses each box's bottom centre (``PolygonZone``'s default); a line counts a
track once all four corners of its box have moved to the other side (``LineZone``'s default).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from ..core.errors import ZonesError

__all__ = ["Geometry", "LineSpec", "Observation", "ZoneCounter", "ZoneSpec"]

Point = tuple[float, float]


@dataclass(frozen=True)
class ZoneSpec:
    """A named polygon; ``line`` is where the zones file defines it (for messages)."""

    name: str
    points: tuple[Point, ...]
    line: int = 0


@dataclass(frozen=True)
class LineSpec:
    """A named line from ``start`` to ``end``; "in" is a crossing from its right to its left, seen along it."""

    name: str
    start: Point
    end: Point
    line: int = 0


@dataclass(frozen=True)
class Geometry:
    """The zones and lines of one zones file.

    Example:
        >>> bay = ZoneSpec("bay", ((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
        >>> Geometry((bay,), (), fractions=True).pixels(bay.points, 640, 480, bay)
        array([[  0,   0],
               [320,   0],
               [320, 480],
               [  0, 480]])
    """

    zones: tuple[ZoneSpec, ...] = ()
    lines: tuple[LineSpec, ...] = ()
    fractions: bool = False
    origin: str = "zones"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(zone.name for zone in self.zones) + tuple(line.name for line in self.lines)

    def pixels(self, points: tuple[Point, ...], width: int, height: int, spec: ZoneSpec | LineSpec) -> np.ndarray:
        """``points`` in whole pixels of a ``width``×``height`` frame; a pixel point outside it is an error."""
        scale = np.array([width, height], dtype=float) if self.fractions else np.ones(2)
        scaled = np.asarray(points, dtype=float) * scale
        outside = (scaled[:, 0] > width) | (scaled[:, 1] > height)
        if outside.any():
            x, y = points[int(np.argmax(outside))]
            raise ZonesError(
                f"{self.origin}:{spec.line}: {spec.name!r} has point ({x:g}, {y:g}) outside the {width}x{height} "
                f"frame: use pixels within it, or fractions of the frame with 'units: fractions'"
            )
        return np.round(scaled).astype(int)

    def fit(self, width: int, height: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Zone name → polygon and line name → its two ends, in whole pixels of a ``width``×``height`` frame.

        Raises:
            ZonesError: a pixel point is outside the frame, or a line's two ends fall on one pixel.
        """
        zones = {zone.name: self.pixels(zone.points, width, height, zone) for zone in self.zones}
        lines = {line.name: self.pixels((line.start, line.end), width, height, line) for line in self.lines}
        for line in self.lines:
            start, end = lines[line.name]
            if (start == end).all():
                raise ZonesError(
                    f"{self.origin}:{line.line}: line {line.name!r} is shorter than a pixel in the {width}x{height} "
                    f"frame: move its two points apart"
                )
        return zones, lines


@dataclass
class Observation:
    """What the zones and lines saw in one frame.

    Attributes:
        membership: Zone name → which detections are inside it.
        crossed: Line name → (crossed in, crossed out) per detection, this frame.
        zone_counts: Zone name → class name → detections inside, this frame.
        line_counts: Line name → ``{"in": n, "out": m}``, crossings since the start.
    """

    membership: dict[str, np.ndarray] = field(default_factory=dict)
    crossed: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    zone_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    line_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def zones_of(self, count: int) -> list[list[str]]:
        """For each of ``count`` detections, the names of the zones it is in."""
        return [[name for name, inside in self.membership.items() if inside[i]] for i in range(count)]


class ZoneCounter:
    """Feeds every frame's detections to one ``PolygonZone`` per zone and one ``LineZone`` per line.

    The supervision objects are built on the first frame, when its size is known, and rebuilt if the size changes.

    Example:
        >>> counter = ZoneCounter(Geometry((ZoneSpec("all", ((0, 0), (1, 0), (1, 1))),), fractions=True))
        >>> counter.observe(sv.Detections.empty(), 64, 48).zone_counts
        {'all': {}}
    """

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = geometry
        self._size: tuple[int, int] | None = None
        self._zones: dict[str, sv.PolygonZone] = {}
        self._lines: dict[str, sv.LineZone] = {}

    def _build(self, width: int, height: int) -> None:
        zones, lines = self.geometry.fit(width, height)
        self._zones = {name: sv.PolygonZone(polygon) for name, polygon in zones.items()}
        self._lines = {name: sv.LineZone(sv.Point(*start), sv.Point(*end)) for name, (start, end) in lines.items()}
        self._size = (width, height)

    def observe(self, detections: sv.Detections, width: int, height: int) -> Observation:
        """Zone membership, per-class zone counts and line crossings for one frame."""
        if self._size != (width, height):
            self._build(width, height)
        names = detections.data.get("class_name", np.array([""] * len(detections)))
        observation = Observation()
        for name, zone in self._zones.items():
            inside = zone.trigger(detections) if len(detections) else np.zeros(0, dtype=bool)
            observation.membership[name] = inside
            observation.zone_counts[name] = dict(Counter(str(n) for n in names[inside]))
        for name, line in self._lines.items():
            if detections.tracker_id is None:
                detections = _untracked(detections)
            observation.crossed[name] = line.trigger(detections)
            observation.line_counts[name] = {"in": line.in_count, "out": line.out_count}
        return observation

    def overlay(self, observation: Observation) -> Callable[[np.ndarray], np.ndarray]:
        """A function that draws the zones, the lines and this frame's counts on an image (supervision's annotators)."""
        zones = dict(self._zones)
        counts = observation.line_counts
        lines = [_Counts(line.vector, counts[name]["in"], counts[name]["out"]) for name, line in self._lines.items()]
        labels = {name: _zone_label(name, observation.zone_counts[name]) for name in zones}

        def draw(image: np.ndarray) -> np.ndarray:
            for index, (name, zone) in enumerate(zones.items()):
                color = sv.ColorPalette.DEFAULT.by_idx(index)
                image = sv.PolygonZoneAnnotator(zone, color=color, opacity=0.15).annotate(image, label=labels[name])
            for line in lines:
                image = sv.LineZoneAnnotator(text_scale=0.5, text_thickness=1).annotate(image, line)
            return image

        return draw


@dataclass(frozen=True)
class _Counts:
    """What ``LineZoneAnnotator`` reads of a line: where it is and the counts of the frame being drawn."""

    vector: sv.Vector
    in_count: int
    out_count: int


def _zone_label(name: str, counts: dict[str, int]) -> str:
    return f"{name}: " + (", ".join(f"{label} {count}" for label, count in sorted(counts.items())) or "0")


def _untracked(detections: sv.Detections) -> sv.Detections:
    """Untracked boxes cross nothing: ``LineZone`` needs ids, and -1 marks a box without one."""
    marked = detections[np.arange(len(detections))]
    marked.tracker_id = np.full(len(detections), -1)
    return marked
