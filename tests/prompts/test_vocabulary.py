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

import ovdet.prompts.text
from ovdet import Embeddings, EmbeddingSpaceError, VocabularyError
from ovdet.cli import main
from ovdet.prompts.vocabulary import Vocabulary, parse_classes
from ovdet.prompts.vocabulary_files import VocabularyWatcher, load_vocabulary
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
        ("classes:\n  a: x\n  b:\n    promts: [y]\n", r"vocab\.yaml:4: unknown key 'promts' in class 'b'"),
        ("clases:\n  a: x\n", r"vocab\.yaml:1: unknown key 'clases' in the file; did you mean 'classes'"),
        ("classes:\n  b:\n    prompts: [y]\n\n    colour: red\n", r"vocab\.yaml:5: unknown key 'colour' .*'color'"),
        ("classes:\n  a: x\n\n\ndecoy: [q]\n", r"vocab\.yaml:5: unknown key 'decoy' in the file"),
        ("classes:\n  ? [x, y]\n  : z\n", r"vocab\.yaml:2: a key in classes is a list or mapping"),
        ("classes:\n  {a: 1}: z\n", r"vocab\.yaml:2: a key in classes is a list or mapping"),
        ("classes:\n  a:\n    conf: !!python/object/apply:os.system [x]\n", r"vocab\.yaml:3: tag '!!python/object"),
        ("classes:\n  a: !!python/name:os.system x\n", r"vocab\.yaml:2: tag '!!python/name:os\.system'"),
        ("classes:\n  a: &x [p]\n  b: *x\n", r"vocab\.yaml:3: alias \*x is not allowed"),
        ("classes:\n  a:\n    conf: high\n", r"vocab\.yaml:3: class 'a': conf 'high' is not a number"),
        ("classes:\n  a:\n    prompts: 5\n", r"vocab\.yaml:3: '5' in phrasings is not text; quote it"),
        ("classes:\n  a: x\ntemplates: ['{} {x}']\n", r"vocab\.yaml:3: template '\{\} \{x\}' must contain"),
        ("classes:\n  pump: x\ndecoys: [a, Pump]\n", r"vocab\.yaml:3: decoy 'Pump' is also a class"),
        ("classes:\n  a: x\x07\n", r"vocab\.yaml:2: not valid YAML \(special characters"),
        ("classes: {}\n", r"vocab\.yaml:1: 'classes' is empty"),
        ("classes:\n  a: []\n", r"vocab\.yaml:2: class 'a' has no phrasings"),
        ("classes:\n  a: ['']\n", r"vocab\.yaml:2: an entry of phrasings is empty"),
        ("classes:\n  a:\n    conf: 1.5\n", r"vocab\.yaml:3: class 'a': conf 1\.5 is outside \[0, 1\]"),
        ("classes:\n  a: x\n  A: y\n", r"vocab\.yaml:3: duplicate classes entry 'A' \(first on line 2\)"),
        ("classes:\n  a: x\ntemplates: [no placeholder]\n", r"vocab\.yaml:3: .*must contain \{\} exactly once"),
        ("classes:\n  a:\n    color: red\n", r"vocab\.yaml:3: class 'a': color must be a hex colour .*not 'red'"),
        ("classes: [a, b\n", r"vocab\.yaml:\d+: not valid YAML"),
        ("", r"the file is empty"),
    ],
)
def test_errors_name_file_line_and_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VocabularyError, match=message):
        load_vocabulary(_write(tmp_path, text))


def test_non_utf8_and_oversized_files_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "vocab.yaml"
    path.write_bytes(b"classes:\n  a: x\n  caf\xe9: y\n")
    with pytest.raises(VocabularyError, match=r"vocab\.yaml:3: byte 0xe9 is not UTF-8"):
        load_vocabulary(path)
    path.write_bytes(b"\xef\xbb\xbfclasses:\n  a: x\n")
    assert load_vocabulary(path).names == ("a",)
    path.write_text("classes:\n" + "  a: x\n" * 200_000)
    with pytest.raises(VocabularyError, match=r"over 1 MiB"):
        load_vocabulary(path)


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    # Before the fix, the message about this threshold held its repr: 9**12 strings.
    lines = [
        "classes:",
        "  a:",
        "    conf:",
        '      - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    lines += [f"      - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 12)]
    started = time.perf_counter()
    with pytest.raises(VocabularyError, match=r"vocab\.yaml:5: alias \*l0 is not allowed"):
        load_vocabulary(_write(tmp_path, "\n".join(lines) + "\n"))
    assert time.perf_counter() - started < 2


def test_prompt_count_is_bounded(tmp_path: Path) -> None:
    templates = ", ".join(f"'{{}} {i}'" for i in range(400))
    phrasings = ", ".join(f"p{i}" for i in range(300))
    with pytest.raises(VocabularyError, match=r"120000 prompts to encode"):
        load_vocabulary(_write(tmp_path, f"templates: [{templates}]\nclasses:\n  a: [{phrasings}]\n"))


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
    with pytest.raises(VocabularyError, match="outside"):
        parse_classes("person@nan")


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

    monkeypatch.setattr(ovdet.prompts.text.ClipTextEncoder, "__init__", no_text_model)
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


def _edit(path: Path, content: bytes | None, step: int) -> None:
    if content is None:
        path.unlink()
        return
    path.write_bytes(content)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + step * 10_000_000))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"classes:\n  a:\n    conf: !!python/object/apply:os.system [touch PWNED]\n",
                     "vocab.yaml:3: tag", id="python-tag"),
        pytest.param(b"classes:\n  caf\xe9: y\n", "vocab.yaml:2: byte 0xe9 is not UTF-8", id="invalid-utf8"),
        pytest.param(b"classes: [a\n", "not valid YAML", id="bad-syntax"),
        pytest.param(None, "was removed", id="deleted"),
    ],
)  # fmt: skip
def test_watcher_reports_and_ignores_any_broken_edit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None, message: str
) -> None:
    path = _write(tmp_path, "classes:\n  a: x\n")
    watcher = VocabularyWatcher(path)
    _edit(path, content, 1)
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        assert watcher.poll() is None
        assert watcher.poll() is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING] and message in caplog.text
    assert not (tmp_path / "PWNED").exists()
    _edit(path, b"classes:\n  b: y\n", 2)
    assert watcher.poll().names == ("b",)


def test_watcher_survives_a_file_gone_mid_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "classes:\n  a: x\n")
    watcher = VocabularyWatcher(path)
    _edit(path, b"classes:\n  b: y\n", 1)

    def vanished(self, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(Path, "open", vanished)
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        assert watcher.poll() is None
    assert len(caplog.records) == 1 and "cannot be read (No such file or directory)" in caplog.text

    def broken(path):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.undo()
    monkeypatch.setattr("ovdet.prompts.vocabulary_files.read_vocabulary_yaml", broken)
    _edit(path, b"classes:\n  c: y\n", 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        assert watcher.poll() is None
    assert len(caplog.records) == 1 and "RuntimeError: a bug over two lines" in caplog.text


def test_running_stream_follows_an_edited_file(tmp_path: Path) -> None:
    vocab = _write(tmp_path, "classes:\n  person:\n  red backpack:\n")
    out = tmp_path / "out.jsonl"
    # not --quiet: the reload is a note, which --quiet keeps to itself
    command = [sys.executable, "-m", "ovdet", "detect", str(PEOPLE), "--vocab", str(vocab), "--imgsz", "320",
               "--conf", "0.02", "--output", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
