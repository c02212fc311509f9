"""Outputs pointed at inputs or at each other, outputs of the wrong type, and export folders holding the user's files.

Every refusal happens before any work: exit 2, one line, the inputs byte-identical, nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from tests.hostile.harness import assert_error, assert_no_temporaries, run_cli, unchanged
from tests.media import small_frames, write_clip

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """``clip.mp4``, ``photos/a.jpg`` and ``photos/b.png``, ``vocab.yaml``, and links to them."""
    write_clip(tmp_path / "clip.mp4", small_frames(4))
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, frame in zip(("a.jpg", "b.png"), small_frames(2)):
        cv2.imwrite(str(photos / name), frame)
    (tmp_path / "vocab.yaml").write_text("classes:\n  person:\n")
    (tmp_path / "clip-link.mp4").symlink_to(tmp_path / "clip.mp4")
    os.link(tmp_path / "clip.mp4", tmp_path / "clip-hardlink.mp4")
    (tmp_path / "photos-link").symlink_to(photos)
    (tmp_path / "out").mkdir()
    return tmp_path


# (source, arguments, words the error names); "{d}" is the scene folder
REFUSED = {
    "output-is-the-input-video": ("clip.mp4", ["--output", "{d}/clip.mp4"], ["--output", "clip.mp4"]),
    "output-is-the-input-spelt-with-dots": ("clip.mp4", ["--output", "{d}/out/../clip.mp4"], ["overwritten"]),
    "output-is-a-symlink-to-the-input": ("clip.mp4", ["--output", "{d}/clip-link.mp4"], ["clip-link.mp4"]),
    "output-is-a-hard-link-to-the-input": ("clip.mp4", ["--output", "{d}/clip-hardlink.mp4"], ["overwritten"]),
    "input-through-a-symlink-output-on-its-target": ("clip-link.mp4", ["--output", "{d}/clip.mp4"], ["overwritten"]),
    "events-on-the-input-video": ("clip.mp4", ["--events", "{d}/clip.mp4"], ["--events", ".jsonl"]),
    "coco-on-the-input-video": ("clip.mp4", ["--coco", "{d}/clip.mp4"], ["--coco", ".json"]),
    "coco-on-the-vocabulary": ("clip.mp4", ["--coco", "{d}/vocab.yaml"], ["--coco", ".json"]),
    "events-with-a-wrong-extension": ("clip.mp4", ["--events", "{d}/out/ev.txt"], ["--events", ".jsonl"]),
    "coco-without-an-extension": ("clip.mp4", ["--coco", "{d}/out/coco"], ["--coco", "no extension"]),
    "coco-as-jsonl": ("clip.mp4", ["--coco", "{d}/out/coco.jsonl"], ["--coco", ".json"]),
    "output-and-events-on-one-file": (
        "clip.mp4",
        ["--output", "{d}/out/x.jsonl", "--events", "{d}/out/x.jsonl"],
        ["same file"],
    ),
    "output-twice": ("clip.mp4", ["--output", "{d}/out/x.csv", "--output", "{d}/out/./x.csv"], ["same file"]),
    "events-through-a-symlink-to-the-output": (
        "clip.mp4",
        ["--output", "{d}/out/x.jsonl", "--events", "{d}/ev-link.jsonl"],
        ["same file"],
    ),
    "annotated-into-the-source-folder": ("photos", ["--save-annotated", "{d}/photos"], ["folder of the input"]),
    "annotated-into-a-link-to-the-source-folder": (
        "photos",
        ["--save-annotated", "{d}/photos-link"],
        ["folder of the input"],
    ),
    "annotated-into-the-calibration-scenes": (
        "clip.mp4",
        ["--save-annotated", "{d}/photos", "--precision", "int8", "--calibration", "{d}/photos"],
        ["--calibration"],
    ),
    "crops-into-the-source-folder": ("photos", ["--save-crops", "{d}/photos"], ["--save-crops", "folder of the input"]),
    "annotated-into-the-folder-of-one-image": ("photos/a.jpg", ["--save-annotated", "{d}/photos/."], ["replace"]),
    "output-on-an-input-image": ("photos/b.png", ["--output", "{d}/photos/b.png"], ["overwritten"]),
    "output-with-an-unknown-type": ("clip.mp4", ["--output", "{d}/out/result.txt"], ["unknown file type"]),
    "output-without-an-extension": ("clip.mp4", ["--output", "{d}/out/result"], ["(none)"]),
    "output-on-the-model-file": ("clip.mp4", ["--output", "{d}/model.mp4", "--model", "{d}/model.mp4"], ["--model"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED), ids=str)
def test_refused_before_any_work(case: str, scene: Path, capfd) -> None:
    source, arguments, mentions = REFUSED[case]
    if case == "events-through-a-symlink-to-the-output":
        (scene / "ev-link.jsonl").symlink_to(scene / "out" / "x.jsonl")  # dangling until x.jsonl is written
    if case == "output-on-the-model-file":
        (scene / "model.mp4").write_bytes(b"not really a model")
    arguments = [a.replace("{d}", str(scene)) for a in arguments]
    before = sorted(p.relative_to(scene) for p in scene.rglob("*"))
    with unchanged(scene / "clip.mp4", scene / "photos", scene / "vocab.yaml"):
        result = run_cli(["detect", scene / source, "--classes", "person", "--quiet", *arguments], capfd)
    assert_error(result, 2, *mentions)
    assert sorted(p.relative_to(scene) for p in scene.rglob("*")) == before, "something was written"


def test_an_output_folder_that_is_a_file_is_refused(scene: Path, capfd) -> None:
    with unchanged(scene / "clip.mp4"):
        arguments = ["detect", scene / "clip.mp4", "--classes", "person", "--save-annotated", scene / "vocab.yaml"]
        result = run_cli(arguments, capfd)
    assert_error(result, 1, "vocab.yaml")


def test_an_output_that_is_a_folder_is_refused(scene: Path, capfd) -> None:
    (scene / "out" / "x.jsonl").mkdir()
    result = run_cli(
        ["detect", scene / "clip.mp4", "--classes", "person", "--output", scene / "out" / "x.jsonl"], capfd
    )
    assert_error(result, 1, "is a folder")


def test_an_output_under_an_unwritable_place_is_refused(scene: Path, capfd) -> None:
    result = run_cli(["detect", scene / "clip.mp4", "--classes", "person", "--output", "/proc/ovdet/x.jsonl"], capfd)
    assert_error(result, 1, "/proc/ovdet/x.jsonl")


@pytest.fixture(scope="module")
def earlier_export(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A folder holding an ONNX export, the user's notes and a calibration folder of their own."""
    from ovdet.cli import main

    folder = tmp_path_factory.mktemp("export") / "deploy"
    args = ["export", "--model", model_path, "--format", "onnx", "--classes", "person,bottle", "--imgsz", "160"]
    assert main([*map(str, args), "-o", str(folder)]) == 0
    (folder / "NOTES.md").write_text("# our deployment notes\n")
    (folder / "calib").mkdir()
    (folder / "calib" / "frame.jpg").write_bytes(b"\xff\xd8 not ours to delete")
    return folder


