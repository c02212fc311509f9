"""Numbers on the command line: every numeric flag of every command refuses NaN, infinity and junk in one usage
line (exit 2), before any work. The flags are read from the parsers themselves, so a new flag is covered the day
it is added; ``serve``'s flags also refuse values out of their range."""

from __future__ import annotations

import argparse

import pytest

from ovdet.cli import build_parser
from tests.hostile.harness import assert_error, run_cli


def numeric_flags() -> list[tuple[str, str]]:
    """``(command, flag)`` for every option whose type makes a number (``int``, ``float`` or a range of them)."""
    parser = build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    flags = []
    for name, command in commands.choices.items():
        for action in command._actions:
            kind = getattr(action.type, "__name__", "")
            if action.option_strings and kind in ("int", "float", "finite_float"):
                flags.append((name, action.option_strings[-1]))
    return flags


NUMERIC_FLAGS = numeric_flags()


def test_the_introspection_finds_the_flags_the_issue_names():
    assert {("serve", "--max-upload-mb"), ("serve", "--timeout"), ("detect", "--conf"), ("batch", "--cpus-per-worker"),
            ("detect", "--reconnect-timeout")} <= set(NUMERIC_FLAGS)  # fmt: skip
    assert len(NUMERIC_FLAGS) >= 40


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("command", "flag"), NUMERIC_FLAGS)
def test_every_numeric_flag_refuses_nan_and_infinity(capfd, command: str, flag: str, value: str):
    result = run_cli([command, f"{flag}={value}"], capfd)
    assert_error(result, 2, flag, repr(value) if value != "-inf" else "-inf")


@pytest.mark.parametrize(
    ("flag", "value", "mention"),
    [("--timeout", "0", "more than 0"), ("--timeout", "1e308", "at most 86400"),
     ("--batch-wait-ms", "-1", "at least 0"), ("--batch-wait-ms", "1e300", "at most"),
     ("--max-upload-mb", "0", "more than 0"), ("--max-upload-mb", "1e309", "not a finite number"),
     ("--max-video-mb", "-5", "more than 0"), ("--max-queued-mb", "0", "more than 0"),
     ("--max-classes", "0", "at least 1"), ("--max-classes", "100000", "at most 4096"),
     ("--max-pixels", "0", "at least 1"), ("--max-video-pixels", "-1", "at least 1"),
     ("--queue-size", "0", "at least 1"), ("--max-batch", "1000", "at most"), ("--port", "70000", "at most 65535"),
     ("--batch", "0", "at least 1"), ("--max-classes", "1.5", "whole number")],
)  # fmt: skip
def test_serve_flags_out_of_range_are_one_usage_line(capfd, flag: str, value: str, mention: str):
    result = run_cli(["serve", "--model", "never-loaded.pt", f"{flag}={value}"], capfd)
    assert_error(result, 2, flag, mention)
