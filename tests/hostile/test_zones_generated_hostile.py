"""Generated hostile zones files (hypothesis): coordinates of every wrong type, points of every wrong shape, points
outside the frame in pixels and in fractions, duplicate names, unknown keys and values of the wrong YAML type. Every
one is refused in one line naming the file, before any output is opened; inputs and earlier outputs stay as they were.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.test_zones_hostile import refused

GENERATED = settings(
    max_examples=20, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
FRAME = (192, 112)  # the ``image`` fixture's size
NOT_A_NUMBER = [".nan", ".NaN", ".inf", "-.inf", "+.INF", "true", "no", "~", "null", "'1'", '"2"', "abc", "1e5",
                "2024-01-01", "[]", "{}", "[1, 2]", "{x: 1}", "0b", "1_000_", "12:30:00.5x", "''"]  # fmt: skip
NAME = st.text(string.ascii_letters + string.digits + " ", min_size=1, max_size=12).filter(str.strip)


def _polygon(points: list[str]) -> str:
    return "[" + ", ".join(points) + "]"


@GENERATED
@given(token=st.sampled_from(NOT_A_NUMBER), point=st.integers(0, 2), axis=st.integers(0, 1))
def test_a_coordinate_that_is_no_finite_number(tmp_path: Path, image: Path, capfd, token: str, point: int, axis: int):
    points = [["0", "0"], ["50", "0"], ["50", "50"]]
    points[point][axis] = token
    line = refused(tmp_path, image, capfd, f"zones:\n  bay: {_polygon([f'[{x}, {y}]' for x, y in points])}\n")
    assert "ward.yaml:2:" in line


@GENERATED
@given(shape=st.lists(st.integers(0, 50), max_size=5).filter(lambda point: len(point) != 2), where=st.integers(0, 3))
def test_a_point_that_is_not_x_y(tmp_path: Path, image: Path, capfd, shape: list[int], where: int):
    points = ["[0, 0]", "[50, 0]", "[50, 50]"]
    points.insert(where, str(shape))
    line = refused(tmp_path, image, capfd, f"zones:\n  bay: {_polygon(points)}\n")
    assert "ward.yaml:2:" in line and "[x, y]" in line


@GENERATED
@given(
    fractions=st.booleans(),
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
    point=st.integers(0, 2),
    axis=st.integers(0, 1),
    kind=st.sampled_from(["zone", "line"]),
)
def test_a_point_outside_the_frame(tmp_path: Path, image: Path, capfd, fractions, value, point, axis, kind):
    limit = 1.0 if fractions else FRAME[axis]
    if 0 <= value <= limit:
        value = -1 - value if value < limit / 2 else limit * 2 + value
    points = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]] if fractions else [[0.0, 0.0], [50.0, 0.0], [50.0, 50.0]]
    points = points[: 3 if kind == "zone" else 2]
    points[min(point, len(points) - 1)][axis] = value
    section = "zones:\n  bay" if kind == "zone" else "lines:\n  door"
    text = f"units: {'fractions' if fractions else 'pixels'}\n{section}: {_polygon([repr(p) for p in points])}\n"
    line = refused(tmp_path, image, capfd, text)
    assert "ward.yaml:3:" in line


@GENERATED
@given(count=st.integers(0, 2), kind=st.sampled_from(["zones", "lines"]))
def test_too_few_points(tmp_path: Path, image: Path, capfd, count: int, kind: str):
    points = ["[0, 0]", "[50, 0]", "[50, 50]"][: count if kind == "zones" else count % 2]
    text = f"{kind}:\n  x: {_polygon(points)}\n"
    line = refused(tmp_path, image, capfd, text)
    assert "ward.yaml:2:" in line


@GENERATED
@given(
    name=NAME, change=st.sampled_from(["upper", "lower", "blanks", "same"]), kind=st.sampled_from(["zones", "lines"])
)
def test_duplicate_names(tmp_path: Path, image: Path, capfd, name: str, change: str, kind: str):
    twin = {"upper": name.upper(), "lower": name.lower(), "blanks": f"  {name}  ".replace(" ", "  "), "same": name}
    value = "[[0, 0], [50, 0], [50, 50]]" if kind == "zones" else "[[0, 0], [50, 50]]"
    text = f"{kind}:\n  {json_key(name)}: {value}\n  {json_key(twin[change])}: {value}\n"
    line = refused(tmp_path, image, capfd, text)
    assert "ward.yaml:3:" in line and "duplicate" in line


def json_key(name: str) -> str:
    """``name`` as a quoted YAML key (blanks and digits kept as written)."""
    return '"' + name + '"'


@GENERATED
@given(key=st.text(string.ascii_lowercase + "_", min_size=1, max_size=10), where=st.sampled_from(["file", "rule"]))
def test_unknown_keys(tmp_path: Path, image: Path, capfd, key: str, where: str):
    known = (
        {"units", "zones", "lines", "rules"} if where == "file" else {"appears", "zone", "after_absence", "cooldown"}
    )
    if key in known or key in ("dwell", "count", "crosses", "line", "seconds", "at_least", "direction"):
        key += "_x"
    zones = "zones:\n  bay: [[0, 0], [50, 0], [50, 50]]\n"
    text = zones + (f"{key}: 1\n" if where == "file" else f"rules:\n  r: {{appears: pump, {key}: 1}}\n")
    line = refused(tmp_path, image, capfd, text)
    assert f"unknown key '{key}'" in line


SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
VALUES = st.recursive(
    SCALARS | st.text(string.ascii_letters, max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=4),
                                                                inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@GENERATED
@given(value=VALUES, where=st.sampled_from(["zones", "zone", "lines", "line", "units", "rules", "rule"]))
def test_values_of_the_wrong_yaml_type(tmp_path: Path, image: Path, capfd, value, where: str):
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("\n...\n").strip()
    files = {
        "zones": f"zones: {dumped}\n",
        "zone": f"zones:\n  bay: {dumped}\n",
        "lines": f"lines: {dumped}\n",
        "line": f"lines:\n  door: {dumped}\n",
        "units": f"units: {dumped}\nzones:\n  bay: [[0, 0], [50, 0], [50, 50]]\n",
        "rules": f"zones:\n  bay: [[0, 0], [50, 0], [50, 50]]\nrules: {dumped}\n",
        "rule": f"zones:\n  bay: [[0, 0], [50, 0], [50, 50]]\nrules:\n  r: {dumped}\n",
    }
    # a value that happens to be right leaves a file without rules: --alerts is then refused as a usage error
    refused(tmp_path, image, capfd, files[where], "--alerts", tmp_path / "outputs" / "a.jsonl", codes=(1, 2))


@pytest.mark.parametrize("count", [1001, 5000, 20_000])
def test_a_zone_over_the_point_cap(tmp_path: Path, image: Path, capfd, count: int):
    points = ",".join(f"[{(7 * i) % 190},{(13 * i) % 110}]" for i in range(count))
    line = refused(tmp_path, image, capfd, f"zones:\n  bay: [{points}]\n")
    assert "1,000" in line or "over 128 KiB" in line
