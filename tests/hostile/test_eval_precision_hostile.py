"""``ovdet eval``'s precision flags under hostile use: ``--precision`` lists that are empty, unknown, repeated or
crafted, ``--max-map-drop`` values that are no drop, and ``--calibration`` sources that are empty, corrupt or the
labelled images themselves (by path, link or copy). Each is one ``ovdet:`` line before any model loads, and every
input is left as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli, unchanged
from tests.media import png_header, small_frames, truncate, write_audio_only, write_clip, write_no_frames

SCENES = ["--precision", "int8", "--calibration", "{d}/scenes"]

# --precision lists: argparse refuses them (exit 2) in one line, naming the flag.
PRECISION_LISTS = {
    "empty": ("", ["--precision", "empty"]),
    "only-commas": (",,,", ["--precision", "empty"]),
    "blank-items": (" , ,", ["--precision", "empty"]),
    "unknown": ("fp64", ["--precision", "'fp64' is unknown"]),
    "unknown-among-known": ("fp32,int4,bf16", ["--precision", "'int4'"]),
    "semicolons": ("fp32;int8", ["--precision", "unknown"]),
    "spaces-not-commas": ("fp32 int8", ["--precision", "unknown"]),
    "fullwidth-digits": ("fp\uff13\uff12", ["--precision", "unknown"]),
    "recorded-alias": ("float32", ["--precision", "'float32' is unknown"]),
    "terminal-escape": ("\x1b[2Jfp32", ["--precision", "unknown"]),
    "very-long-name": ("x" * 100_000, ["--precision", "unknown"]),
}

# Repeated precisions are compared once: the list parses, and the next check speaks.
REPEATED = {
    "int8-twice": (["--precision", "int8,int8,INT8"], ["--calibration", "labelled"]),
    "fp32-twice": (["--precision", "fp32,fp32", "--calibration", "{d}/scenes"], ["--calibration", "int8"]),
    "half-and-bf16": (["--precision", "bf16", "--half", "--calibration", "{d}/scenes"], ["--calibration", "int8"]),
}

# --max-map-drop: a number of mAP points from 0 to 100, and only with a comparison.
MAP_DROPS = {
    "nan": ("nan", ["--max-map-drop", "nan"]),
    "NaN": ("NaN", ["--max-map-drop", "nan"]),
    "inf": ("inf", ["--max-map-drop", "inf"]),
    "minus-inf": ("-inf", ["--max-map-drop", "expected one argument"]),
    "minus-inf-joined": ("=-inf", ["--max-map-drop", "not a finite number"]),
    "negative": ("-1", ["--max-map-drop", "0 to 100"]),
    "barely-negative": ("-0.0001", ["--max-map-drop", "0 to 100"]),
    "over-100": ("100.0001", ["--max-map-drop", "0 to 100"]),
    "huge": ("1e300", ["--max-map-drop", "0 to 100"]),
    "overflows-to-inf": ("1e999", ["--max-map-drop", "not a finite number"]),
    "not-a-number": ("one", ["--max-map-drop", "is not a number"]),
    "empty": ("", ["--max-map-drop", "is not a number"]),
    "decimal-comma": ("1,5", ["--max-map-drop", "is not a number"]),
    "hex": ("0x10", ["--max-map-drop", "is not a number"]),
}

# Drops that are allowed get past their check: the calibration scenes (the labelled images here) are refused next.
ALLOWED_DROPS = ("0", "-0", "100", "0.5", " 2 ")


def _copy_of_the_images(d: Path) -> Path:
    shutil.copytree(d / "ds" / "images", d / "copies")
    return d / "copies"


def _link_to_the_images(d: Path) -> Path:
    (d / "linked").symlink_to(d / "ds" / "images", target_is_directory=True)
    return d / "linked"


def _hard_link_among_scenes(d: Path) -> Path:
    os.link(d / "ds" / "images" / "b.png", d / "scenes" / "b-again.png")
    return d / "scenes"


def _renamed_copy_among_scenes(d: Path) -> Path:
    shutil.copy(d / "ds" / "images" / "a.png", d / "scenes" / "scene-9.png")
    return d / "scenes"


def _one_labelled_image(d: Path) -> Path:
    return d / "ds" / "images" / "a.png"


def _labelled_folder_by_another_spelling(d: Path) -> Path:
    return d / "ds" / "labels" / ".." / "images" / "."


# --calibration that holds labelled images: a usage line (exit 2) naming both files.
LABELLED_SOURCES = {
    "the-images-folder": lambda d: d / "ds" / "images",
    "the-folder-spelt-otherwise": _labelled_folder_by_another_spelling,
    "one-labelled-image": _one_labelled_image,
    "a-copy-of-the-images": _copy_of_the_images,
    "a-link-to-the-images": _link_to_the_images,
    "a-hard-link-among-the-scenes": _hard_link_among_scenes,
    "a-renamed-copy-among-the-scenes": _renamed_copy_among_scenes,
}


def _empty_folder(d: Path) -> Path:
    (d / "empty").mkdir()
    return d / "empty"


def _text_files_only(d: Path) -> Path:
    (d / "notes").mkdir()
    (d / "notes" / "readme.txt").write_text("scenes to come\n")
    return d / "notes"


def _one_corrupt_image(d: Path) -> Path:
    (d / "broken").mkdir()
    (d / "broken" / "x.png").write_bytes(np.random.default_rng(1).bytes(2000))
    return d / "broken"


def _corrupt_images(d: Path) -> Path:
    (d / "broken").mkdir()
    for name in ("x.png", "y.jpg", "z.bmp"):
        (d / "broken" / name).write_bytes(np.random.default_rng(len(name)).bytes(500))
    return d / "broken"


def _zero_byte_image(d: Path) -> Path:
    (d / "zero").mkdir()
    (d / "zero" / "x.png").write_bytes(b"")
    return d / "zero"


def _header_only_png(d: Path) -> Path:
    (d / "header").mkdir()
    (d / "header" / "x.png").write_bytes(png_header(64, 48))
    return d / "header"


def _zero_byte_video(d: Path) -> Path:
    (d / "scenes.mp4").write_bytes(b"")
    return d / "scenes.mp4"


def _random_bytes_video(d: Path) -> Path:
    (d / "scenes.mp4").write_bytes(np.random.default_rng(2).bytes(20_000))
    return d / "scenes.mp4"


def _truncated_video(d: Path) -> Path:
    return truncate(write_clip(d / "scenes.mp4", small_frames(6)), 0.02)


def _audio_only(d: Path) -> Path:
    return write_audio_only(d / "scenes.m4a")


def _audio_only_mp4(d: Path) -> Path:
    return write_audio_only(d / "scenes.mp4")


def _video_without_frames(d: Path) -> Path:
    return write_no_frames(d / "scenes.avi")


def _the_annotations(d: Path) -> Path:
    (d / "annotations.json").write_text('{"images": [], "annotations": [], "categories": []}')
    return d / "annotations.json"


def _the_dataset_root(d: Path) -> Path:
    return d / "ds"


def _missing(d: Path) -> Path:
    return d / "nowhere"


# --calibration that gives no frame: one error line (exit 1), after any per-file warnings.
UNREADABLE_SOURCES = {
    "empty-folder": (_empty_folder, ["--calibration", "holds no images"]),
    "text-files-only": (_text_files_only, ["--calibration", "holds no images"]),
    "one-corrupt-image": (_one_corrupt_image, ["--calibration", "x.png"]),
    "corrupt-images": (_corrupt_images, ["--calibration", "none of the 3 images"]),
    "zero-byte-image": (_zero_byte_image, ["--calibration", "x.png"]),
    "header-only-png": (_header_only_png, ["--calibration", "x.png"]),
    "zero-byte-video": (_zero_byte_video, ["--calibration", "scenes.mp4"]),
    "random-bytes-video": (_random_bytes_video, ["--calibration", "scenes.mp4"]),
    "truncated-video": (_truncated_video, ["--calibration", "scenes.mp4"]),
    "audio-only": (_audio_only, ["--calibration", "scenes.m4a"]),
    "audio-only-as-mp4": (_audio_only_mp4, ["--calibration", "no video stream"]),
    "video-without-frames": (_video_without_frames, ["--calibration", "scenes.avi"]),
    "the-annotations-file": (_the_annotations, ["--calibration", "annotations.json"]),
    "the-dataset-root": (_the_dataset_root, ["--calibration", "holds no images"]),
    "missing": (_missing, ["--calibration", "does not exist"]),
}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A two-image YOLO dataset, and a folder of calibration scenes other than its images."""
    frames = small_frames(4)
    (tmp_path / "ds" / "images").mkdir(parents=True)
    (tmp_path / "ds" / "labels").mkdir()
    for name, frame in zip("ab", frames[:2]):
        cv2.imwrite(str(tmp_path / "ds" / "images" / f"{name}.png"), frame)
        (tmp_path / "ds" / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "ds" / "data.yaml").write_text("names: [bottle]\n")
    (tmp_path / "scenes").mkdir()
    for index, frame in enumerate(frames[2:]):
        cv2.imwrite(str(tmp_path / "scenes" / f"scene-{index}.png"), np.ascontiguousarray(frame[::-1]))
    return tmp_path


