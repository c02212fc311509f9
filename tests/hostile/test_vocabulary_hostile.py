"""Hostile vocabularies through the CLI: YAML files, inline --classes and .npz embeddings that try to run code, blow
up memory, or slip through as nonsense. Each is refused in one line naming the file (and line), before any work.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ovdet.prompts.embeddings
import ovdet.prompts.text
from ovdet.prompts.embeddings import Embeddings
from ovdet.prompts.vocabulary_files import VocabularyWatcher
from tests.hostile.harness import (
    REPO,
    assert_clean_stderr,
    assert_error,
    assert_no_temporaries,
    assert_valid_output,
    run_cli,
    run_subprocess,
    unchanged,
)
from tests.media import small_frames, write_clip

MARKER = "PWNED"  # a file the hostile payloads would create if anything in them ran


def _billion_laughs() -> str:
    levels = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    # As a threshold: before the fix, the message's repr of the value expanded all 9**10 strings.
    return "\n".join(["classes:", "  person:", "    conf:", *(f"      - {level}" for level in levels)]) + "\n"


# (file content, line the error must name or None, words it must mention)
YAML_CASES = [
    pytest.param('classes:\n  a:\n    conf: !!python/object/apply:os.system ["touch PWNED"]\n', 3, ["tag"],
                 id="python-apply-in-conf"),
    pytest.param('classes:\n  a: !!python/object/apply:os.system ["touch PWNED"]\n', 2, ["tag"],
                 id="python-apply-as-phrasing"),
    pytest.param("classes:\n  !!python/name:os.system person: x\n", 2, ["tag"], id="python-name-as-key"),
    pytest.param('classes: !!python/object/new:os.system ["touch PWNED"]\n', 1, ["tag"], id="python-new-top"),
    pytest.param('classes:\n  a: x\ntemplates: !!python/tuple ["{}"]\n', 3, ["tag"], id="python-tuple"),
    pytest.param("classes:\n  a: x\ndecoys: [!custom toy]\n", 3, ["tag"], id="local-tag"),
    pytest.param(_billion_laughs(), 5, ["alias"], id="billion-laughs"),
    pytest.param("classes:\n  ? [red, backpack]\n  : x\n", 2, ["list or mapping"], id="list-as-class-key"),
    pytest.param("classes:\n  {a: 1}: x\n", 2, ["list or mapping"], id="mapping-as-class-key"),
    pytest.param("classes:\n  a: x\n  b:\n    prompts: [y]\n\n    colour: '#ff0000'\n", 6, ["colour", "color"],
                 id="unknown-key-own-line"),
    pytest.param("classes:\n  a: x\n\n\ndecoy: [toy]\n", 5, ["decoy", "decoys"], id="unknown-top-level-key"),
    pytest.param("classes:\n  a:\n    conf: high\n", 3, ["conf", "not a number"], id="conf-text"),
    pytest.param("classes:\n  a:\n    conf: 2\n", 3, ["conf", "outside"], id="conf-2"),
    pytest.param("classes:\n  a:\n    conf: .nan\n", 3, ["conf", "outside"], id="conf-nan"),
    pytest.param("classes:\n  a:\n    color: red\n", 3, ["color", "hex"], id="color-name"),
    pytest.param("classes:\n  a:\n    prompts: 5\n", 3, ["not text"], id="prompts-number"),
    pytest.param("classes:\n  a: x\ntemplates: ['a {} of {kind}']\n", 3, ["template"], id="template-named-field"),
    pytest.param("classes:\n  pump: x\ndecoys: [toy, Pump]\n", 3, ["decoy", "also a class"], id="decoy-is-class"),
    pytest.param("", None, ["empty"], id="empty-file"),
    pytest.param("# only a comment\n", None, ["empty"], id="comment-only"),
    pytest.param("- person\n- backpack\n", 1, ["mapping"], id="file-is-a-list"),
    pytest.param("person\n", 1, ["mapping"], id="file-is-a-scalar"),
    pytest.param("classes:\n  a: x\n  A: y\n", 3, ["duplicate", "first on line 2"], id="duplicate-class"),
    pytest.param("classes:\n\tperson: x\n", 2, ["not valid YAML"], id="tab-indent"),
    pytest.param("classes: [a, b\n", 2, ["not valid YAML"], id="unclosed-bracket"),
    pytest.param("classes:\n  a: x\n---\nclasses:\n  b: y\n", 3, ["single document"], id="two-documents"),
    pytest.param("classes:\n  a: x\x07\n", 2, ["not valid YAML"], id="control-character"),
    pytest.param("classes:\n  a: " + "[" * 40 + "]" * 40 + "\n", 2, ["nested"], id="nested-too-deep"),
    pytest.param(b"classes:\n  caf\xe9: x\n", 2, ["UTF-8"], id="latin-1-bytes"),
    pytest.param("classes:\n  a: x\n".encode("utf-16"), 1, ["UTF-8"], id="utf-16"),
    pytest.param("\ufeffclasses:\n  a: x\n  b:\n    colour: red\n", 4, ["colour"], id="bom-keeps-line-numbers"),
    pytest.param("classes:\n" + "  filler class: x\n" * 700_000, None, ["MiB"], id="ten-megabytes"),
    pytest.param("templates: [" + ", ".join(f"'{{}} {i}'" for i in range(400)) + "]\nclasses:\n  a: ["
                 + ", ".join(f"p{i}" for i in range(300)) + "]\n", None, ["prompts", "limit"],
                 id="prompt-explosion"),
]  # fmt: skip


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(("content", "line", "mentions"), YAML_CASES)
def test_hostile_yaml_is_one_line_with_file_and_line(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], content, line: int | None, mentions: list[str]
) -> None:
    vocab = _write(image.parent / "vocab.yaml", content)
    out = tmp_path / "out"
    started = time.perf_counter()
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--vocab", vocab, "--output", out / "o.jsonl", "--quiet"], capfd)
    where = f"vocab.yaml:{line}:" if line else "vocab.yaml"
    assert_error(result, 1, where, *mentions)
    assert time.perf_counter() - started < 10, "refusing a vocabulary must not take long"
    assert not out.exists() and not (tmp_path / MARKER).exists() and not Path(MARKER).exists()
    assert_no_temporaries(tmp_path)


def test_python_tag_in_a_fresh_process(tmp_path: Path, image: Path) -> None:
    vocab = _write(image.parent / "vocab.yaml", f'classes:\n  a: !!python/object/apply:os.system ["touch {MARKER}"]\n')
    with unchanged(image.parent):
        result = run_subprocess(["detect", image, "--vocab", vocab, "--output", tmp_path / "o.jsonl"], timeout=120)
    assert_error(result, 1, "vocab.yaml:2:", "tag")
    assert not (tmp_path / "o.jsonl").exists() and not (REPO / MARKER).exists()


@pytest.mark.parametrize(
    ("name", "make", "mentions"),
    [
        pytest.param("vocab.yaml", Path.mkdir, ["not a regular file"], id="folder-named-yaml"),
        pytest.param("vocab.yaml", lambda path: None, ["cannot be read"], id="missing-file"),
        pytest.param("vocab.txt", lambda path: path.write_text("classes: {a: x}\n"), ["must be a .yaml"],
                     id="wrong-suffix"),
    ],
)  # fmt: skip
def test_unreadable_vocabulary_paths(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], name: str, make, mentions: list[str]
) -> None:
    vocab = tmp_path / name
    make(vocab)
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--vocab", vocab, "--quiet"], capfd)
    assert_error(result, 1, name, *mentions)


@pytest.mark.parametrize(
    ("classes", "code", "mentions"),
    [
        pytest.param(",,,", 1, ["item 1 is blank"], id="only-commas"),
        pytest.param("@", 1, ["after @", "not a number"], id="bare-at"),
        pytest.param("=|", 1, ["blank"], id="equals-bar"),
        pytest.param("!", 1, ["no classes"], id="bare-bang"),
        pytest.param("person, !", 1, ["decoy is blank"], id="blank-decoy"),
        pytest.param("a@2", 1, ["outside [0, 1]"], id="threshold-2"),
        pytest.param("a@nan", 1, ["outside [0, 1]"], id="threshold-nan"),
        pytest.param("a@inf", 1, ["outside [0, 1]"], id="threshold-inf"),
        pytest.param("a=x|", 1, ["empty phrasing"], id="empty-phrasing"),
        pytest.param("person, Person", 1, ["duplicate"], id="duplicate-case"),
        pytest.param("=person", 1, ["item 1 is blank"], id="leading-equals"),
        pytest.param("person, !PERSON", 1, ["also a class"], id="decoy-equals-class"),
    ],
)
def test_hostile_inline_classes(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], classes: str, code: int, mentions: list[str]
) -> None:
    with unchanged(image.parent):
        result = run_cli(["detect", image, f"--classes={classes}", "--output", tmp_path / "o.jsonl"], capfd)
    assert_error(result, code, *mentions)
    assert not (tmp_path / "o.jsonl").exists()


def test_class_name_starting_with_a_dash_needs_the_equals_form(image: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result = run_cli(["detect", image, "--classes", "-person"], capfd)
    assert_error(result, 2, "--classes", "--help")


def _npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _vectors(rows: int = 2, width: int = 512) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, width)).astype(np.float32)


class _Payload:
    """Pickled, it would create the marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _object_array(path: Path) -> Path:
    names = np.empty(2, dtype=object)
    names[:] = [_Payload(path.parent / MARKER), "b"]
    return _npz(path, names=names, vectors=_vectors(), space=np.array("clip:ViT-B/32"))


