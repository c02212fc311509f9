"""Post-processing of hand-built head outputs: an end-to-end head (YOLOE-26) reports each anchor's box once, under
its best class, as Ultralytics' YOLOE ``predict(nms=False)`` does, and picks classes as the NMS path does."""

from __future__ import annotations

import numpy as np
import pytest

from ovdet.vision.postprocess import postprocess
from ovdet.vision.preprocess import Letterbox

PLACEMENT = Letterbox(1.0, 1.0, 0, 0, 200, 200)
NAMES = ["bottle", "cap", "decoy:toy bottle"]


def _head(xyxy: list[list[float]], scores: list[list[float]]) -> np.ndarray:
    """A ``(1, 4 + K, N)`` end-to-end output: xyxy boxes, then one score per class, one column per anchor."""
    return np.concatenate([np.asarray(xyxy, np.float32).T, np.asarray(scores, np.float32).T])[None]


def _as_xywh(raw: np.ndarray) -> np.ndarray:
    """The same output as an NMS head gives it: boxes as centre and size."""
    xywh = raw.copy()
    xywh[0, :2] = (raw[0, :2] + raw[0, 2:4]) / 2
    xywh[0, 2:4] = raw[0, 2:4] - raw[0, :2]
    return xywh


@pytest.mark.parametrize("agnostic", [False, True], ids=["per-class", "agnostic"])
def test_an_anchor_whose_two_classes_pass_conf_is_one_box_with_its_best_class(agnostic: bool) -> None:
    raw = _head([[10, 10, 50, 50], [100, 100, 150, 160]], [[0.6, 0.8, 0.0], [0.3, 0.1, 0.0]])
    found = postprocess(raw, [PLACEMENT], NAMES, conf=0.05, iou=0.7, max_det=300, agnostic=agnostic, end2end=True)[0]
    assert len(found) == 2, "each anchor is one box, whatever number of its classes pass conf"
    np.testing.assert_array_equal(found.xyxy, [[10, 10, 50, 50], [100, 100, 150, 160]])
    np.testing.assert_array_equal(found.class_id, [1, 0])
    np.testing.assert_allclose(found.confidence, [0.8, 0.3])
    assert list(found.data["class_name"]) == ["cap", "bottle"]


def test_top_k_ranks_anchors_by_their_best_class_and_keeps_max_det() -> None:
    scores = [[0.2, 0.9, 0.0], [0.5, 0.1, 0.0], [0.04, 0.03, 0.0], [0.7, 0.0, 0.0]]
    raw = _head([[i, i, i + 10, i + 10] for i in range(4)], scores)
    found = postprocess(raw, [PLACEMENT], NAMES, conf=0.05, iou=0.7, max_det=2, agnostic=False, end2end=True)[0]
    np.testing.assert_allclose(found.confidence, [0.9, 0.7])
    np.testing.assert_array_equal(found.class_id, [1, 0])
    everything = postprocess(raw, [PLACEMENT], NAMES, conf=0.05, iou=0.7, max_det=300, agnostic=False, end2end=True)
    np.testing.assert_allclose(everything[0].confidence, [0.9, 0.7, 0.5], err_msg="the anchor under conf is dropped")


def test_a_decoy_that_wins_an_anchor_takes_its_box_as_after_nms() -> None:
    """The decoy row is the anchor's best class: the box goes to the decoy (the detector then drops it), never to
    the lower-scoring class, in the end-to-end selection as in the NMS one."""
    raw = _head([[10, 10, 50, 50], [120, 120, 180, 180]], [[0.5, 0.1, 0.9], [0.6, 0.2, 0.1]])
    options = {"conf": 0.05, "iou": 0.7, "max_det": 300, "agnostic": False}
    end2end = postprocess(raw, [PLACEMENT], NAMES, end2end=True, **options)[0]
    nms = postprocess(_as_xywh(raw), [PLACEMENT], NAMES, **options)[0]
    assert sorted(end2end.class_id.tolist()) == sorted(nms.class_id.tolist()) == [0, 2]
    ours, theirs = np.argsort(-end2end.confidence), np.argsort(-nms.confidence)
    np.testing.assert_array_equal(end2end.class_id[ours], nms.class_id[theirs])
    np.testing.assert_allclose(end2end.xyxy[ours], nms.xyxy[theirs])
