"""Vocabularies: YAML and inline forms, averaged embeddings, thresholds, decoys, .npz runs, live reload."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import ovdet.text
from ovdet import Embeddings, EmbeddingSpaceError, VocabularyError
from ovdet.cli import main
from ovdet.vocabulary import Vocabulary, VocabularyWatcher, load_vocabulary, parse_classes
from tests.conftest import PEOPLE, read_frames
from tests.media import small_frames, write_clip

FULL = """\
# a team's vocabulary
templates: ["a photo of a {}", "{}"]
classes:
  person wearing sunglasses:
    prompts: [person wearing sunglasses, man in sunglasses]
    conf: 0.3
    color: "#ff8800"
  red backpack: [red backpack, red rucksack]
  person:
decoys: [mannequin, poster of a person]
background: true
"""


def _write(tmp_path: Path, text: str, name: str = "vocab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_file(tmp_path: Path) -> None:
    vocabulary = load_vocabulary(_write(tmp_path, FULL))
    assert vocabulary.names == ("person wearing sunglasses", "red backpack", "person")
    assert vocabulary.classes[0].prompts == ("person wearing sunglasses", "man in sunglasses")
    assert vocabulary.classes[0].conf == 0.3 and vocabulary.classes[0].color == "#ff8800"
    assert vocabulary.classes[2].prompts == ("person",)
    assert vocabulary.decoys == ("mannequin", "poster of a person") and vocabulary.background == (" ",)
    assert vocabulary.row_prompts()[1] == ["a photo of a red backpack", "red backpack", "a photo of a red rucksack",
                                           "red rucksack"]  # fmt: skip
    assert load_vocabulary(vocabulary.save(tmp_path / "again.yaml")) == vocabulary


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("classes:\n  a: x\n  b:\n    promts: [y]\n", r"vocab\.yaml:4: unknown key\(s\) promts in class 'b'"),
        ("clases:\n  a: x\n", r"vocab\.yaml:1: unknown key\(s\) clases"),
        ("classes: {}\n", r"vocab\.yaml:1: 'classes' is empty"),
        ("classes:\n  a: []\n", r"vocab\.yaml:2: class 'a' has no phrasings"),
        ("classes:\n  a: ['']\n", r"vocab\.yaml:2: an entry of phrasings is empty"),
        ("classes:\n  a:\n    conf: 1.5\n", r"vocab\.yaml:3: class 'a': conf 1\.5 is outside \[0, 1\]"),
        ("classes:\n  a: x\n  A: y\n", r"vocab\.yaml:3: duplicate classes entry 'A' \(first on line 2\)"),
        ("classes:\n  pump: x\ndecoys: [Pump]\n", r"decoy 'Pump' is also a class"),
        ("classes:\n  a: x\ntemplates: [no placeholder]\n", r"must contain \{\} exactly once"),
        ("classes:\n  a:\n    color: red\n", r"vocab\.yaml:3: class 'a': color 'red' must be a hex colour"),
        ("classes: [a, b\n", r"vocab\.yaml:\d+: not valid YAML"),
        ("", r"the file is empty"),
    ],
)
def test_errors_name_file_line_and_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VocabularyError, match=message):
        load_vocabulary(_write(tmp_path, text))


def test_inline_syntax() -> None:
    vocabulary = parse_classes("pump=infusion pump|IV pump@0.3, person ,!toy pump")
    assert vocabulary.names == ("pump", "person")
    assert vocabulary.classes[0].prompts == ("infusion pump", "IV pump") and vocabulary.classes[0].conf == 0.3
    assert vocabulary.decoys == ("toy pump",)
    assert parse_classes("red backpack,person") == Vocabulary.from_names(["red backpack", "person"])
    with pytest.raises(VocabularyError, match="threshold 'high' after @ is not a number"):
        parse_classes("person@high")
    with pytest.raises(VocabularyError, match="outside"):
        parse_classes("person@2")


def test_class_embedding_is_the_normalised_mean_of_its_prompts(session_detector, tmp_path: Path) -> None:
    vocabulary = load_vocabulary(_write(tmp_path, FULL))
    session_detector.set_classes(vocabulary)
    rows = session_detector.embeddings.vectors
    for row, prompts in zip(rows, vocabulary.row_prompts()):
        singles = session_detector.text_encoder.encode(prompts)
        mean = singles.mean(axis=0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-5)
    assert len(rows) == 3 + 2 + 1  # classes, decoys, background


def test_plain_names_embed_exactly_as_before(session_detector) -> None:
    session_detector.set_classes(["bottle", "person"])
    expected = session_detector.text_encoder.encode(["bottle", "person"])
    np.testing.assert_allclose(session_detector.embeddings.vectors, expected, atol=1e-6)


def test_thresholds_and_decoys_hold_in_detect(session_detector) -> None:
    frame = read_frames(PEOPLE, 1, step=1)[0]
    # Decoys that win boxes: the classes' own look-alike phrasings, scored against the same image.
    vocabulary = parse_classes("person@0.3, backpack, !man, !woman, !people")
    session_detector.set_classes(vocabulary)
    every_row = session_detector.detect(frame, conf=0.01)
    assert set(every_row.data["class_name"]) <= {"person", "backpack"}
    assert (every_row.confidence[every_row.data["class_name"] == "person"] > 0.3).all()
    assert (every_row.class_id < 2).all()
    session_detector.set_classes(Vocabulary(vocabulary.classes))
    without_decoys = session_detector.detect(frame, conf=0.01)
    assert len(without_decoys) > len(every_row), "the decoys won some boxes, which were then dropped"


def test_npz_from_another_space_is_refused(session_detector, tmp_path: Path) -> None:
    path = Embeddings(["cat"], np.ones((1, 512)), "mobileclip:s0").save(tmp_path / "other.npz")
    with pytest.raises(EmbeddingSpaceError, match="mobileclip:s0"):
        session_detector.set_classes(load_vocabulary(path))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("vocab-clip") / "clip.mp4", small_frames(12, people=True))


def _outputs(folder: Path) -> list[str]:
    return [
        "--output", str(folder / "out.jsonl"), "--output", str(folder / "out.csv"), "--output", str(folder / "out.mp4"),
        "--coco", str(folder / "coco.json"), "--events", str(folder / "ev.jsonl"),
    ]  # fmt: skip


def _all_rows(folder: Path) -> list[tuple[str, float]]:
    """(class_name, confidence) of every row of every output that carries them."""
    rows = [(d["class_name"], d["confidence"]) for line in (folder / "out.jsonl").read_text().splitlines()
            for d in json.loads(line)["detections"]]  # fmt: skip
    csv_rows = [line.split(",") for line in (folder / "out.csv").read_text().splitlines()[1:]]
    rows += [(r[9], float(r[7])) for r in csv_rows]
    categories = {c["id"]: c["name"] for c in json.loads((folder / "coco.categories.json").read_text())["categories"]}
    rows += [(categories[r["category_id"]], r["score"]) for r in json.loads((folder / "coco.json").read_text())]
    rows += [(e["class_name"], e["best_confidence"]) for e in map(json.loads, (folder / "ev.jsonl").open())]
    return rows


def test_vocabulary_file_drives_detect_on_video_and_images(tmp_path: Path, clip: Path) -> None:
    vocab = _write(tmp_path, FULL)
    assert main(["detect", str(clip), "--vocab", str(vocab), "--conf", "0.05", "--imgsz", "320", "--track",
                 "--quiet", *_outputs(tmp_path)]) == 0  # fmt: skip
    rows = _all_rows(tmp_path)
    assert rows and {name for name, _ in rows} <= {"person wearing sunglasses", "red backpack", "person"}
    assert all(conf >= 0.3 for name, conf in rows if name == "person wearing sunglasses")
    assert all(conf >= 0.05 for _, conf in rows)

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), small_frames(1, people=True)[0])
    assert main(["detect", str(images), "--vocab", str(vocab), "--conf", "0.05", "--quiet",
                 "--output", str(tmp_path / "images.jsonl")]) == 0  # fmt: skip
    names = {d["class_name"] for d in json.loads((tmp_path / "images.jsonl").read_text())["detections"]}
    assert names and not names & {"mannequin", "poster of a person", "background"}


def test_embed_then_npz_gives_the_same_detections_without_a_text_model(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vocab = _write(tmp_path, FULL)
    npz = tmp_path / "vocab.npz"
    assert main(["embed", str(vocab), "-o", str(npz)]) == 0
    yaml_run, npz_run = tmp_path / "yaml", tmp_path / "npz"
    assert main(["detect", str(clip), "--vocab", str(vocab), "--conf", "0.05", "--imgsz", "320", "--quiet",
                 "--output", str(yaml_run / "out.jsonl")]) == 0  # fmt: skip

    def no_text_model(*args, **kwargs):
        raise AssertionError("a text encoder was constructed")

    monkeypatch.setattr(ovdet.text.ClipTextEncoder, "__init__", no_text_model)
    assert main(["detect", str(clip), "--vocab", str(npz), "--conf", "0.05", "--imgsz", "320", "--quiet",
                 "--output", str(npz_run / "out.jsonl")]) == 0  # fmt: skip
    assert (yaml_run / "out.jsonl").read_text() == (npz_run / "out.jsonl").read_text()


def test_watcher_picks_up_edits_and_ignores_broken_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, "classes:\n  a: x\n")
    watcher = VocabularyWatcher(path)
    assert watcher.poll() is None
    path.write_text("classes:\n  b: y\n  c: z\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert watcher.poll().names == ("b", "c")
    assert watcher.poll() is None
    path.write_text("classes:\n  b: [\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 20_000_000))
    with caplog.at_level(logging.WARNING):
        assert watcher.poll() is None
    assert "keeping the current one" in caplog.text


def test_running_stream_follows_an_edited_file(tmp_path: Path) -> None:
    vocab = _write(tmp_path, "classes:\n  person:\n  red backpack:\n")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "ovdet", "detect", str(PEOPLE), "--vocab", str(vocab), "--imgsz", "320",
               "--conf", "0.02", "--output", str(out), "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
            time.sleep(0.1)
        vocab.write_text("classes:\n  forklift:\n  pallet:\n")
        while time.monotonic() < deadline and len(out.read_text().splitlines()) < 40:
            time.sleep(0.2)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    names = [{d["class_name"] for d in json.loads(line)["detections"]} for line in out.read_text().splitlines()]
    assert names[0] <= {"person", "red backpack"}
    assert names[-1] and names[-1] <= {"forklift", "pallet"}
    assert "vocabulary" in err and "forklift, pallet" in err