def _good(path: Path, **changes) -> Path:
    arrays = {"names": np.array(["a", "b"]), "vectors": _vectors(), "space": np.array("clip:ViT-B/32")}
    return _npz(path, **{**arrays, **changes})


def _truncated(path: Path) -> Path:
    data = _good(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _stored_vocabulary_mismatch(path: Path) -> Path:
    meta = {"vocabulary": {"classes": {"x": {"prompts": ["x"]}, "y": {"prompts": ["y"]}}}}
    return _good(path, meta=np.array(json.dumps(meta)))


def _pickled_vectors(path: Path) -> Path:
    buffer = io.BytesIO()
    pickle.dump(_Payload(path.parent / MARKER), buffer)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("vectors.npy", buffer.getvalue())  # not an .npy at all: a bare pickle
        archive.writestr("names.npy", b"")
        archive.writestr("space.npy", b"")
    return path


NPZ_CASES = [
    pytest.param(lambda p: _good(p, vectors=np.zeros((2, 512), np.float32)), ["all zeros"], id="zero-vectors"),
    pytest.param(lambda p: _good(p, vectors=np.full((2, 512), np.nan, np.float32)), ["NaN"], id="nan-vectors"),
    pytest.param(lambda p: _good(p, vectors=np.full((2, 512), np.inf, np.float32)), ["infinity"], id="inf-vectors"),
    pytest.param(lambda p: _good(p, vectors=_vectors(2, 7)), ["7 wide", "512"], id="wrong-width"),
    pytest.param(lambda p: _good(p, vectors=_vectors(1, 1024)[0]), ["shape"], id="one-dimensional"),
    pytest.param(lambda p: _good(p, vectors=_vectors(3)), ["2 names, 3 rows"], id="rows-names-mismatch"),
    pytest.param(lambda p: _good(p, vectors=np.full((2, 512), "x")), ["not numbers"], id="text-vectors"),
    pytest.param(lambda p: _good(p, names=np.array([1, 2])), ["names"], id="numeric-names"),
    pytest.param(lambda p: _good(p, meta=np.array("[1, 2]")), ["meta"], id="meta-not-an-object"),
    pytest.param(lambda p: _good(p, space=np.array(["a", "b"])), ["space"], id="space-not-text"),
    pytest.param(_object_array, ["allow_pickle"], id="object-array-pickle"),
    pytest.param(_pickled_vectors, ["not a readable"], id="bare-pickle-member"),
    pytest.param(_truncated, ["not a readable"], id="truncated-zip"),
    pytest.param(lambda p: p.write_text("classes:\n  a: x\n"), ["not a readable"], id="text-file"),
    pytest.param(lambda p: p.write_bytes(b""), ["not a readable"], id="empty-npz"),
    pytest.param(lambda p: _npz(p, names=np.array(["a"])), ["lacks space, vectors"], id="missing-arrays"),
    pytest.param(_stored_vocabulary_mismatch, ["do not match"], id="stored-vocabulary-mismatch"),
]


@pytest.mark.parametrize(("make", "mentions"), NPZ_CASES)
def test_hostile_npz_is_one_line_naming_the_file(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], make, mentions: list[str]
) -> None:
    vocab = image.parent / "vocab.npz"
    make(vocab)
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--vocab", vocab, "--output", tmp_path / "o.jsonl", "--quiet"], capfd)
    assert_error(result, 1, "vocab.npz", *mentions)
    assert not (tmp_path / "o.jsonl").exists() and not (image.parent / MARKER).exists()