def test_export_into_an_earlier_export_keeps_the_users_files(earlier_export: Path, model_path: Path, capfd) -> None:
    from ovdet.runtimes.artifact import Artifact

    with unchanged(earlier_export / "NOTES.md", earlier_export / "calib"):
        result = run_cli(["export", "--model", model_path, "--format", "onnx", "--classes", "forklift",
                          "--imgsz", "160", "-o", earlier_export], capfd)  # fmt: skip
    assert result.code == 0, result.err
    artifact = Artifact.open(earlier_export, "onnx")
    assert artifact.metadata.classes == ("forklift",) or list(artifact.metadata.classes) == ["forklift"]
    assert sorted(p.name for p in earlier_export.iterdir()) == sorted(["NOTES.md", "calib", *artifact.file_names()])
    assert_no_temporaries(earlier_export.parent)


def test_export_to_the_current_folder_is_one_line(
    tmp_path: Path, model_path: Path, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("the user's")
    monkeypatch.chdir(work)
    with unchanged(work):
        result = run_cli(["export", "--model", model_path, "--format", "onnx", "--classes", "a", "-o", "."], capfd)
    assert_error(result, 2, "not an ovdet export")


def test_export_onto_a_file_is_one_line(tmp_path: Path, model_path: Path, capfd) -> None:
    (tmp_path / "taken").write_text("a file")
    with unchanged(tmp_path / "taken"):
        result = run_cli(["export", "--model", model_path, "--format", "onnx", "--classes", "a", "-o",
                          tmp_path / "taken"], capfd)  # fmt: skip
    assert_error(result, 2, "is a file")


def test_export_again_into_the_current_folder_when_it_holds_an_export(
    earlier_export: Path, model_path: Path, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(earlier_export)
    with unchanged(earlier_export / "NOTES.md", earlier_export / "calib"):
        result = run_cli(["export", "--model", model_path, "--format", "onnx", "--classes", "pallet", "--imgsz", "160",
                          "-o", "."], capfd)  # fmt: skip
    assert result.code == 0, result.err
    assert "pallet" in (earlier_export / "ovdet.json").read_text()
    assert_no_temporaries(earlier_export.parent)


def test_a_refused_output_leaves_the_earlier_ones_untouched(scene: Path, capfd) -> None:
    earlier = scene / "out" / "yesterday.jsonl"
    earlier.write_text('{"frame": 0}\n')
    with unchanged(scene / "clip.mp4", earlier):
        result = run_cli(["detect", scene / "clip.mp4", "--classes", "person", "--output", earlier,
                          "--output", scene / "out" / "x.txt"], capfd)  # fmt: skip
    assert_error(result, 2, "unknown file type")


@pytest.mark.parametrize("flags", [["--imgsz", "100000"], ["--imgsz", "4096", "--batch", "2"], ["--imgsz", "33"]])
def test_export_sizes_that_cannot_fit_are_one_line(flags: list[str], tmp_path: Path, model_path: Path, capfd) -> None:
    result = run_cli(["export", "--model", model_path, "--format", "onnx", "--classes", "a", *flags, "-o",
                      tmp_path / "x"], capfd)  # fmt: skip
    assert_error(result, 2, "imgsz")
    assert not (tmp_path / "x").exists()
    assert_no_temporaries(tmp_path)
