"""The default CPU path: a .pt converted once to OpenVINO (changeable vocabulary), cached per weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovdet import ConfigError, OpenVocabDetector, models
from ovdet.runtimes.converted import ConvertedBackend, compiled_dir

CLASSES = ["bottle", "person", "red backpack"]


@pytest.fixture(scope="module")
def converted(model_path: Path) -> OpenVocabDetector:
    detector = OpenVocabDetector(model_path, device="cpu", runtime="openvino", imgsz=320)
    detector.set_classes(CLASSES)
    return detector


def test_auto_picks_openvino_on_the_cpu(model_path: Path, monkeypatch: pytest.MonkeyPatch, converted) -> None:
    monkeypatch.delenv("OVDET_RUNTIME")
    detector = OpenVocabDetector(model_path, device="cpu")
    assert isinstance(detector.backend, ConvertedBackend)
    assert (detector.backend.name, detector.backend.precision) == ("openvino", "fp32")
    monkeypatch.setenv("OVDET_RUNTIME", "torch")
    assert OpenVocabDetector(model_path, device="cpu").backend.name == "torch"
    with pytest.raises(ConfigError, match="unknown runtime 'tensorflow'"):
        OpenVocabDetector(model_path, runtime="tensorflow")


def test_matches_pytorch_within_export_tolerances(converted, session_detector, bottle_frames) -> None:
    session_detector.set_classes(CLASSES)
    for frame in bottle_frames[:2]:
        ours = converted.detect(frame, conf=0.01)
        reference = session_detector.detect(frame, conf=0.01, imgsz=320)
        assert len(ours) == len(reference) > 10
        order, reference_order = np.lexsort(ours.xyxy.T[::-1]), np.lexsort(reference.xyxy.T[::-1])
        np.testing.assert_allclose(ours.xyxy[order], reference.xyxy[reference_order], atol=1.0)
        np.testing.assert_allclose(ours.confidence[order], reference.confidence[reference_order], atol=1e-3)
        np.testing.assert_array_equal(ours.class_id[order], reference.class_id[reference_order])


def test_conversion_is_cached_and_new_classes_need_none(model_path: Path, converted, monkeypatch) -> None:
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "export_backend", no_conversion)
    detector = OpenVocabDetector(model_path, device="cpu", runtime="openvino")
    detector.set_classes(["forklift", "pallet", "helmet", "vest"])
    assert detector.classes == ("forklift", "pallet", "helmet", "vest")


def test_a_larger_vocabulary_converts_once_more_with_more_slots(model_path: Path, bottle_frames) -> None:
    backend = models.converted_backend(model_path, "openvino", device="cpu", slots=2)
    assert backend.slots == 2
    backend.set_vocabulary(np.eye(3, 512, dtype=np.float32))
    assert backend.slots == 4
    slot_counts = {p.name.rsplit("-", 1)[1] for p in compiled_dir().iterdir()}
    assert {"k2", "k4"} <= slot_counts