def _eval(inputs: Path, flags: list[str], capfd):
    flags = [flag.replace("{d}", str(inputs)) for flag in flags]
    with unchanged(inputs / "ds"):
        return run_cli(["eval", "--data", inputs / "ds", "--classes", "bottle", "--model", "nowhere.pt", *flags], capfd)


@pytest.mark.parametrize("case", sorted(PRECISION_LISTS), ids=str)
def test_precision_lists_that_name_no_precision_are_one_usage_line(case: str, inputs: Path, capfd) -> None:
    value, mentions = PRECISION_LISTS[case]
    line = assert_error(_eval(inputs, ["--precision", value], capfd), 2, *mentions)
    assert "\x1b" not in line and len(line) < 400, "the value is echoed escaped and shortened"


@pytest.mark.parametrize("case", sorted(REPEATED), ids=str)
def test_repeated_precisions_parse_and_are_compared_once(case: str, inputs: Path, capfd) -> None:
    flags, mentions = REPEATED[case]
    assert_error(_eval(inputs, flags, capfd), 2, *mentions)


@pytest.mark.parametrize("case", sorted(MAP_DROPS), ids=str)
def test_map_drops_that_are_no_drop_are_one_usage_line(case: str, inputs: Path, capfd) -> None:
    value, mentions = MAP_DROPS[case]
    flag = ["--max-map-drop" + value] if value.startswith("=") else ["--max-map-drop", value]
    assert_error(_eval(inputs, [*SCENES, *flag], capfd), 2, *mentions)