def test_npz_that_unpacks_too_large_is_refused_unread(
    tmp_path: Path, image: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    vocab = _good(image.parent / "vocab.npz")
    monkeypatch.setattr(ovdet.prompts.embeddings, "MAX_NPZ_BYTES", 1024)  # a zip bomb, scaled down
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran on an oversized archive"))
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--vocab", vocab, "--quiet"], capfd)
    assert_error(result, 1, "vocab.npz", "MiB")


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        pytest.param(["--classes", "a@2"], ["outside"], id="inline"),
        pytest.param([], ["tag"], id="python-tag-file"),
    ],
)
def test_embed_refuses_before_writing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], args: list[str], mentions: list[str]
) -> None:
    vocab = _write(tmp_path / "vocab.yaml", 'classes:\n  a: !!python/object/apply:os.system ["touch PWNED"]\n')
    out = tmp_path / "out.npz"
    with unchanged(vocab):
        result = run_cli(["embed", *(args or [vocab]), "-o", out], capfd)
    assert_error(result, 1, *mentions)
    assert not out.exists()
    assert_no_temporaries(tmp_path)


@pytest.mark.parametrize(
    ("classes", "warned"),
    [
        pytest.param("猫, Ärger, 🚑 ambulance, -person", False, id="unicode-and-dash"),
        pytest.param("x" * 10_000, True, id="10000-character-name"),
    ],
)
def test_odd_but_valid_inline_classes_embed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], classes: str, warned: bool
) -> None:
    out = tmp_path / "out.npz"
    result = run_cli(["embed", f"--classes={classes}", "-o", out], capfd)
    lines = assert_clean_stderr(result, 0)
    assert len(lines) == int(warned) and all(line.startswith("ovdet: warning: ") for line in lines)
    assert len(Embeddings.load(out)) == len(classes.split(","))
    assert_no_temporaries(tmp_path)


