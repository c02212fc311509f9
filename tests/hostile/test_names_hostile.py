"""Output names too long for the file system: ``ovdet detect --output`` with a 300-byte name, and ``ovdet batch``
outputs named after a long source name (plus ``.annotated.mp4``, ``.coco.categories.json`` …) are one
``ovdet: error:`` line before any work, not ``unexpected OSError``; an output that fits is written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from ovdet.cluster.plan import check_collisions, plan_tasks
from ovdet.core.errors import OutputError
from tests.hostile.harness import Result, assert_clean_stderr, assert_error, assert_valid_output, run_cli, unchanged
from tests.media import small_frames, write_clip

SETTINGS = ["--classes", "bottle,person", "--imgsz", 160, "--conf", 0.01, "--device", "cpu"]


@pytest.fixture(autouse=True)
def shared_embeddings(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run here embeds the same two classes: CLIP loads once, not per run."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))


def _batch(sources: list, out: Path, model_path: Path, capfd, *extra) -> Result:
    return run_cli(["batch", *sources, *SETTINGS, "--model", model_path, "--output-dir", out, *extra], capfd)


# A video named with 246 bytes: its JSONL (252), CSV (250) and Parquet file (254) fit in 255 bytes; its COCO file
# (256), events (259) and annotated video (260) do not.
LONG_NAME = "v" * 242 + ".mp4"
OVERFLOWS = {"jsonl": False, "csv": False, "coco": True, "events": True, "video": True}


@pytest.mark.parametrize("kind", sorted(OVERFLOWS))
def test_an_output_name_derived_from_a_long_source_name_is_one_line(kind: str, model_path, tmp_path, capfd) -> None:
    (tmp_path / "in").mkdir()
    video = write_clip(tmp_path / "in" / LONG_NAME, small_frames(2))
    out = tmp_path / "out"
    with unchanged(video.parent):
        result = _batch([video], out, model_path, capfd, f"--{kind}", "--quiet")
    if OVERFLOWS[kind]:
        assert_error(result, 1, "bytes", "255", "shorter name")
        assert not (out / "manifest.json").exists() and not list(out.rglob("*.parquet"))
    else:
        assert_clean_stderr(result)
        assert_valid_output(next(out.glob(f"v*.{kind}")))


def test_a_coco_output_whose_categories_file_would_be_too_long_is_refused(tmp_path: Path) -> None:
    video = tmp_path / ("v" * 232 + ".mp4")  # .coco.json: 246 bytes; .coco.categories.json beside it: 257
    video.write_bytes(b"")
    tasks = plan_tasks([str(video)], tmp_path / "out", ["coco"])
    with pytest.raises(OutputError, match=r"categories\.json: its name is 257 bytes"):
        check_collisions(tasks, [])


def test_an_image_folder_with_a_long_name_is_one_line(model_path, tmp_path, capfd) -> None:
    folder = tmp_path / ("f" * 250)
    folder.mkdir()
    cv2.imwrite(str(folder / "frame.png"), small_frames(1)[0])
    with unchanged(folder):
        result = _batch([folder], tmp_path / "out", model_path, capfd)
    assert_error(result, 1, "256 bytes", "255")


@pytest.mark.parametrize(
    "flags",
    [["--output", "{long}.jsonl"], ["--output", "{long}.csv"], ["--coco", "{long}.json"],
     ["--save-annotated", "{long}"], ["--output", "{deep}/out.jsonl"]],
    ids=["jsonl", "csv", "coco", "annotated-folder", "path-over-4095-bytes"],
)  # fmt: skip
def test_detect_refuses_an_output_name_too_long_in_one_line(flags, image: Path, model_path, tmp_path, capfd) -> None:
    long, deep = tmp_path / ("a" * 300), tmp_path.joinpath(*["d" * 200] * 22)
    flags = [flag.format(long=long, deep=deep) for flag in flags]
    with unchanged(image.parent):
        result = run_cli(["detect", image, *SETTINGS, "--model", model_path, *flags], capfd)
    assert_error(result, 1, "bytes")
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(("aaaa", "dddd"))]
