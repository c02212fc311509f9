"""Parity: same YOLOE checkpoint, same raw text embeddings → ovdet's detections (and masks) equal Ultralytics'
``YOLOE.predict`` after ``set_classes(names, head.get_tpe(embeddings))``.

Ultralytics' YOLOE predicts with class-agnostic NMS by default, and runs YOLO26's one-to-many head with NMS unless
``nms=False`` picks the one-to-one head; ovdet runs YOLOE-26 end to end, so it is compared with ``nms=False`` and
YOLOE's default selection, which gives each box one class (``agnostic_nms=False`` would report an anchor once per
class that passes ``conf``): ovdet's ``agnostic_nms`` changes nothing there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import torch
from ultralytics import YOLOE

from ovdet import OpenVocabDetector
from ovdet.core.errors import ConfigError
from ovdet.prompts.embeddings import Embeddings
from tests.conftest import BOTTLES, read_frames
from tests.weights_fixtures import random_text_features

CLASSES = ["bottle", "cap", "label"]
CONF = 0.05
IMGSZ = 320
MODELS = ("yoloe-11n", "yoloe-26n", "yoloe-11n-seg", "yoloe-26n-seg")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_frames(BOTTLES, 2, step=150)


@pytest.fixture(scope="module")
def raw_embeddings() -> torch.Tensor:
    """Raw (pre-RepRTA) text features, as a MobileCLIP text tower gives them."""
    return random_text_features(len(CLASSES), seed=7)[0]


def _ovdet(path: Path, raw: torch.Tensor, **options) -> OpenVocabDetector:
    detector = OpenVocabDetector(path, device="cpu", runtime="torch", imgsz=IMGSZ, **options)
    detector.set_classes(Embeddings(CLASSES, raw.numpy(), detector.backend.space))
    return detector


def _ultralytics(path: Path, raw: torch.Tensor) -> YOLOE:
    model = YOLOE(str(path))
    model.set_classes(CLASSES, model.model.model[-1].get_tpe(raw[None]))
    return model


def _pair(ours: sv.Detections, boxes: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """For each of our detections, the index of theirs with the same class and the nearest box and score."""
    cost = np.abs(ours.xyxy[:, None] - boxes[None]).sum(-1)
    cost += 1e3 * (ours.class_id[:, None] != cls[None]) + 1e3 * np.abs(ours.confidence[:, None] - conf[None])
    return cost.argmin(axis=1)


@pytest.mark.parametrize("agnostic", [False, True], ids=["per-class", "agnostic"])
@pytest.mark.parametrize("name", MODELS)
def test_yoloe_matches_ultralytics(name: str, agnostic: bool, yoloe_paths, frames, raw_embeddings) -> None:
    detector = _ovdet(yoloe_paths[name], raw_embeddings, agnostic_nms=agnostic)
    theirs_model = _ultralytics(yoloe_paths[name], raw_embeddings)
    options = {"nms": False} if detector.backend.end2end else {"agnostic_nms": agnostic}
    for index, frame in enumerate(frames):
        ours = detector.detect(frame, conf=CONF)
        theirs = theirs_model.predict(frame, imgsz=IMGSZ, conf=CONF, retina_masks=True, verbose=False, **options)[0]
        assert len(ours) >= 50, f"{name} frame {index}: only {len(ours)} detections, the comparison would be weak"
        assert len(ours) == len(theirs.boxes)
        boxes, conf = theirs.boxes.xyxy.numpy(), theirs.boxes.conf.numpy()
        cls = theirs.boxes.cls.numpy().astype(int)
        if detector.backend.end2end:  # one anchor, one box, one class
            assert len(np.unique(boxes, axis=0)) == len(boxes), "Ultralytics reported a box twice"
            assert len(np.unique(ours.xyxy, axis=0)) == len(ours), f"{name}: a box is reported under several classes"
        partner = _pair(ours, boxes, conf, cls)
        assert len(set(partner.tolist())) == len(ours), "detections do not pair up one to one"
        np.testing.assert_array_equal(ours.class_id, cls[partner])
        np.testing.assert_allclose(ours.xyxy, boxes[partner], atol=0.5)
        np.testing.assert_allclose(ours.confidence, conf[partner], atol=1e-4)
        if not name.endswith("-seg"):
            assert ours.mask is None
            continue
        their_masks = theirs.masks.data.numpy().astype(bool)[partner]
        assert ours.mask.shape == their_masks.shape == (len(ours), *frame.shape[:2])
        intersection = (ours.mask & their_masks).sum(axis=(1, 2))
        union = (ours.mask | their_masks).sum(axis=(1, 2))
        assert (intersection / union).min() >= 0.99


def test_end_to_end_head_has_no_nms(yoloe_paths, frames, raw_embeddings) -> None:
    """YOLOE-26's one-to-one head is top-k selected: an IoU threshold changes nothing; YOLOE-11's NMS it does."""
    end2end = _ovdet(yoloe_paths["yoloe-26n"], raw_embeddings)
    assert end2end.backend.end2end
    loose, strict = (end2end.detect(frames[0], conf=CONF, iou=iou) for iou in (0.9, 0.05))
    np.testing.assert_array_equal(loose.xyxy, strict.xyxy)
    with_nms = _ovdet(yoloe_paths["yoloe-11n"], raw_embeddings)
    assert not with_nms.backend.end2end
    assert len(with_nms.detect(frames[0], conf=CONF, iou=0.05)) < len(with_nms.detect(frames[0], conf=CONF, iou=0.9))


def test_detect_task_on_a_seg_checkpoint_skips_masks(yoloe_paths, frames, raw_embeddings) -> None:
    segment = _ovdet(yoloe_paths["yoloe-11n-seg"], raw_embeddings)
    detect = _ovdet(yoloe_paths["yoloe-11n-seg"], raw_embeddings, task="detect")
    assert (segment.backend.task, detect.backend.task) == ("segment", "detect")
    with_masks, boxes_only = segment.detect(frames[0], conf=CONF), detect.detect(frames[0], conf=CONF)
    assert boxes_only.mask is None and with_masks.mask is not None
    # Segmenting drops only the detections whose mask is empty; every other box is the same.
    assert len(with_masks) <= len(boxes_only)
    assert sv.box_iou_batch(with_masks.xyxy, boxes_only.xyxy).max(axis=1).min() > 0.999


def test_segment_task_on_a_detection_checkpoint_is_refused(yoloe_paths) -> None:
    with pytest.raises(ConfigError, match=r"yoloe-11n\.pt is a detection model and has no masks.*-seg") as error:
        OpenVocabDetector(yoloe_paths["yoloe-11n"], device="cpu", runtime="torch", task="segment")
    assert "\n" not in str(error.value)


def test_embeddings_of_another_family_are_refused(yoloe_paths, raw_embeddings) -> None:
    detector = OpenVocabDetector(yoloe_paths["yoloe-26n"], device="cpu", runtime="torch")
    assert detector.backend.space == "mobileclip2:b"
    with pytest.raises(Exception, match=r"mobileclip:blt.*mobileclip2:b") as error:
        detector.set_classes(Embeddings(CLASSES, raw_embeddings.numpy(), "mobileclip:blt"))
    assert "\n" not in str(error.value)
