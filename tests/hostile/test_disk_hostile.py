"""A disk that fills up mid-run: one line naming the file, exit 1, no half line, no temporary file, and every
output on a healthy disk still valid. The full disk is a real one: a tmpfs of a few pages (needs root)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.harness import assert_error, assert_no_temporaries, assert_valid_output, run_cli, unchanged
from tests.media import small_frames, write_clip

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return mounted.returncode == 0


@pytest.fixture
def small_disk(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A file system of ``request.param`` bytes (a tmpfs), unmounted afterwards."""
    folder = Path("/tmp") / f"ovdet-full-{uuid.uuid4().hex[:8]}"
    if not _mount_tmpfs(folder, request.param):
        pytest.skip("a small file system needs root (mount -t tmpfs)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


@pytest.fixture(scope="module")
def busy_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 real frames: at conf 0.01 the test model finds dozens of boxes in each."""
    return write_clip(tmp_path_factory.mktemp("disk") / "clip.mp4", small_frames(24, people=True))


def _detect(clip: Path, model_path: Path, capfd, *outputs: str | Path, track: bool = False):
    args = ["detect", clip, "--classes", "person,bottle", "--model", model_path, "--device", "cpu", "--imgsz", "160",
            "--conf", "0.01", "--quiet", *outputs, *(["--track"] if track else [])]  # fmt: skip
    with unchanged(clip):
        return run_cli(args, capfd)


@pytest.mark.parametrize("small_disk", ["16k"], indirect=True)
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_line_outputs_keep_whole_lines(
    small_disk: Path, suffix: str, busy_clip: Path, model_path: Path, tmp_path: Path, capfd
) -> None:
    healthy = tmp_path / "healthy.jsonl"
    result = _detect(busy_clip, model_path, capfd, "--output", small_disk / f"out{suffix}", "--output", healthy)
    assert_error(result, 1, "no space left", f"out{suffix}")
    assert_valid_output(small_disk / f"out{suffix}")
    assert_valid_output(healthy)
    assert_no_temporaries(small_disk, tmp_path)


@pytest.mark.parametrize("small_disk", ["8k"], indirect=True)
def test_coco_is_written_whole_or_not_at_all(small_disk: Path, busy_clip: Path, model_path: Path, capfd) -> None:
    result = _detect(busy_clip, model_path, capfd, "--coco", small_disk / "coco.json")
    assert_error(result, 1, "no space left", "coco")
    assert not (small_disk / "coco.json").exists() and not (small_disk / "coco.categories.json").exists()
    assert_no_temporaries(small_disk)


@pytest.mark.parametrize("small_disk", ["4k"], indirect=True)
def test_events_keep_whole_lines(small_disk: Path, busy_clip: Path, model_path: Path, capfd) -> None:
    result = _detect(busy_clip, model_path, capfd, "--events", small_disk / "ev.jsonl", track=True)
    assert_error(result, 1, "no space left", "ev.jsonl")
    assert_valid_output(small_disk / "ev.jsonl")
    assert_no_temporaries(small_disk)


@pytest.mark.parametrize("small_disk", ["48k"], indirect=True)
def test_annotated_images_are_whole(small_disk: Path, busy_clip: Path, model_path: Path, capfd) -> None:
    import cv2

    result = _detect(busy_clip, model_path, capfd, "--save-annotated", small_disk / "drawn")
    assert_error(result, 1, "no space left")
    images = sorted((small_disk / "drawn").iterdir())
    assert images, "some images fit before the disk filled"
    assert all(cv2.imread(str(image)) is not None for image in images)
    assert_no_temporaries(small_disk)


@pytest.mark.parametrize("small_disk", ["16k"], indirect=True)
def test_video_output_on_a_full_disk_is_one_line(small_disk: Path, busy_clip: Path, model_path: Path, capfd) -> None:
    result = _detect(busy_clip, model_path, capfd, "--output", small_disk / "out.mp4")
    assert_error(result, 1, "out.mp4")
    assert_no_temporaries(small_disk)


@pytest.mark.parametrize("small_disk", ["4k"], indirect=True)
def test_embeddings_file_is_written_whole_or_not_at_all(small_disk: Path, capfd) -> None:
    classes = ",".join(f"class {i}" for i in range(8))  # 8 × 512 floats: more than the disk holds
    result = run_cli(["embed", "--classes", classes, "-o", small_disk / "vocab.npz"], capfd)
    assert_error(result, 1, "no space left", "vocab.npz")
    assert not (small_disk / "vocab.npz").exists()
    assert_no_temporaries(small_disk)
