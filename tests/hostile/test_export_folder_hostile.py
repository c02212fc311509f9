"""Hostile export folders: an edited ``ovdet.json``, damaged graph files, and too many classes for the slots.

``ovdet.json`` travels with the export and anyone who can write the folder can edit it. Generated cases (field ×
bad value) each end in one ``ovdet: error: …ovdet.json…`` line naming the field and the fix; an export into a
folder whose ``ovdet.json`` names files outside it deletes nothing there; random or truncated graph files are one
line naming the file; a 4-slot export refuses 10,000 classes before encoding any.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ovdet import ModelError, OpenVocabDetector
from ovdet.runtimes.artifact import METADATA_FILE, Artifact
from ovdet.runtimes.text_model import OnnxTextEncoder
from tests.hostile.harness import assert_error, assert_no_temporaries, run_cli, unchanged

IMGSZ = 64
SLOTS = 4
CLASSES = ["bottle", "person"]

# Bad values by the type a field has; every one is refused when the field holds it.
POSITIVE_INTS = [0, -32, True, "640", 640.5, None, [640, 640], {"size": 640}]
CHOICES = [None, "", 1, ["onnx"], "\x1b[2J", "unknown"]
TEXTS = [None, "", 5, ["text"], "x" * 1001]
BAD_FILE_NAMES = [
    "../other.txt", "../other.onnx", "/etc/passwd", "/tmp/model.onnx", "sub/model.onnx", "..", ".", "", "model.txt",
    ".onnx", "C:\\model.onnx", "a\\..\\..\\model.onnx", "model.onnx\x00", None, 5, ["model.onnx"],
]  # fmt: skip
TOWER = {"model_file": "text-encoder.onnx", "vocab_file": "bpe.txt.gz", "cache_key": "clip@x", "context_length": 77}
BAD_TOWERS = [
    "text-encoder.onnx", ["text-encoder.onnx"], {**TOWER, "model_file": "../t.onnx"},
    {**TOWER, "vocab_file": "/etc/passwd"}, {**TOWER, "vocab_file": "../bpe.txt.gz"}, {**TOWER, "cache_key": 5},
    {**TOWER, "context_length": 0}, {**TOWER, "context_length": 10**9}, {**TOWER, "context_length": "77"},
    {**TOWER, "extra": 1}, {k: v for k, v in TOWER.items() if k != "model_file"},
]  # fmt: skip
FIELD_CASES: list[tuple[str, Any]] = [
    *[(field, value) for field in ("max_classes", "embedding_dim", "imgsz", "stride") for value in POSITIVE_INTS],
    *[("max_batch", value) for value in (0, -1, "1", True, 1.5, [1])],
    *[(field, value) for field in ("format", "vocabulary", "precision", "input_dtype", "family", "task")
      for value in CHOICES],
    *[(field, value) for field in ("embedding_space", "source_weights", "source_sha256", "ovdet_version")
      for value in TEXTS],
    *[("end2end", value) for value in (1, 0, "true", "false", None, [])],
    *[("classes", value) for value in (5, "bottle", [1, 2], [None, "person"], ["", "person"], {"bottle": 1})],
    *[("model_file", value) for value in BAD_FILE_NAMES],
    *[("text_encoder", value) for value in BAD_TOWERS],
    *[("schema", value) for value in (True, "1", 1.0, 2, None)],
]  # fmt: skip
# Values of the right type that contradict the rest of ovdet.json or the graph: (changes, what the line names).
CONSISTENCY_CASES = [
    ({"task": "segment"}, "task"),
    ({"family": "yoloe"}, "family"),
    ({"end2end": True}, "end2end"),
    ({"max_classes": 3, "classes": ["bottle", "person", "cup"]}, "rows"),
    ({"vocabulary": "dynamic", "classes": None}, "inputs"),
    ({"stride": 7}, "stride"),
    ({"imgsz": 100}, "imgsz"),
    ({"max_classes": 3}, "class names"),
]


@pytest.fixture(scope="module")
def exports(session_detector, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Export folders made once: ``onnx`` and ``openvino`` (fixed, 2 classes), ``dynamic`` (ONNX, 4 slots)."""
    root = tmp_path_factory.mktemp("hostile-exports")
    session_detector.set_classes(CLASSES)
    made = {
        kind: session_detector.export(kind, imgsz=IMGSZ, output=root / kind).parent for kind in ("onnx", "openvino")
    }
    made["dynamic"] = session_detector.export(
        "onnx", dynamic_vocab=True, max_classes=SLOTS, imgsz=IMGSZ, output=root / "dynamic"
    ).parent
    return made


