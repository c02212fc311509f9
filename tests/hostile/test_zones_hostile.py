"""Hostile zones files through the CLI: malformed zones, lines and rules are refused in one line naming the file, the
line and the fix, before any work (a pixel point outside the frame: at the first frame, with every output valid).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import assert_error, assert_no_temporaries, assert_valid_output, run_cli, unchanged

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


def test_pixel_point_outside_the_frame_is_refused_at_the_first_frame(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    zones = image.parent / "ward.yaml"
    zones.write_text("zones:\n  bay: [[0, 0], [100, 0], [100, 100]]\nlines:\n  door:\n    - [0, 0]\n    - [150, 500]\n")
    out = tmp_path / "out"
    with unchanged(image.parent):
        result = run_cli(
            ["detect", image, "--classes", "pump", "--zones", zones, "--output", out / "o.jsonl", "--imgsz", 160],
            capfd,
        )
    assert_error(result, 1, "ward.yaml:4:", "'door'", "(150, 500)", "192x112", "fractions")
    assert_valid_output(out / "o.jsonl")


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
