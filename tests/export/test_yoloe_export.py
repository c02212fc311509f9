"""YOLOE exports: a changeable vocabulary (raw text embeddings in, RepRTA inside the graph) that runs without torch
and detects new classes as PyTorch does, masks included; a fixed vocabulary; what ``ovdet.json`` records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import supervision as sv

from ovdet import ConfigError, Embeddings, EmbeddingSpaceError, OpenVocabDetector, WeightsError
from ovdet.cli import main
from ovdet.models import converted_backend
from ovdet.runtimes.artifact import Artifact
from ovdet.runtimes.converted import compiled_dir
from tests.conftest import BOTTLES, read_frames
from tests.export.test_export import TORCH_FREE_CLI
from tests.weights_fixtures import random_text_features

IMGSZ = 320
CONF = 0.05
SLOTS = 8
BOX_TOLERANCE_PX = 1.0
SCORE_TOLERANCE = 1e-3
NEW_CLASSES = ["bottle", "cap", "label", "hand", "box"]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_frames(BOTTLES, 2, step=150)


@pytest.fixture(scope="module")
def exports(yoloe_paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Changeable-vocabulary exports through the CLI: ``<model>-<format>`` → folder."""
    root = tmp_path_factory.mktemp("yoloe-exports")
    folders = {}
    for name in ("yoloe-11n-seg", "yoloe-26n-seg"):
        folder = root / f"{name}-onnx"
        command = ["export", "--model", str(yoloe_paths[name]), "--format", "onnx", "--dynamic-vocab",
                   "--max-classes", str(SLOTS), "--imgsz", str(IMGSZ), "-o", str(folder)]  # fmt: skip
        assert main(command) == 0
        folders[f"{name}-onnx"] = folder
    return folders


def _embeddings(space: str, names: list[str] = NEW_CLASSES, seed: int = 11) -> Embeddings:
    return Embeddings(names, random_text_features(len(names), seed=seed)[0].numpy(), space)


def _torch_detector(path: Path, **options) -> OpenVocabDetector:
    return OpenVocabDetector(path, device="cpu", runtime="torch", imgsz=IMGSZ, **options)


def assert_same(expected: sv.Detections, actual: sv.Detections) -> None:
    """The same detections (paired up, since near-equal scores may swap places): boxes within a pixel, scores within
    1e-3, masks (if any) IoU ≥ 0.99."""
    assert len(expected) == len(actual) > 0
    cost = np.abs(expected.xyxy[:, None] - actual.xyxy[None]).sum(-1)
    cost += 1e3 * (expected.class_id[:, None] != actual.class_id[None])
    cost += 1e3 * np.abs(expected.confidence[:, None] - actual.confidence[None])
    partner = cost.argmin(axis=1)
    assert len(set(partner.tolist())) == len(expected), "detections do not pair up one to one"
    np.testing.assert_array_equal(expected.class_id, actual.class_id[partner])
    np.testing.assert_allclose(expected.xyxy, actual.xyxy[partner], atol=BOX_TOLERANCE_PX)
    np.testing.assert_allclose(expected.confidence, actual.confidence[partner], atol=SCORE_TOLERANCE)
    assert (expected.mask is None) == (actual.mask is None)
    if expected.mask is not None:
        theirs = actual.mask[partner]
        intersection = (expected.mask & theirs).sum(axis=(1, 2))
        union = (expected.mask | theirs).sum(axis=(1, 2))
        assert (intersection / union).min() >= 0.99


@pytest.mark.parametrize("export", ["yoloe-11n-seg-onnx", "yoloe-26n-seg-onnx"])
def test_changeable_export_detects_new_classes_as_pytorch(export: str, exports, yoloe_paths, frames) -> None:
    name = export.rsplit("-", 1)[0]
    torch_detector = _torch_detector(yoloe_paths[name])
    exported = OpenVocabDetector(exports[export], device="cpu")
    for count in (2, len(NEW_CLASSES)):
        vocabulary = _embeddings(torch_detector.backend.space, NEW_CLASSES[:count])
        torch_detector.set_classes(vocabulary)
        exported.set_classes(vocabulary)
        for frame in frames:
            assert_same(torch_detector.detect(frame, conf=CONF), exported.detect(frame, conf=CONF))


def test_pt_runs_through_the_cached_openvino_conversion(yoloe_paths, frames) -> None:
    """The default CPU path: a YOLOE .pt converted once to a changeable-vocabulary OpenVINO graph."""
    torch_detector = _torch_detector(yoloe_paths["yoloe-26n-seg"])
    converted = OpenVocabDetector(yoloe_paths["yoloe-26n-seg"], device="cpu", runtime="openvino", imgsz=IMGSZ)
    vocabulary = _embeddings("mobileclip2:b")
    torch_detector.set_classes(vocabulary)
    converted.set_classes(vocabulary)
    assert (converted.backend.name, converted.backend.space, converted.backend.end2end) == (
        "openvino", "mobileclip2:b", True,
    )  # fmt: skip
    assert_same(torch_detector.detect(frames[0], conf=CONF), converted.detect(frames[0], conf=CONF))


def test_metadata_records_family_space_head_and_task(exports, yoloe_paths) -> None:
    metadata = Artifact.open(exports["yoloe-26n-seg-onnx"], "onnx").metadata
    assert (metadata.family, metadata.embedding_space, metadata.end2end, metadata.task) == (
        "yoloe", "mobileclip2:b", True, "segment",
    )  # fmt: skip
    assert (metadata.vocabulary, metadata.max_classes) == ("dynamic", SLOTS)
    assert metadata.text_encoder.cache_key.startswith("mobileclip2:b@")  # the family's own text tower ships
    assert Artifact.open(exports["yoloe-11n-seg-onnx"], "onnx").metadata.embedding_space == "mobileclip:blt"
    assert not Artifact.open(exports["yoloe-11n-seg-onnx"], "onnx").metadata.end2end


