"""Hostile zones files through the CLI: malformed zones, lines and rules are refused in one line naming the file, the
line and the fix, before any work: the inputs byte-identical, an earlier run's outputs untouched. A zone or line that
does not fit the frames is refused as soon as the source is opened, before any output (see also
test_zones_generated_hostile.py for generated files and the rules family in test_rules_hostile.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest

from tests.hostile.harness import assert_error, assert_no_temporaries, run_cli, unchanged
from tests.media import small_frames, write_clip

ZONE = "zones:\n  bay: [[0, 0], [50, 0], [50, 50]]\n"
LINE = "lines:\n  door: [[10, 0], [10, 100]]\n"

# (zones file, line the error must name or None, words it must mention)
CASES = [
    pytest.param(ZONE + "rules:\n  r: {alarm: pump}\n", 4, ["unknown rule 'alarm'", "appears, dwell"],
                 id="unknown-rule"),
    pytest.param(ZONE + "rules:\n  r: {dwel: pump, zone: bay}\n", 4, ["did you mean 'dwell'"], id="misspelt-rule"),
    pytest.param(ZONE + "rules:\n  r: {dwell: pump, appears: pump, zone: bay}\n", 4, ["exactly one"],
                 id="two-kinds"),
    pytest.param("zones:\n  bay: [[0, 0], [50, 0]]\n", 2, ["2 point(s)", "at least 3"], id="polygon-of-two"),
    pytest.param("units: fractions\nzones:\n  bay: [[0, 0], [1.5, 0], [1, 1]]\n", 3, ["outside the frame"],
                 id="fraction-over-one"),
    pytest.param("zones:\n  bay:\n    - [0, 0]\n    - [-5, 0]\n    - [9, 9]\n", 4, ["outside the frame"],
                 id="negative-pixel"),
    pytest.param(ZONE + "rules:\n  r: {dwell: pump, zone: bay 3, seconds: 5}\n", 4, ["zone 'bay 3'", "zones: bay"],
                 id="unknown-zone"),
    pytest.param(ZONE + LINE + "rules:\n  r: {crosses: pump, line: gate}\n", 6, ["line 'gate'", "door"],
                 id="unknown-line"),
    pytest.param(ZONE + "rules:\n  r: {appears: infusion pump}\n", 4, ["'infusion pump'", "not in the vocabulary"],
                 id="unknown-class"),
    pytest.param(ZONE + "rules:\n  r: {dwell: pump, zone: bay, seconds: -5}\n", 4, ["-5", "0 or more"],
                 id="negative-dwell"),
    pytest.param(ZONE + "rules:\n  r:\n    appears: pump\n    cooldown: -1\n", 6, ["cooldown", "0 or more"],
                 id="negative-cooldown"),
    pytest.param(ZONE + "rules:\n  r: {count: pump, zone: bay, at_least: 0}\n", 4, ["at_least", "1 or more"],
                 id="count-zero"),
    pytest.param(ZONE + "rules:\n  r: {dwell: pump, zone: bay}\n", 4, ["needs 'seconds'"], id="dwell-no-seconds"),
    pytest.param(ZONE + "rules:\n  r: {crosses: pump, line: door, direction: up}\n" + LINE, 4, ["direction"],
                 id="bad-direction"),
    pytest.param("lines:\n  door: [[10, 10], [10, 10]]\n", 2, ["two different points"], id="line-of-one-point"),
    pytest.param("zones:\n  bay: !!python/object/apply:os.system [true]\n", 2, ["tag"], id="python-tag"),
    pytest.param("zones:\n  bay: [[0, 0], [5, 0], [5, x]]\n", 2, ["number"], id="coordinate-text"),
    pytest.param("units: inches\nzones:\n  bay: [[0, 0], [5, 0], [5, 5]]\n", 1, ["pixels", "fractions"],
                 id="unknown-units"),
    pytest.param("rules:\n  r: {appears: pump}\n", 1, ["no 'zones' or 'lines'"], id="no-zones"),
    pytest.param("", None, ["empty"], id="empty"),
    pytest.param("zones: [a, b\n", 2, ["not valid YAML"], id="bad-yaml"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line", "mentions"), CASES)
def test_malformed_zones_file_is_one_line_naming_file_and_line(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], content: str, line: int | None, mentions
) -> None:
    zones = image.parent / "ward.yaml"
    zones.write_text(content)
    out = tmp_path / "out"
    with unchanged(image.parent):
        result = run_cli(
            ["detect", image, "--classes", "pump,person", "--zones", zones, "--alerts", out / "a.jsonl", "--quiet"],
            capfd,
        )
    assert_error(result, 1, f"ward.yaml:{line}:" if line else "ward.yaml", *mentions)
    assert not out.exists()
    assert_no_temporaries(tmp_path)


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [
        pytest.param(["--alerts", "a.csv"], ["--alerts", ".jsonl"], id="alerts-not-jsonl"),
        pytest.param(["--summary", "s.txt"], ["--summary", ".json"], id="summary-not-json"),
        pytest.param(["--webhook", "file:///etc/passwd"], ["--webhook", "http"], id="webhook-not-http"),
        pytest.param(["--alerts", "a.jsonl"], ["--alerts needs rules"], id="alerts-without-rules"),
        pytest.param(["--alerts", "o.jsonl", "--output", "o.jsonl"], ["same file"], id="alerts-on-another-output"),
    ],
)
def test_analytics_flags_are_checked_before_work(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], flags: list[str], mentions: list[str]
) -> None:
    zones = image.parent / "ward.yaml"
    zones.write_text(ZONE + ("" if flags == ["--alerts", "a.jsonl"] else "rules:\n  r: {appears: pump}\n"))
    flags = [str(image.parent / flag) if flag.endswith((".csv", ".txt", ".jsonl", ".yaml")) else flag for flag in flags]
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--classes", "pump", "--zones", zones, *flags, "--quiet"], capfd)
    assert_error(result, 2, *mentions)


EARLIER = '{"earlier": "run"}\n'


def refused(
    tmp_path: Path, source: Path, capfd: pytest.CaptureFixture[str], zones_text: str | bytes, *flags, codes=(1,)
) -> str:
    """Run detect on ``source`` with a zones file and an earlier run's outputs; expects one error line (exit 1, or
    one of ``codes``), every input and every earlier output byte-identical; returns the line."""
    zones = tmp_path / "inputs" / "ward.yaml"
    zones.parent.mkdir(exist_ok=True)
    zones.write_bytes(zones_text.encode() if isinstance(zones_text, str) else zones_text)
    outputs = tmp_path / "outputs"
    outputs.mkdir(exist_ok=True)
    for name in ("o.jsonl", "a.jsonl", "s.json"):
        (outputs / name).write_text(EARLIER if name.endswith("jsonl") else "{}\n")
    with unchanged(zones.parent, source.parent, outputs):
        result = run_cli(
            ["detect", source, "--classes", "pump,person", "--zones", zones, "--output", outputs / "o.jsonl",
             "--summary", outputs / "s.json", "--imgsz", 160, "--quiet", *flags],
            capfd,
        )  # fmt: skip
    assert_no_temporaries(tmp_path)
    return assert_error(result, result.code if result.code in codes else codes[0])


def _points(count: int) -> str:
    """A self-crossing polygon of ``count`` points inside a 192x112 frame (the slowest kind to rasterise)."""
    return "[" + ",".join(f"[{(7 * i) % 190},{(13 * i) % 110}]" for i in range(count)) + "]"


BAY = "[[0, 0], [50, 0], [50, 50]]"
# (zones file, words the error line must mention): each is refused when the file is read
ZONE_CASES = [
    pytest.param("zones:\n  bay: [[.nan, 0], [5, 0], [5, 5]]\n", ["ward.yaml:2:", "number", ".nan"], id="nan"),
    pytest.param("zones:\n  bay: [[.inf, 0], [5, 0], [5, 5]]\n", ["ward.yaml:2:", "number"], id="inf"),
    pytest.param("zones:\n  bay: [[0, -.inf], [5, 0], [5, 5]]\n", ["ward.yaml:2:", "number"], id="minus-inf"),
    pytest.param("zones:\n  bay: [[true, 0], [5, 0], [5, 5]]\n", ["number", "true"], id="bool"),
    pytest.param("zones:\n  bay: [[~, 0], [5, 0], [5, 5]]\n", ["number"], id="null"),
    pytest.param("zones:\n  bay: [['5', 0], [5, 0], [5, 5]]\n", ["number"], id="quoted-number"),
    pytest.param("zones:\n  bay: [[2024-01-01, 0], [5, 0], [5, 5]]\n", ["number"], id="date"),
    pytest.param("zones:\n  bay: [[[1, 2], 0], [5, 0], [5, 5]]\n", ["number", "a list"], id="list-as-coordinate"),
    pytest.param("zones:\n  bay: [{x: 1, y: 2}, [5, 0], [5, 5]]\n", ["[x, y]"], id="mapping-as-point"),
    pytest.param("zones:\n  bay: [[1, 2, 3], [5, 0], [5, 5]]\n", ["[x, y]"], id="three-coordinates"),
    pytest.param("zones:\n  bay: [[1], [5, 0], [5, 5]]\n", ["[x, y]"], id="one-coordinate"),
    pytest.param("zones:\n  bay: [[], [5, 0], [5, 5]]\n", ["[x, y]"], id="empty-point"),
    pytest.param("zones:\n  bay: [1, 2, 3]\n", ["[x, y]"], id="flat-numbers"),
    pytest.param("zones:\n  bay: {a: 1}\n", ["list of [x, y] points"], id="zone-mapping"),
    pytest.param("zones:\n  bay: 5\n", ["list of [x, y] points"], id="zone-scalar"),
    pytest.param("zones:\n  bay:\n", ["list of [x, y] points"], id="zone-null"),
    pytest.param("zones:\n  bay: []\n", ["0 point(s)"], id="zone-empty"),
    pytest.param("units: fractions\nzones:\n  bay: [[0, 0], [50, 0], [50, 50]]\n", ["outside", "0 to 1"],
                 id="pixels-given-as-fractions"),
    pytest.param("units: fractions\nzones:\n  bay: [[0, 0], [-0.1, 0], [1, 1]]\n", ["outside"], id="negative-fraction"),
    pytest.param(f"zones:\n  bay: {_points(1001)}\n", ["1,001 points", "1,000"], id="1001-points"),
    pytest.param(f"zones:\n  bay: {BAY}\n  Bay: {BAY}\n", ["ward.yaml:3:", "duplicate"], id="duplicate-by-case"),
    pytest.param(f"zones:\n  bay: {BAY}\n  bay: {BAY}\n", ["duplicate", "line 2"], id="duplicate-name"),
    pytest.param(f"zones:\n  '  ': {BAY}\n", ["blank"], id="blank-name"),
    pytest.param(f"zones:\n  [a, b]: {BAY}\n", ["list or mapping"], id="list-as-name"),
    pytest.param(f"zones:\n  \"\\e[31mbay\": {BAY}\n  \"\\e[31mBAY\": {BAY}\n", ["duplicate"], id="escape-in-name"),
    pytest.param(f"zone:\n  bay: {BAY}\n", ["unknown key 'zone'", "did you mean 'zones'"], id="misspelt-zones"),
    pytest.param(f"zones:\n  bay: {BAY}\ncolour: red\n", ["unknown key 'colour'"], id="unknown-top-key"),
    pytest.param(f"zones: {BAY}\n", ["zones must be a mapping"], id="zones-a-list"),
    pytest.param("zones: bay\n", ["zones must be a mapping"], id="zones-a-scalar"),
    pytest.param("- bay\n- door\n", ["the file must be a mapping"], id="file-a-list"),
    pytest.param("just some text\n", ["the file must be a mapping"], id="file-a-scalar"),
    pytest.param("# only a comment\n", ["empty"], id="only-comments"),
    pytest.param(f"units: [pixels]\nzones:\n  bay: {BAY}\n", ["units"], id="units-a-list"),
    pytest.param(f"units: Pixels\nzones:\n  bay: {BAY}\n", ["units"], id="units-capitalised"),
    pytest.param("lines:\n  door: [[0, 0], [5, 5], [9, 9]]\n", ["two different points"], id="line-of-three"),
    pytest.param("lines:\n  door: [[0, 0]]\n", ["two different points"], id="line-of-one"),
    pytest.param("lines:\n  door: [[10.2, 5], [10.4, 5]]\n", ["ward.yaml:2:", "'door'", "shorter than a pixel"],
                 id="line-rounds-to-one-pixel"),
    pytest.param("lines:\n  door: [[0.6, 0.6], [1.4, 1.4]]\n", ["shorter than a pixel"], id="one-pixel-diagonal"),
    pytest.param("zones:\n  bay: [&p [0, 0], *p, [5, 5]]\n", ["alias"], id="alias"),
    pytest.param("zones:\n  bay: [[!!float 1, 0], [5, 0], [5, 5]]\n", ["tag"], id="float-tag"),
    pytest.param("zones:\n  bay: !!set {a, b}\n", ["tag"], id="set-tag"),
    pytest.param("zones:\n  bay: [[0, 0], [5, 0], [5, 5]]\x07\n", ["not valid yaml"], id="control-character"),
    pytest.param(b"zones:\n  b\xffy: [[0, 0], [5, 0], [5, 5]]\n", ["ward.yaml:2:", "not utf-8"], id="not-utf8"),
    pytest.param("zones:\n  bay: " + "[" * 12 + "0" + "]" * 12 + "\n", ["nested deeper"], id="deep-nesting"),
    pytest.param("# padding\n" * 15000 + f"zones:\n  bay: {BAY}\n", ["over 128 KiB"], id="over-128-KiB"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "mentions"), ZONE_CASES)
def test_hostile_zones_file_is_refused_and_touches_nothing(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], content: str | bytes, mentions: list[str]
) -> None:
    line = refused(tmp_path, image, capfd, content, "--alerts", tmp_path / "outputs" / "a.jsonl")
    for mention in mentions:
        assert mention.lower() in line.lower(), f"{mention!r} not in {line!r}"
    assert "\x1b" not in line


def test_a_100000_point_polygon_is_refused_in_seconds(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    line = refused(tmp_path, image, capfd, f"zones:\n  bay: {_points(100_000)}\n")
    assert "over 128 KiB" in line and time.monotonic() - started < 10


@pytest.fixture(params=["image", "folder", "video"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """192x112 frames as one image, a folder of three, or a three-frame video."""
    folder = tmp_path / "media"
    folder.mkdir()
    frames = small_frames(3)
    if request.param == "video":
        return write_clip(folder / "clip.mp4", frames)
    for index, frame in enumerate(frames[: 1 if request.param == "image" else 3]):
        cv2.imwrite(str(folder / f"frame{index}.png"), frame)
    return folder / "frame0.png" if request.param == "image" else folder


# (zones file that does not fit a 192x112 frame, words the error must mention)
MISFITS = [
    pytest.param("zones:\n  bay: [[0, 0], [100, 0], [100, 100]]\nlines:\n  door:\n    - [0, 0]\n    - [150, 500]\n",
                 ["ward.yaml:4:", "'door'", "(150, 500)", "192x112", "fractions"], id="line-point-below"),
    pytest.param("zones:\n  bay: [[0, 0], [193, 0], [100, 100]]\n", ["ward.yaml:2:", "(193, 0)", "192x112"],
                 id="zone-point-right"),
    pytest.param("zones:\n  bay: [[0, 0], [1.0e+300, 0], [100, 100]]\n", ["ward.yaml:2:", "outside"], id="huge"),
    pytest.param("units: fractions\nlines:\n  door: [[0.5, 0.5], [0.501, 0.5]]\n",
                 ["ward.yaml:3:", "'door'", "shorter than a pixel", "192x112"], id="fraction-line-under-a-pixel"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "mentions"), MISFITS)
def test_zones_that_do_not_fit_the_frames_are_refused_before_any_output(
    tmp_path: Path, source: Path, capfd: pytest.CaptureFixture[str], content: str, mentions: list[str]
) -> None:
    line = refused(tmp_path, source, capfd, content)
    for mention in mentions:
        assert mention.lower() in line.lower(), f"{mention!r} not in {line!r}"