@pytest.fixture
def image(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "inputs" / "frame.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), np.full((48, 64, 3), 127, np.uint8))
    return path


def _linked_copy(export: Path, target: Path) -> Path:
    """The export's files as hard links in a folder of its own, except ``ovdet.json``, which is a copy to edit."""
    target.mkdir()
    for file in export.iterdir():
        if file.name == METADATA_FILE:
            shutil.copyfile(file, target / file.name)
        else:
            os.link(file, target / file.name)
    return target


def _edit(folder: Path, **changes: Any) -> None:
    path = folder / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _detect(folder: Path, image: Path, capfd, *extra: str):
    return run_cli(["detect", str(image), "--model", str(folder), "--output", str(image.parent.parent / "o.jsonl"),
                    *extra], capfd)  # fmt: skip


@pytest.mark.parametrize(("field", "value"), FIELD_CASES, ids=[f"{f}={v!r}"[:60] for f, v in FIELD_CASES])
def test_an_edited_field_is_one_line_naming_it(field: str, value: Any, exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports["onnx"], tmp_path / "export")
    _edit(folder, **{field: value})
    with unchanged(folder, image.parent):
        line = assert_error(_detect(folder, image, capfd), 1, METADATA_FILE, "re-export")
    assert field in line, line
    assert not (image.parent.parent / "o.jsonl").exists()


@pytest.mark.parametrize(("changes", "mention"), CONSISTENCY_CASES, ids=[str(c) for c, _ in CONSISTENCY_CASES])
def test_an_edit_that_contradicts_the_graph_is_refused(changes, mention, exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports["onnx"], tmp_path / "export")
    _edit(folder, **changes)
    extra = ["--classes", "bottle"] if changes.get("vocabulary") == "dynamic" else []  # else its baked classes
    with unchanged(folder, image.parent):
        assert_error(_detect(folder, image, capfd, *extra), 1, METADATA_FILE, mention, "re-export")


def test_a_dynamic_export_with_another_embedding_width_is_refused(exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports["dynamic"], tmp_path / "export")
    _edit(folder, embedding_dim=256)
    assert_error(_detect(folder, image, capfd, "--classes", "bottle"), 1, METADATA_FILE, "256")


def test_a_model_file_linked_outside_the_folder_is_refused(exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports["onnx"], tmp_path / "export")
    model = Artifact.open(folder, "onnx").model_path
    outside = tmp_path / "elsewhere.onnx"
    model.rename(outside)
    model.symlink_to(outside)
    assert_error(_detect(folder, image, capfd), 1, METADATA_FILE, "outside the export folder")


def test_an_ovdet_json_that_is_not_a_regular_file_is_refused(exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports["onnx"], tmp_path / "export")
    (folder / METADATA_FILE).unlink()
    (folder / METADATA_FILE).symlink_to("/dev/zero")
    assert_error(_detect(folder, image, capfd), 1, METADATA_FILE)


# --- export into a folder whose earlier ovdet.json was edited: nothing outside what ovdet wrote is deleted --------


def _victims(tmp_path: Path) -> dict[str, Path]:
    names = ["victim.onnx", "victim.txt", "victim.xml", "victim.bin", "victim.txt.gz", "linked.onnx"]
    victims = {name: tmp_path / "outside" / name for name in names}
    for path in victims.values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(64))
    return victims


def _plant_link(folder: Path, victims: dict[str, Path]) -> None:
    (folder / "link.onnx").symlink_to(victims["linked.onnx"])


def _plant_folder(folder: Path, victims: dict[str, Path]) -> None:
    (folder / "sub.onnx").mkdir()
    (folder / "sub.onnx" / "keep.txt").write_text("mine")


