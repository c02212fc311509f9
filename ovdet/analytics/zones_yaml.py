"""Reading a zones file (zones, lines and rules): every failure is one :class:`ZonesError` line naming the file,
the line and the fix. Only plain YAML is read, as for vocabularies (no tags, no aliases, bounded size and depth).

Example file::

    units: fractions            # or pixels (the default)
    zones:
      bay 3: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]
    lines:
      door: [[0.5, 0], [0.5, 1]]
    rules:
      new pump:   {appears: infusion pump, zone: bay 3, after_absence: 60, cooldown: 300}
      pump stays: {dwell: infusion pump, zone: bay 3, seconds: 1200}
      crowded:    {count: person, zone: bay 3, at_least: 3, seconds: 10}
      comes in:   {crosses: person, line: door, direction: in}
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ZonesError
from ..core.plain_yaml import NodeReader, compose_plain_yaml, plain_value, read_plain_text
from .rules import DIRECTIONS, RULE_KINDS, Rule
from .zones import Geometry, LineSpec, Point, ZoneSpec

__all__ = [
    "MAX_ZONES_BYTES",
    "MAX_ZONE_POINTS",
    "ZonesFile",
    "check_rule_classes",
    "parse_zones_yaml",
    "read_zones_yaml",
]

# A zones file is read whole before it is checked: 128 KiB bounds that to a couple of seconds whatever it holds.
MAX_ZONES_BYTES = 128 << 10
# Each zone is rasterised once per frame size and drawn on every annotated frame; a self-crossing polygon of
# 100,000 points takes minutes. Nobody traces a room's corners with more than 1,000 points.
MAX_ZONE_POINTS = 1000
_FILE_KEYS = ("units", "zones", "lines", "rules")
_RULE_KEYS = {
    "appears": ("zone", "after_absence", "cooldown"),
    "dwell": ("zone", "seconds", "cooldown"),
    "count": ("zone", "at_least", "seconds", "cooldown"),
    "crosses": ("line", "direction", "cooldown"),
}
_KIND_OF_NODE = {yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}
_REQUIRED = {"dwell": ("zone", "seconds"), "count": ("at_least",), "crosses": ("line",)}


@dataclass(frozen=True)
class ZonesFile:
    """What a zones file holds: the geometry (zones and lines) and the rules."""

    geometry: Geometry
    rules: tuple[Rule, ...]


def read_zones_yaml(path: str | Path) -> ZonesFile:
    """Read and check a zones file."""
    path = Path(path)
    text = read_plain_text(path, MAX_ZONES_BYTES, ZonesError, "zones file")
    return parse_zones_yaml(text, str(path))


def parse_zones_yaml(text: str, origin: str) -> ZonesFile:
    """Check YAML ``text`` as a zones file; errors are reported as ``origin:line``."""
    return _ZonesReader(origin).parse(compose_plain_yaml(text, origin, ZonesError, "a zones file"))


def check_rule_classes(rules: Iterable[Rule], class_names: Iterable[str], origin: str) -> None:
    """Refuse a rule whose class is not in the vocabulary, naming the rule's line in ``origin``."""
    names = tuple(class_names)
    for rule in rules:
        if rule.class_name not in names:
            close = difflib.get_close_matches(rule.class_name, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ZonesError(
                f"{origin}:{rule.line_number}: rule {rule.name!r} watches class {rule.class_name!r}, "
                f"which is not in the vocabulary; {hint}classes: {', '.join(names)}"
            )


class _ZonesReader(NodeReader):
    def __init__(self, origin: str) -> None:
        super().__init__(origin, ZonesError)
        self.fractions = False

    def parse(self, root: yaml.Node | None) -> ZonesFile:
        if root is None:
            raise ZonesError(f"{self.origin}: the file is empty; see the zones example in the README")
        top = self._mapping(root, "the file", _FILE_KEYS)
        if not {"zones", "lines"} & top.keys():
            raise ZonesError(f"{self._at(root)}: no 'zones' or 'lines' key; name at least one zone or line")
        self.fractions = self._units(top["units"]) if "units" in top else False
        zones = tuple(self._zone(name, key, node) for name, key, node in self._items(top.get("zones"), "zones"))
        lines = tuple(self._line(name, key, node) for name, key, node in self._items(top.get("lines"), "lines"))
        geometry = Geometry(zones, lines, self.fractions, self.origin)
        rules = tuple(self._rule(n, key, node, geometry) for n, key, node in self._items(top.get("rules"), "rules"))
        return ZonesFile(geometry, rules)

    def _units(self, node: yaml.Node) -> bool:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if value not in ("pixels", "fractions"):
            raise ZonesError(f"{self._at(node)}: units must be 'pixels' or 'fractions' (of the frame's size)")
        return value == "fractions"

    def _zone(self, name: str, key: yaml.Node, node: yaml.Node) -> ZoneSpec:
        points = self._points(node, f"zone {name!r}")
        if len(points) < 3:
            raise ZonesError(
                f"{self._at(node)}: zone {name!r} has {len(points)} point(s); a polygon needs at least 3 [x, y] points"
            )
        return ZoneSpec(name, points, key.start_mark.line + 1)

    def _line(self, name: str, key: yaml.Node, node: yaml.Node) -> LineSpec:
        points = self._points(node, f"line {name!r}")
        if len(points) != 2 or points[0] == points[1]:
            raise ZonesError(f"{self._at(node)}: line {name!r} needs two different points: [[x1, y1], [x2, y2]]")
        if not self.fractions and [round(v) for v in points[0]] == [round(v) for v in points[1]]:
            raise ZonesError(
                f"{self._at(node)}: line {name!r} is shorter than a pixel: its points round to the same pixel; move "
                f"them apart"
            )
        return LineSpec(name, points[0], points[1], key.start_mark.line + 1)

    def _points(self, node: yaml.Node, what: str) -> tuple[Point, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise ZonesError(f"{self._at(node)}: {what} must be a list of [x, y] points")
        if len(node.value) > MAX_ZONE_POINTS:
            raise ZonesError(
                f"{self._at(node)}: {what} has {len(node.value):,} points, more than the {MAX_ZONE_POINTS:,} a zone "
                f"may have: simplify the outline"
            )
        points = []
        for point in node.value:
            if not isinstance(point, yaml.SequenceNode) or len(point.value) != 2:
                raise ZonesError(f"{self._at(point)}: each point of {what} must be [x, y]")
            x, y = (self._number(value, f"a coordinate of {what}") for value in point.value)
            limit = 1.0 if self.fractions else math.inf
            if not (0 <= x <= limit and 0 <= y <= limit):
                fix = "fractions go from 0 to 1" if self.fractions else "pixels start at 0, top left"
                raise ZonesError(f"{self._at(point)}: point ({x:g}, {y:g}) of {what} is outside the frame: {fix}")
            points.append((x, y))
        return tuple(points)

    def _number(self, node: yaml.Node, what: str) -> float:
        value = plain_value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else _KIND_OF_NODE[type(node)]
            raise ZonesError(f"{self._at(node)}: {what} must be a number, not {shown}")
        return float(value)

    def _rule(self, name: str, key: yaml.Node, node: yaml.Node, geometry: Geometry) -> Rule:
        if not isinstance(node, yaml.MappingNode):
            raise ZonesError(f"{self._at(node)}: rule {name!r} must be a mapping, e.g. {{dwell: pump, zone: bay}}")
        keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        kinds = [kind for kind in RULE_KINDS if kind in keys]
        if len(kinds) != 1:
            unknown = sorted(keys - {k for allowed in _RULE_KEYS.values() for k in allowed})
            close = difflib.get_close_matches(unknown[0], RULE_KINDS, n=1) if unknown else []
            found = f"unknown rule {unknown[0]!r}; " if unknown and not kinds else ""
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ZonesError(
                f"{self._at(key)}: rule {name!r}: {found}{hint}give exactly one of {', '.join(RULE_KINDS)} with the "
                f"class it watches"
            )
        kind = kinds[0]
        fields = self._mapping(node, f"rule {name!r}", (kind, *_RULE_KEYS[kind]))
        for required in _REQUIRED.get(kind, ()):
            if required not in fields:
                raise ZonesError(f"{self._at(key)}: rule {name!r} ({kind}) needs '{required}'")
        options: dict[str, Any] = {}
        for option in ("seconds", "after_absence", "cooldown"):
            if option in fields:
                options[option] = self._duration(fields[option], f"rule {name!r}: {option}")
        if "at_least" in fields:
            options["at_least"] = self._count(fields["at_least"], name)
        if "direction" in fields:
            options["direction"] = self._direction(fields["direction"], name)
        for place, known in (("zone", [z.name for z in geometry.zones]), ("line", [ln.name for ln in geometry.lines])):
            if place in fields:
                options[place] = self._reference(fields[place], place, known, name)
        return Rule(name, kind, self._text(fields[kind], name), line_number=key.start_mark.line + 1, **options)

    def _text(self, node: yaml.Node, rule: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not " ".join(node.value.split()):
            raise ZonesError(f"{self._at(node)}: rule {rule!r} must name a class of the vocabulary")
        return " ".join(node.value.split())

    def _duration(self, node: yaml.Node, what: str) -> float:
        seconds = self._number(node, f"{what} (seconds)")
        if seconds < 0:
            raise ZonesError(f"{self._at(node)}: {what} is {seconds:g} s; durations must be 0 or more seconds")
        return seconds

    def _count(self, node: yaml.Node, rule: str) -> int:
        value = self._number(node, f"rule {rule!r}: at_least")
        if value < 1 or value != int(value):
            raise ZonesError(f"{self._at(node)}: rule {rule!r}: at_least must be a whole number of 1 or more")
        return int(value)

    def _direction(self, node: yaml.Node, rule: str) -> str:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if value not in DIRECTIONS:
            raise ZonesError(f"{self._at(node)}: rule {rule!r}: direction must be one of {', '.join(DIRECTIONS)}")
        return value

    def _reference(self, node: yaml.Node, place: str, known: list[str], rule: str) -> str:
        name = " ".join(node.value.split()) if isinstance(node, yaml.ScalarNode) else ""
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listed = ", ".join(known) or "none"
            raise ZonesError(
                f"{self._at(node)}: rule {rule!r} names {place} {name!r}, which is not defined; {hint}"
                f"{place}s: {listed}"
            )
        return name
