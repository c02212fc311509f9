"""Parity: same checkpoint, same embeddings → ovdet's detections equal Ultralytics' own YOLOWorld.predict."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from ultralytics import YOLOWorld
from ultralytics.utils import ASSETS

from ovdet.runtimes.torch import inject_classes
from tests.conftest import BOTTLES, read_frames
from tests.footage import PEOPLE_CLIP, read_source_frames

CLASSES = ["bottle", "person", "red backpack", "person wearing sunglasses"]
CONF = 0.01


@pytest.fixture(scope="module")
def ultralytics_model(model_path: Path, weights_dir: Path, detector_with_classes):
    """Ultralytics' model with the very embeddings ovdet uses, injected (its own set_classes needs the network)."""
    model = YOLOWorld(str(model_path))
    vectors = detector_with_classes.embeddings.vectors
    inject_classes(model.model, vectors, CLASSES)
    model.predictor = None
    return model


@pytest.fixture(scope="module")
def detector_with_classes(session_detector):
    session_detector.set_classes(CLASSES)
    return session_detector


def _images() -> list[tuple[str, np.ndarray]]:
    frames = [(f"bottles#{i}", f) for i, f in enumerate(read_frames(BOTTLES, 3, step=200))]
    frames += [(f"people#{i}", f) for i, f in enumerate(read_source_frames(PEOPLE_CLIP, [0, 400]))]
    frames += [(path.name, cv2.imread(str(path))) for path in sorted(Path(ASSETS).glob("*.jpg"))]
    return frames


def _match(ours: sv.Detections, xyxy: np.ndarray, class_id: np.ndarray) -> np.ndarray:
    """For each of our boxes, the index of the same-class box of theirs that overlaps it most."""
    overlap = sv.box_iou_batch(ours.xyxy, xyxy) * (ours.class_id[:, None] == class_id[None, :])
    return overlap.argmax(axis=1)


@pytest.mark.parametrize(("name", "image"), _images(), ids=lambda value: value if isinstance(value, str) else "")
def test_detections_match_ultralytics(name: str, image: np.ndarray, detector_with_classes, ultralytics_model) -> None:
    ours = detector_with_classes.detect(image, conf=CONF)
    theirs = ultralytics_model.predict(image, conf=CONF, verbose=False, device="cpu")[0].boxes
    assert len(ours) >= 100, f"{name}: only {len(ours)} boxes, the comparison would be weak"
    assert len(ours) == len(theirs)
    their_boxes, their_conf, their_cls = theirs.xyxy.numpy(), theirs.conf.numpy(), theirs.cls.numpy().astype(int)
    partner = _match(ours, their_boxes, their_cls)
    assert len(set(partner.tolist())) == len(ours), "boxes do not pair up one to one"
    np.testing.assert_array_equal(ours.class_id, their_cls[partner])
    np.testing.assert_allclose(ours.xyxy, their_boxes[partner], atol=0.5)
    np.testing.assert_allclose(ours.confidence, their_conf[partner], atol=1e-4)


def test_batched_detect_matches_ultralytics_batch(detector_with_classes, ultralytics_model) -> None:
    frames = read_frames(BOTTLES, 3, step=100)
    ours = detector_with_classes.detect(frames, conf=CONF)
    theirs = ultralytics_model.predict(frames, conf=CONF, verbose=False, device="cpu")
    for mine, result in zip(ours, theirs):
        assert len(mine) == len(result.boxes) > 0
        np.testing.assert_allclose(np.sort(mine.confidence), np.sort(result.boxes.conf.numpy()), atol=1e-4)