def test_500_inline_classes_embed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CLIP is stubbed: 500 real encodings take over a minute on a CPU and prove nothing about the vocabulary path.
    def encode(self, texts):
        return np.random.default_rng(len(texts)).normal(size=(len(texts), 512)).astype(np.float32)

    monkeypatch.setattr(ovdet.prompts.text.ClipTextEncoder, "encode", encode)
    out = tmp_path / "out.npz"
    names = [f"class {i}" for i in range(500)]
    result = run_cli(["embed", "--classes", ", ".join(names), "-o", out], capfd)
    assert not assert_clean_stderr(result, 0)
    assert Embeddings.load(out).names == tuple(names)


def test_bom_and_unicode_vocabulary_detects(
    tmp_path: Path, image: Path, model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    vocab = _write(image.parent / "vocab.yaml", "\ufeffclasses:\n  bottle:\n  Flasche: [Flasche, 瓶]\n")
    out = tmp_path / "out.jsonl"
    with unchanged(image.parent):
        result = run_cli(["detect", image, "--vocab", vocab, "--model", model_path, "--device", "cpu",
                          "--imgsz", "160", "--conf", "0.01", "--quiet", "--output", out], capfd)  # fmt: skip
    assert_clean_stderr(result, 0)
    assert_valid_output(out)
    names = {d["class_name"] for d in json.loads(out.read_text())["detections"]}
    assert names and names <= {"bottle", "Flasche"}


def test_running_detect_survives_hostile_live_edits(
    tmp_path: Path,
    model_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "inputs").mkdir()
    clip = write_clip(tmp_path / "inputs" / "clip.mp4", small_frames(12))
    vocab = _write(tmp_path / "vocab.yaml", "classes:\n  bottle:\n  person:\n")
    marker = tmp_path / MARKER
    edits = {  # poll number → what a careless or hostile editor writes
        2: f'classes:\n  bottle:\n    conf: !!python/object/apply:os.system ["touch {marker}"]\n'.encode(),
        4: b"classes:\n  caf\xe9:\n",
        6: None,  # deleted
        8: b"classes:\n  forklift:\n  pallet:\n",
    }
    polls = 0
    poll = VocabularyWatcher.poll

    def poll_after_edits(watcher: VocabularyWatcher):
        nonlocal polls
        polls += 1
        if polls in edits:
            if edits[polls] is None:
                vocab.unlink()
            else:
                vocab.write_bytes(edits[polls])
                os.utime(vocab, ns=(time.time_ns(), time.time_ns() + polls * 10_000_000))
        return poll(watcher)

    monkeypatch.setattr(VocabularyWatcher, "poll", poll_after_edits)
    out = tmp_path / "out.jsonl"
    with unchanged(clip):
        result = run_cli(["detect", clip, "--vocab", vocab, "--model", model_path, "--device", "cpu",
                          "--imgsz", "160", "--conf", "0.01", "--quiet", "--output", out], capfd)  # fmt: skip
    warnings = [line for line in assert_clean_stderr(result, 0) if "vocabulary" in line]
    assert_valid_output(out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12)), "every frame, in order, despite the edits"
    assert not marker.exists()
    assert len(warnings) == 3, warnings  # a good edit is a note, which --quiet keeps to itself
    assert "tag" in warnings[0] and "UTF-8" in warnings[1] and "removed" in warnings[2]
    late = {d["class_name"] for r in records[8:] for d in r["detections"]}
    assert late <= {"forklift", "pallet"}
