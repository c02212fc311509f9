"""What every hostile-input case asserts, as a user would check it.

- the exit code;
- stderr: every line is ovdet's own (``ovdet: …``), no traceback, and an error is exactly one line;
- every input byte-identical afterwards (SHA-256 before and after);
- every output valid: JSONL line-complete, CSV parseable with its header, JSON/COCO parseable, video decodable;
- no temporary file left behind.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovdet.cli import main

REPO = Path(__file__).resolve().parents[2]
TEMPORARY = re.compile(r"(\.tmp$|\.part$|\.partial-|\.previous-|^\.ovdet-write-test)")
# tqdm redraws its bar with carriage returns; a line that ends in one was overwritten on the terminal.
_ERASED = re.compile(r"[^\n]*\r(?!\n)")


@dataclass
class Result:
    """What a run of ``ovdet`` left: exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in _ERASED.sub("", self.err).splitlines() if line.strip()]


def run_cli(args: Sequence[str], capfd: pytest.CaptureFixture[str]) -> Result:
    """``ovdet ARGS`` in this process; stderr is captured at the file-descriptor level (C libraries included)."""
    capfd.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capfd.readouterr()
    return Result(code, captured.out, captured.err)


def run_subprocess(args: Sequence[str], *, timeout: float = 180, env: dict[str, str] | None = None) -> Result:
    """``ovdet ARGS`` in a fresh interpreter (the no-network guard is installed there too)."""
    completed = subprocess.run(
        [sys.executable, "-m", "ovdet", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO,
    )  # fmt: skip
    return Result(completed.returncode, completed.stdout, completed.stderr)


def assert_error(result: Result, code: int, *mentions: str) -> str:
    """Exactly one stderr line, ``ovdet: error: …``, mentioning each of ``mentions``; returns it."""
    assert result.code == code, f"exit {result.code}, expected {code}; stderr:\n{result.err}"
    assert "Traceback" not in result.err, result.err
    lines = result.err_lines
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{result.err}"
    assert lines[0].startswith("ovdet: error: "), lines[0]
    for mention in mentions:
        assert mention.lower() in lines[0].lower(), f"{mention!r} not in {lines[0]!r}"
    return lines[0]


def assert_clean_stderr(result: Result, code: int = 0) -> list[str]:
    """The run exited with ``code``; every stderr line is ovdet's own and none is a traceback; returns them."""
    assert result.code == code, f"exit {result.code}, expected {code}; stderr:\n{result.err}"
    assert "Traceback" not in result.err, result.err
    lines = result.err_lines
    foreign = [line for line in lines if not line.startswith("ovdet: ")]
    assert not foreign, f"lines on stderr that are not ovdet's: {foreign}"
    return lines


def checksums(paths: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of every file under ``paths`` (files or folders)."""
    sums = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            sums[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


@contextmanager
def unchanged(*paths: Path) -> Iterator[None]:
    """Assert that every file under ``paths`` is byte-identical afterwards and that none appeared or vanished."""
    before = checksums(paths)
    yield
    after = checksums(paths)
    assert sorted(map(str, after)) == sorted(map(str, before)), "files appeared or vanished among the inputs"
    changed = [str(p) for p in before if before[p] != after[p]]
    assert not changed, f"inputs changed: {changed}"


def assert_no_temporaries(*folders: Path) -> None:
    """No ``.tmp``, ``.part``, staging or write-probe file anywhere under ``folders``."""
    for folder in folders:
        if folder.is_dir():
            left = [str(p) for p in folder.rglob("*") if TEMPORARY.search(p.name)]
            assert not left, f"temporary files left behind: {left}"


def assert_valid_output(path: Path) -> None:
    """The file is complete and parseable for its type (an empty JSONL or a header-only CSV is valid)."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if suffix in (".jsonl", ".ndjson"):
        assert not data or data.endswith(b"\n"), f"{path}: last line is incomplete"
        for line in data.decode("utf-8").splitlines():
            json.loads(line)
    elif suffix == ".csv":
        rows = list(csv.reader(data.decode("utf-8").splitlines()))
        assert rows and rows[0][0] == "source", f"{path}: no header"
        assert all(len(row) == len(rows[0]) for row in rows), f"{path}: ragged rows"
    elif suffix == ".json":
        json.loads(data)
    elif suffix in (".mp4", ".mkv", ".mov", ".m4v"):
        assert decoded_frames(path) > 0, f"{path}: no decodable frame"
    else:
        raise AssertionError(f"no validity check for {path}")


def decoded_frames(path: Path) -> int:
    """Frames PyAV decodes from a video file."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
