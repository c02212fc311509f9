"""Hostile media and flags: huge, tiny, damaged, unreadable and oddly named images, folders and videos; settings
out of range.

Each case writes its own input, runs ``ovdet detect`` in this process and checks: the exit code; one
``ovdet: error:`` line, or only ``ovdet: warning:`` lines (no libpng, OpenCV or FFmpeg lines, no traceback); the
inputs byte-identical; every output valid; no temporary file left.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovdet import ConfigError
from ovdet.core.config import MAX_BATCH_PIXELS, MAX_IMGSZ, InferenceSettings
from tests.hostile.harness import (
    REPO,
    Result,
    assert_clean_stderr,
    assert_error,
    assert_no_temporaries,
    assert_valid_output,
    run_cli,
    unchanged,
)
from tests.media import (
    corrupt_middle,
    png_header,
    refusing_open,
    small_frames,
    truncate,
    write_audio_only,
    write_clip,
    write_no_frames,
    write_vfr_clip,
)

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run

CLASSES = ("--classes", "bottle,person")
VFR_STAMPS = np.cumsum([0] + [20, 67, 40, 100, 33, 20, 80, 40] * 3).tolist()  # milliseconds, irregular


@dataclass(frozen=True)
class Case:
    """``make`` writes the input into the working folder and returns the source argument; the run must exit with
    ``code``, its one error line name ``says``, its warning lines match ``warns`` (in order), its JSONL hold
    ``records`` lines and pass ``check``. ``flags`` come after the defaults; ``separate`` puts ``--`` before the
    source."""

    make: Callable[[Path, pytest.MonkeyPatch], str]
    code: int
    says: tuple[str, ...] = ()
    warns: tuple[str, ...] = ()
    records: int | None = None
    check: Callable[[list[dict]], None] | None = None
    flags: tuple[str, ...] = ()
    separate: bool = True


# --- inputs -------------------------------------------------------------------------------------------------------


def _encoded(suffix: str, size: tuple[int, int] = (96, 54)) -> bytes:
    return cv2.imencode(suffix, cv2.resize(small_frames(1)[0], size))[1].tobytes()


def _file(name: str, content: Callable[[], bytes]) -> Callable[[Path, pytest.MonkeyPatch], str]:
    def make(folder: Path, patch: pytest.MonkeyPatch) -> str:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content())
        return name

    return make


def _image(name: str, size: tuple[int, int] = (96, 54)) -> Callable[[Path, pytest.MonkeyPatch], str]:
    return _file(name, lambda: _encoded(Path(name).suffix, size))


def _broken_crc() -> bytes:
    data = bytearray(_encoded(".png"))
    data[29] ^= 0xFF  # the header chunk's checksum
    return bytes(data)


def _folder(name: str, files: dict[str, Callable[[], bytes]], locked: tuple[str, ...] = ()):
    def make(folder: Path, patch: pytest.MonkeyPatch) -> str:
        (folder / name).mkdir()
        for file, content in files.items():
            (folder / name / file).write_bytes(content())
        patch.setattr("builtins.open", refusing_open(*(folder / name / file for file in locked)))
        return name

    return make


def _locked_image(folder: Path, patch: pytest.MonkeyPatch) -> str:
    _image("locked.jpg")(folder, patch)
    patch.setattr("builtins.open", refusing_open(folder / "locked.jpg"))
    return "locked.jpg"


def _link(target: Callable[[Path, pytest.MonkeyPatch], str] | None) -> Callable[[Path, pytest.MonkeyPatch], str]:
    def make(folder: Path, patch: pytest.MonkeyPatch) -> str:
        name = target(folder, patch) if target else "gone.jpg"
        (folder / "link.jpg").symlink_to(folder / name)
        return "link.jpg"

    return make


def _video(name: str, write: Callable[[Path], object]) -> Callable[[Path, pytest.MonkeyPatch], str]:
    def make(folder: Path, patch: pytest.MonkeyPatch) -> str:
        write(folder / name)
        return name

    return make


def _damaged(path: Path) -> None:
    write_clip(path, small_frames(60), keyframe_interval=5)
    corrupt_middle(path, start=0.45, length=3000)


def _truncated(path: Path) -> None:
    write_clip(path, small_frames(40), keyframe_interval=5, movflags="faststart")
    truncate(path, 0.5)


# --- what the records must show -------------------------------------------------------------------------------------


def _each(field: str, *expected) -> Callable[[list[dict]], None]:
    """Check a field of every record: ``frame``, ``size`` (width, height) or ``name`` (the source's file name)."""

    def read(record: dict):
        if field == "size":
            return record["width"], record["height"]
        return Path(record["source"]).name if field == "name" else record[field]

    def check(records: list[dict]) -> None:
        assert [read(r) for r in records] == list(expected)

    return check


def _frames_match_timestamps(fps: float) -> Callable[[list[dict]], None]:
    """After damage, each record's ``frame`` is still its source index: round(time from the start × fps)."""

    def check(records: list[dict]) -> None:
        start = records[0]["timestamp"] - records[0]["frame"] / fps
        assert [r["frame"] for r in records] == [round((r["timestamp"] - start) * fps) for r in records]
        assert records[-1]["frame"] == 59 and len(records) < 60

    return check


def _contiguous(records: list[dict]) -> None:
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert 5 < len(records) < 40


# --- the cases ------------------------------------------------------------------------------------------------------

IMAGES = {
    "png-header-40000x40000": Case(_file("huge.png", lambda: png_header(40000, 40000)), 1, ("huge.png", "8192×8192")),
    "png-header-9000x9000": Case(_file("big.png", lambda: png_header(9000, 9000)), 1, ("9000×9000", "8192×8192")),
    "zero-bytes": Case(_file("empty.jpg", bytes), 1, ("empty.jpg", "empty")),
    "truncated-jpeg": Case(_file("cut.jpg", lambda: _encoded(".jpg")[:400]), 1, ("cut.jpg", "could not be decoded")),
    "truncated-png": Case(_file("cut.png", lambda: _encoded(".png")[:80]), 1, ("cut.png", "could not be decoded")),
    "png-broken-crc": Case(_file("crc.png", _broken_crc), 1, ("crc.png", "could not be decoded")),
    "png-0x0": Case(_file("none.png", lambda: png_header(0, 0)), 1, ("none.png", "could not be decoded")),
    "text-named-jpg": Case(_file("notes.jpg", lambda: b"a shopping list\n"), 1, ("notes.jpg", "not an image")),
    "permission-denied": Case(_locked_image, 1, ("locked.jpg", "cannot be read (permission denied)")),
    "broken-symlink": Case(_link(None), 1, ("link.jpg", "does not exist")),
    "one-pixel": Case(_image("dot.png", (1, 1)), 0, records=1, check=_each("size", (1, 1))),
    "one-pixel-wide-strip": Case(_image("strip.png", (1, 700)), 0, records=1, check=_each("size", (1, 700))),
    "spaces-and-unicode-in-the-name": Case(_image("été à la plage ✓.jpg"), 0, records=1),
    "leading-dash-after-double-dash": Case(_image("-x.jpg"), 0, records=1, check=_each("name", "-x.jpg")),
    "leading-dash-without-double-dash": Case(_image("-x.jpg"), 2, ("source", "--help"), separate=False),
    "symlink-to-an-image": Case(_link(_image("real.jpg")), 0, records=1, check=_each("name", "link.jpg")),
    "image-without-a-suffix": Case(_file("photo", lambda: _encoded(".jpg")), 0, records=1),
}

FOLDERS = {
    "huge-png-among-good-images": Case(
        _folder("f", {"a.jpg": lambda: _encoded(".jpg"), "b.png": lambda: png_header(40000, 40000)}),
        0, warns=(r"skipped image .*b\.png has more than .* pixels",), records=1, check=_each("name", "a.jpg"),
    ),
    "unreadable-image-among-good-ones": Case(
        _folder("f", {"a.jpg": lambda: _encoded(".jpg"), "b.jpg": lambda: _encoded(".jpg")}, locked=("a.jpg",)),
        0, warns=(r"skipped image .*a\.jpg cannot be read \(permission denied\)",), check=_each("name", "b.jpg"),
    ),
    "every-file-bad": Case(
        _folder("f", {"a.jpg": lambda: b"text", "b.png": _broken_crc, "c.png": lambda: png_header(9000, 9000)}),
        1, ("none of the 3 images", "could be read"), warns=(r"a\.jpg could not", r"b\.png could not", r"c\.png is"),
        records=0,
    ),
    "non-images-and-a-broken-png": Case(
        _folder("f", {"a.jpg": lambda: _encoded(".jpg"), "n.txt": lambda: b"x", "z.png": lambda: b"\x89PNG\r\n"}),
        0, warns=(r"skipped 1 non-image file.*n\.txt", r"skipped image .*z\.png could not be decoded"), records=1,
    ),
    "folder-named-2024": Case(_folder("2024", {"a.jpg": lambda: _encoded(".jpg")}), 0, records=1),
    "folder-named-0": Case(_folder("0", {"a.jpg": lambda: _encoded(".jpg")}), 0, records=1),
    "missing-webcam-7": Case(lambda folder, patch: "7", 1, ("camera 7 could not be opened",)),
}  # fmt: skip

VIDEOS = {
    "one-frame": Case(_video("one.mp4", lambda p: write_clip(p, small_frames(1))), 0, check=_each("frame", 0)),
    "no-frames": Case(_video("none.avi", write_no_frames), 1, ("none.avi", "no frame")),
    "truncated": Case(_video("cut.mp4", _truncated), 0, warns=(r"cut\.mp4 is truncated .*missing at the end",),
                      check=_contiguous),
    "damaged-in-the-middle": Case(
        _video("bad.ts", _damaged), 0, warns=(r"bad\.ts is truncated or corrupt: frames \d+–\d+ missing",),
        check=_frames_match_timestamps(25),
    ),
    "variable-frame-rate": Case(
        _video("vfr.mkv", lambda p: write_vfr_clip(p, small_frames(len(VFR_STAMPS)), VFR_STAMPS)),
        0, records=len(VFR_STAMPS), check=_each("frame", *range(len(VFR_STAMPS))),
    ),
    "variable-frame-rate-with-stride": Case(
        _video("vfr.mp4", lambda p: write_vfr_clip(p, small_frames(len(VFR_STAMPS)), VFR_STAMPS)),
        0, check=_each("frame", *range(0, len(VFR_STAMPS), 3)), flags=("--vid-stride", "3"),
    ),
    "audio-only-mp4": Case(_video("song.mp4", write_audio_only), 1, ("song.mp4", "no video stream")),
    "text-named-mp4": Case(_file("clip.mp4", lambda: b"not a video\n"), 1, ("clip.mp4", "could not be opened")),
    "gif": Case(_video("anim.gif", lambda p: write_clip(p, small_frames(6), codec="gif")), 0, records=6),
}  # fmt: skip

_PHOTO = _image("a.jpg")
FLAGS = {
    "imgsz-100000": Case(_PHOTO, 2, ("imgsz 100000", "4096"), flags=("--imgsz", "100000")),
    "imgsz-4128": Case(_PHOTO, 2, ("imgsz 4128", "4096"), flags=("--imgsz", "4128")),
    "imgsz-0": Case(_PHOTO, 2, ("imgsz", "positive"), flags=("--imgsz", "0")),
    "imgsz-33": Case(_PHOTO, 2, ("imgsz", "multiple of 32"), flags=("--imgsz", "33")),
    "imgsz-not-a-number": Case(_PHOTO, 2, ("--imgsz", "invalid int"), flags=("--imgsz", "big")),
    "batch-0": Case(_PHOTO, 2, ("batch", "positive"), flags=("--batch", "0")),
    "batch-100000": Case(_PHOTO, 2, ("batch 100000", "4096²"), flags=("--batch", "100000")),
    "batch-41-at-imgsz-640": Case(_PHOTO, 2, ("batch ≤ 40",), flags=("--imgsz", "640", "--batch", "41")),
    "vid-stride-0": Case(_PHOTO, 2, ("vid_stride", "positive"), flags=("--vid-stride", "0")),
    "conf-2": Case(_PHOTO, 2, ("conf", "[0, 1]"), flags=("--conf", "2")),
    "conf-negative": Case(_PHOTO, 2, ("conf", "[0, 1]"), flags=("--conf", "-0.5")),
    "iou-1.5": Case(_PHOTO, 2, ("iou", "[0, 1]"), flags=("--iou", "1.5")),
    "max-det-0": Case(_PHOTO, 2, ("max_det", "positive"), flags=("--max-det", "0")),
}


# --- the runs -------------------------------------------------------------------------------------------------------


def _run_case(case: Case, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch, model_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    monkeypatch.chdir(inputs)
    source = case.make(inputs, monkeypatch)
    jsonl = out / "detections.jsonl"
    model = ("--model", model_path, "--device", "cpu", "--imgsz", "160", "--quiet")
    tail = ("--", source) if case.separate else (source,)
    with unchanged(inputs):
        result = run_cli(["detect", *CLASSES, "--output", jsonl, *model, *case.flags, *tail], capfd)
    _check_stderr(case, result)
    for path in out.rglob("*"):
        assert_valid_output(path)
    assert_no_temporaries(inputs, out)
    if case.records is not None or case.check is not None:
        records = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert case.records is None or len(records) == case.records, records
        if case.check is not None:
            case.check(records)


def _check_stderr(case: Case, result: Result) -> None:
    assert "ovdet: error: unexpected" not in result.err, "a crash caught by the CLI, not ovdet's own error"
    if case.code != 0 and not case.warns:
        assert_error(result, case.code, *case.says)
        return
    lines = assert_clean_stderr(result, case.code)
    warnings = [line for line in lines if line.startswith("ovdet: warning: ")]
    errors = [line for line in lines if line.startswith("ovdet: error: ")]
    assert len(warnings) + len(errors) == len(lines), lines
    assert len(warnings) == len(case.warns), lines
    for pattern, line in zip(case.warns, warnings, strict=True):
        assert re.search(pattern, line), f"{pattern!r} not in {line!r}"
    assert len(errors) == (case.code != 0), lines
    for word in case.says:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"


CASES = {
    f"{family}-{name}": case
    for family, cases in (("image", IMAGES), ("folder", FOLDERS), ("video", VIDEOS), ("flag", FLAGS))
    for name, case in cases.items()
}


@pytest.mark.parametrize("name", sorted(CASES), ids=str)
def test_hostile_media(name: str, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch, model_path: Path) -> None:
    _run_case(CASES[name], tmp_path, capfd, monkeypatch, model_path)


def test_size_limits_are_inclusive() -> None:
    assert InferenceSettings(imgsz=MAX_IMGSZ).imgsz == 4096 and InferenceSettings(batch=40).batch == 40
    assert InferenceSettings(imgsz=2048, batch=4).batch * 2048**2 == MAX_BATCH_PIXELS
    with pytest.raises(ConfigError, match="batch ≤ 4 at imgsz 2048"):
        InferenceSettings(imgsz=2048, batch=5)


def test_flag_limits_are_documented() -> None:
    """The README and ``--imgsz --help`` name the limits that the cases above enforce."""
    from ovdet.cli import build_parser

    readme = (REPO / "README.md").read_text()
    assert "`--imgsz` is at most 4096" in readme and "67,108,864 pixels (8192×8192)" in readme
    detect = build_parser()._subparsers._group_actions[0].choices["detect"]
    assert "4096" in detect.format_help()


# --- with permissions really denied ---------------------------------------------------------------------------------

# Linux capabilities that let root read any file; without them root is refused as any user is. (Switching to
# `nobody` instead would need the interpreter, the virtualenv and the weights readable by everyone.)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def _drop_file_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _run_without_file_capabilities(args: list[str]) -> Result:
    completed = subprocess.run(
        [sys.executable, "-m", "ovdet", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO,
        preexec_fn=_drop_file_capabilities,
    )  # fmt: skip
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def denied(tmp_path: Path) -> Path:
    """``tmp_path``, after checking that a child process without those capabilities cannot read a mode-000 file."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root on Linux: only root can drop the capabilities that override file permissions")
    locked = tmp_path / "probe"
    locked.write_text("secret")
    locked.chmod(0)
    reader = [sys.executable, "-c", f"open({str(locked)!r}).read()"]
    try:
        probe = subprocess.run(reader, capture_output=True, preexec_fn=_drop_file_capabilities)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop capabilities here: {exc}")
    locked.unlink()
    if probe.returncode == 0:
        pytest.skip("file permissions are not enforced for this process")
    return tmp_path


@pytest.mark.parametrize("what", ["image", "folder", "image-in-a-folder"])
def test_unreadable_with_permissions_really_denied(what: str, denied: Path, model_path: Path, detector) -> None:
    """A file or folder the user may not read: one line, or a skipped image, in a real process."""
    photos, out = denied / "photos", denied / "out"
    photos.mkdir()
    out.mkdir()
    for name, frame in zip(("a.jpg", "b.jpg"), small_frames(2)):
        cv2.imwrite(str(photos / name), frame)
    (photos / "a.jpg").chmod(0)
    detector.embeddings.save(denied / "vocab.npz")
    source = photos / "a.jpg" if what == "image" else photos
    jsonl = out / "d.jsonl"
    args = ["detect", source, "--vocab", denied / "vocab.npz", "--model", model_path, "--device", "cpu",
            "--imgsz", "160", "--quiet", "--output", jsonl]  # fmt: skip
    with unchanged(photos):
        photos.chmod(0 if what == "folder" else 0o755)
        try:
            result = _run_without_file_capabilities(args)
        finally:
            photos.chmod(0o755)
    if what == "image-in-a-folder":
        lines = assert_clean_stderr(result, 0)
        assert len(lines) == 1 and re.search(r"skipped image .*a\.jpg cannot be read \(permission denied\)", lines[0])
        assert [Path(json.loads(line)["source"]).name for line in jsonl.read_text().splitlines()] == ["b.jpg"]
    else:
        assert_error(result, 1, "cannot be read (permission denied)", str(source))
    assert_no_temporaries(denied)
