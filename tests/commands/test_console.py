"""What ``ovdet`` prints, as a user reads it: the rate with start-up apart, "image(s)" for images, a conversion as a
note rather than a warning, a bad CLIP file refused before any conversion, global flags on either side of the
subcommand, and help texts that say what the flags do."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from ovdet.cli import COMMANDS, build_parser
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli
from tests.media import small_frames

FAST = ["--imgsz", "160", "--device", "cpu", "--conf", "0.01", "--no-save"]
RATE = re.compile(r"^(\d+) image\(s\) in \d+\.\d s, \d+\.\d images/s; start-up \d+\.\d s$", flags=re.M)


pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for index, frame in enumerate(small_frames(3)):
        cv2.imwrite(str(folder / f"shelf{index}.jpg"), frame)
    return folder


def test_rate_line_counts_images_and_shows_start_up_apart(images: Path, capfd) -> None:
    result = run_cli(["detect", images, "--classes", "bottle", *FAST], capfd)
    assert_clean_stderr(result)
    assert RATE.search(result.out).group(1) == "3", result.out
    assert "frame" not in result.out


def test_a_conversion_is_a_note_not_a_warning(images: Path, tmp_path: Path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("OVDET_COMPILED_DIR", str(tmp_path / "compiled"))
    result = run_cli(["detect", images / "shelf0.jpg", "--classes", "bottle", *FAST, "--runtime", "openvino"], capfd)
    lines = assert_clean_stderr(result)
    notes = [line for line in lines if "converting" in line]
    assert len(notes) == 1 and notes[0].startswith("ovdet: converting ") and "warning" not in notes[0].lower()
    assert (tmp_path / "compiled").is_dir()


def test_a_bad_clip_file_fails_before_any_conversion(images: Path, tmp_path: Path, capfd, monkeypatch) -> None:
    compiled, clip = tmp_path / "compiled", tmp_path / "clip.pt"
    clip.write_bytes(b"not a checkpoint" * 64)
    monkeypatch.setenv("OVDET_COMPILED_DIR", str(compiled))
    monkeypatch.setenv("OVDET_CLIP_WEIGHTS", str(clip))
    monkeypatch.setenv("OVDET_CACHE_DIR", str(tmp_path / "cold-cache"))  # nothing cached: CLIP is needed
    result = run_cli(["detect", images / "shelf0.jpg", "--classes", "bottle", *FAST, "--runtime", "openvino"], capfd)
    assert_error(result, 1, str(clip), "CLIP")
    assert not compiled.exists(), "converted before checking the CLIP file"


@pytest.mark.parametrize("position", ["before", "after"])
def test_global_flags_on_either_side_of_the_subcommand(position: str, images: Path, capfd) -> None:
    args = ["detect", images / "missing.jpg", "--classes", "bottle", *FAST]
    result = run_cli(["--verbose", *args] if position == "before" else [*args, "--verbose"], capfd)
    assert result.code == 1 and "Traceback" in result.err and "ovdet: error:" in result.err
    if position == "after":  # before the subcommand it always worked; one real run is enough
        quiet = run_cli(["detect", images, "--classes", "bottle", *FAST, "--quiet"], capfd)
        assert quiet.code == 0 and quiet.out == "" and quiet.err_lines == []


def test_every_subcommand_takes_the_global_flags() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert len(commands) == len(COMMANDS)
    for name, subcommand in commands.items():
        flags = {option for action in subcommand._actions for option in action.option_strings}
        assert {"--verbose", "--quiet"} <= flags, name
    assert parser.parse_args(["--verbose", "embed", "--classes", "a", "-o", "x.npz"]).verbose is True
    assert parser.parse_args(["embed", "--classes", "a", "-o", "x.npz", "--quiet"]).quiet is True
    assert parser.parse_args(["embed", "--classes", "a", "-o", "x.npz"]).verbose is False


def test_detect_help_is_true(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "CUDA only" not in text
    assert "(BF16 on a CPU with OpenVINO, FP16 on CUDA)" in text and "--half reduced precision: the same as" in text
    assert "bus.jpg and zidane.jpg" in text and "--no-save" in text and "--exist-ok" in text