def test_a_map_drop_without_a_comparison_is_one_usage_line(inputs: Path, capfd) -> None:
    assert_error(_eval(inputs, ["--max-map-drop", "1"], capfd), 2, "--max-map-drop", "--precision")


@pytest.mark.parametrize("value", ALLOWED_DROPS)
def test_allowed_map_drops_get_past_their_check(value: str, inputs: Path, capfd) -> None:
    flags = ["--precision", "int8", "--calibration", "{d}/ds/images", "--max-map-drop", value]
    assert_error(_eval(inputs, flags, capfd), 2, "--calibration", "labelled images")


@pytest.mark.parametrize("case", sorted(LABELLED_SOURCES), ids=str)
def test_calibration_on_the_labelled_images_is_refused(case: str, inputs: Path, capfd) -> None:
    source = LABELLED_SOURCES[case](inputs)
    flags = ["--precision", "fp32,bf16,int8", "--calibration", str(source)]
    line = assert_error(_eval(inputs, flags, capfd), 2, f"--calibration {source} holds", "labelled images", "other")
    assert str(inputs / "ds" / "images") in line, "the labelled image it repeats is named"


@pytest.mark.parametrize("case", sorted(UNREADABLE_SOURCES), ids=str)
def test_calibration_that_gives_no_frame_is_refused_before_work(case: str, inputs: Path, capfd) -> None:
    make, mentions = UNREADABLE_SOURCES[case]
    result = _eval(inputs, ["--precision", "int8", "--calibration", str(make(inputs))], capfd)
    lines = assert_clean_stderr(result, 1)
    assert lines[-1].startswith("ovdet: error: ") and all("error" not in line for line in lines[:-1]), lines
    assert all(mention.lower() in lines[-1].lower() for mention in mentions), lines[-1]


def test_scenes_of_the_labelled_images_size_but_other_pixels_are_not_refused(inputs: Path) -> None:
    """Only the same bytes count: another frame of the same size (so of the same file size, here) is a scene."""
    from ovdet.evaluation.calibration import labelled_among

    labelled = sorted((inputs / "ds" / "images").iterdir())
    other = inputs / "scenes" / "same-size.png"
    other.write_bytes(bytes(255 - byte for byte in labelled[0].read_bytes()))
    assert other.stat().st_size == labelled[0].stat().st_size
    assert labelled_among(sorted((inputs / "scenes").iterdir()), labelled) == []
    assert labelled_among([*labelled, other], labelled) == [(path, path) for path in labelled]
