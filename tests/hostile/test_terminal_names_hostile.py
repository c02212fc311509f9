"""File names with terminal escape sequences: what ovdet prints about them is text, never a control sequence.

A name such as ``"\\x1b]0;pwned\\x07a.txt"`` (retitles the window) or ``"\\x1b[2J.jpg"`` (clears the screen) in
an input folder reaches the "skipped" warning and the error lines; each control character must come out escaped
(``\\x1b``), so stderr holds no byte below 0x20 but the newline that ends each line, and no DEL or C1 control.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovdet.core.errors import printable
from tests.hostile.harness import Result, assert_error, run_cli

CONTROL = [chr(c) for c in (*range(1, 0x20), 0x7F, *range(0x80, 0xA0))]  # NUL cannot be in a file name
KNOWN = ["\x1b]0;pwned\x07a.txt", "\x1b[2J.jpg", "line\nbreak.txt", "bell\x07.png", "\x9b31mred.txt", "cr\rlf.txt"]
names = st.builds(
    lambda head, control, tail: head + control + tail,
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), max_size=12),
    st.text(st.sampled_from(CONTROL), min_size=1, max_size=4),
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), max_size=12),
).filter(lambda name: name not in (".", "..") and len(name.encode("utf-8", "surrogatepass")) < 200)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_no_control_characters(result: Result) -> None:
    """No control character on stderr but the newline that ends each line, and every line is ovdet's own."""
    lines = result.err.split("\n")
    shown = [c for line in lines for c in line if c in CONTROL or ord(c) < 0x20]
    assert not shown, f"control characters on stderr: {shown!r} in {result.err!r}"
    assert all(line.startswith("ovdet: ") for line in lines if line), f"a line that is not ovdet's: {result.err!r}"


def _skipped_then_refused(name: str, capfd) -> Result:
    """A folder whose only file is ``name`` + ``.txt``: skipped with a warning, then 'holds no images'."""
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "inputs"
        folder.mkdir()
        (folder / f"{name}.txt").write_bytes(b"not an image")
        result = run_cli(["detect", folder, "--classes", "person", "--output", Path(root) / "o.jsonl"], capfd)
    assert result.code == 1, result.err
    assert any("skipped 1 non-image file" in line for line in result.err_lines), result.err
    return result


@pytest.mark.parametrize("name", KNOWN)
def test_a_known_escape_sequence_is_shown_escaped(name: str, capfd) -> None:
    result = _skipped_then_refused(name, capfd)
    assert_no_control_characters(result)
    assert printable(name) in result.err


@given(name=names)
@EXAMPLES
def test_a_skipped_file_name_never_reaches_the_terminal_raw(name: str, capfd) -> None:
    assert_no_control_characters(_skipped_then_refused(name, capfd))


@given(name=names.filter(lambda name: not set(name) & set("*?[")))  # not a glob pattern: a missing file
@EXAMPLES
def test_a_missing_source_name_in_an_error_is_escaped(name: str, capfd) -> None:
    with tempfile.TemporaryDirectory() as root:
        result = run_cli(["detect", Path(root) / name, "--classes", "person"], capfd)
    assert_error(result, 1, "does not exist")
    assert_no_control_characters(result)