# (changes to the earlier ovdet.json, with {outside} for the victims' folder; what else to plant)
EARLIER = [
    ({"model_file": "../outside/victim.onnx"}, None),
    ({"model_file": "{outside}/victim.onnx"}, None),
    ({"model_file": "../outside/victim.txt"}, None),
    ({"format": "openvino", "model_file": "../outside/victim.xml"}, None),
    ({"text_encoder": {**TOWER, "model_file": "../outside/victim.onnx", "vocab_file": "../outside/victim.txt.gz"}},
     None),
    ({"model_file": "../outside/victim.onnx", "imgsz": "640"}, None),
    ({"model_file": "link.onnx"}, _plant_link),
    ({"model_file": "sub.onnx"}, _plant_folder),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "plant"), EARLIER, ids=[str(c)[:60] for c, _ in EARLIER])
@pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the first of these exports
def test_export_deletes_nothing_an_edited_ovdet_json_names(changes, plant, exports, model_path, tmp_path, capfd):
    victims = _victims(tmp_path)
    folder = tmp_path / "export"
    folder.mkdir()
    metadata = json.loads((exports["onnx"] / METADATA_FILE).read_text())
    edited = {k: v.replace("{outside}", str(tmp_path / "outside")) if isinstance(v, str) else v
              for k, v in changes.items()}  # fmt: skip
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, **edited}))
    if plant is not None:
        plant(folder, victims)
    planted = sorted(p.name for p in folder.iterdir() if p.name != METADATA_FILE)
    args = ["export", "--model", model_path, "--classes", "bottle", "--format", "onnx", "--imgsz", IMGSZ, "-o", folder]
    with unchanged(victims["victim.onnx"].parent):
        result = run_cli(args, capfd)
    assert result.code == 0, result.err
    assert Artifact.open(folder, "onnx").metadata.classes == ("bottle",)
    assert set(planted) <= {p.name for p in folder.iterdir()}, "a file of the folder that ovdet did not write went"
    assert_no_temporaries(folder, folder.parent)


# --- damaged graph files: one line naming the file -------------------------------------------------------------


def _random(path: Path) -> None:
    path.unlink()
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.unlink()
    path.write_text("not a model\n")


GRAPH_FILES = {
    "onnx": ["yolov8s-worldv2.onnx"],
    "openvino": ["yolov8s-worldv2.xml", "yolov8s-worldv2.bin"],
    "dynamic": ["text-encoder.onnx", "yolov8s-worldv2.onnx"],
}
DAMAGED = [
    (export, file, damage)
    for export, files in GRAPH_FILES.items()
    for file in files
    for damage in (_random, _truncated, _empty, _text)
]


@pytest.mark.parametrize(("export", "file", "damage"), DAMAGED, ids=[f"{e}-{f}-{d.__name__}" for e, f, d in DAMAGED])
def test_a_damaged_graph_file_is_one_line_naming_it(export, file, damage, exports, image: Path, tmp_path: Path, capfd):
    folder = _linked_copy(exports[export], tmp_path / "export")
    damage(folder / file)
    extra = ["--classes", "bottle"] if export == "dynamic" else []
    with unchanged(folder, image.parent):
        result = _detect(folder, image, capfd, *extra)
    assert_error(result, 1, file, "re-export")


# --- more classes than slots: refused before any is encoded ----------------------------------------------------


@pytest.fixture
def no_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def encode(self, texts):
        raise AssertionError(f"{len(texts)} prompts encoded before the slot count was checked")

    monkeypatch.setattr(OnnxTextEncoder, "encode", encode)


@pytest.mark.parametrize("count", [SLOTS + 1, 100, 10_000])
def test_more_classes_than_slots_are_refused_before_encoding(count, exports, image, no_encoding, capfd) -> None:
    classes = ",".join(f"class {i}" for i in range(count))
    assert_error(_detect(exports["dynamic"], image, capfd, "--classes", classes), 1, f"at most {SLOTS} classes")
    detector = OpenVocabDetector(exports["dynamic"], device="cpu")
    with pytest.raises(ModelError, match=f"at most {SLOTS} classes"):
        detector.set_classes([f"class {i}" for i in range(count)])