def test_detect_task_on_a_segmentation_export_gives_no_masks(exports, frames) -> None:
    detector = OpenVocabDetector(exports["yoloe-11n-seg-onnx"], device="cpu", task="detect")
    detector.set_classes(_embeddings("mobileclip:blt"))
    assert detector.detect(frames[0], conf=CONF).mask is None


def test_embeddings_of_another_space_are_refused_by_the_export(exports) -> None:
    detector = OpenVocabDetector(exports["yoloe-26n-seg-onnx"], device="cpu")
    with pytest.raises(EmbeddingSpaceError, match=r"'mobileclip:blt'.*'mobileclip2:b'") as error:
        detector.set_classes(_embeddings("mobileclip:blt"))
    assert "\n" not in str(error.value)


def test_fixed_export_bakes_the_classes(yoloe_paths, frames, tmp_path: Path) -> None:
    torch_detector = _torch_detector(yoloe_paths["yoloe-26n"])
    torch_detector.set_classes(_embeddings("mobileclip2:b", NEW_CLASSES[:3]))
    model_file = torch_detector.export("onnx", imgsz=IMGSZ, output=tmp_path / "fixed")
    exported = OpenVocabDetector(model_file, device="cpu")
    assert exported.classes == tuple(NEW_CLASSES[:3])
    assert_same(torch_detector.detect(frames[0], conf=CONF), exported.detect(frames[0], conf=CONF))


def test_masks_export_only_to_runtimes_that_read_them(yoloe_paths, tmp_path: Path) -> None:
    detector = _torch_detector(yoloe_paths["yoloe-11n-seg"])
    with pytest.raises(ConfigError, match=r"torchscript export of a segmentation model.*onnx or openvino") as error:
        detector.export("torchscript", dynamic_vocab=True, max_classes=4, output=tmp_path / "ts")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "ts").exists()


def detect_without_torch(model: Path, frame: np.ndarray, vocabulary: list[str], folder: Path) -> sv.Detections:
    """``ovdet detect`` of one frame in a process where torch, Ultralytics and open_clip cannot be imported;
    ``vocabulary`` are its flags (``--vocab FILE`` or ``--classes …``)."""
    image, output = folder / "frame.png", folder / "out.jsonl"
    cv2.imwrite(str(image), frame)
    command = [sys.executable, "-c", TORCH_FREE_CLI, "detect", str(image), "--model", str(model), *vocabulary,
               "--conf", str(CONF), "--imgsz", str(IMGSZ), "--output", str(output), "--quiet"]  # fmt: skip
    result = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())["detections"]
    return sv.Detections(
        xyxy=np.array([row["xyxy"] for row in rows], np.float32).reshape(-1, 4),
        confidence=np.array([row["confidence"] for row in rows], np.float32),
        class_id=np.array([row["class_id"] for row in rows], int),
    )


def test_torch_free_cli_detects_new_classes(exports, yoloe_paths, frames, tmp_path: Path) -> None:
    vocabulary = _embeddings("mobileclip:blt")
    vocabulary.save(tmp_path / "vocab.npz")
    found = detect_without_torch(exports["yoloe-11n-seg-onnx"], frames[0], ["--vocab", str(tmp_path / "vocab.npz")],
                                 tmp_path)  # fmt: skip
    torch_detector = _torch_detector(yoloe_paths["yoloe-11n-seg"])
    torch_detector.set_classes(vocabulary)
    expected = torch_detector.detect(frames[0], conf=CONF)
    expected.mask = None
    assert_same(expected, found)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("family", "mystery", "family 'mystery'"), ("task", "pose", "task 'pose'"), ("end2end", "yes", "end2end 'yes'")],
)
def test_contradictory_yoloe_metadata_is_refused(field: str, value, message: str, exports, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(exports["yoloe-26n-seg-onnx"], folder)
    metadata = json.loads((folder / "ovdet.json").read_text())
    (folder / "ovdet.json").write_text(json.dumps({**metadata, field: value}))
    with pytest.raises(WeightsError, match=rf"{message}.*re-export") as error:
        OpenVocabDetector(folder, device="cpu")
    assert "\n" not in str(error.value)


def test_detect_task_converts_a_seg_checkpoint_without_its_mask_branch(yoloe_paths, frames) -> None:
    detector = OpenVocabDetector(yoloe_paths["yoloe-11n-seg"], device="cpu", runtime="onnxruntime", task="detect")
    detector.set_classes(_embeddings("mobileclip:blt"))
    assert detector.detect(frames[0], conf=CONF).mask is None
    [folder] = compiled_dir().glob("yoloe-11n-seg-*-onnxruntime-k*-detect")  # cached apart from a segmenting one
    converted = Artifact.open(folder, "onnx")
    assert converted.metadata.task == "detect"
    graph = onnx.load(str(converted.model_path), load_external_data=False)
    assert [output.name for output in graph.graph.output] == ["output0"], "no mask prototypes are computed"


def test_detect_task_on_a_detection_checkpoint_shares_its_default_conversion(yoloe_paths, model_path: Path) -> None:
    for path in (yoloe_paths["yoloe-11n"], model_path):  # no mask branch to skip: one conversion serves both
        assert converted_backend(path, "onnxruntime", task="detect").cache.variant == ""
    assert converted_backend(yoloe_paths["yoloe-11n-seg"], "onnxruntime", task="detect").cache.variant == "-detect"
