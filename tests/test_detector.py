"""OpenVocabDetector: classes, the embedding cache, detect() on every input kind, settings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from PIL import Image

from ovdet import ConfigError, ModelError, OpenVocabDetector, SourceError, VocabularyError, WeightsError
from ovdet.prompts.text import ClipTextEncoder
from tests import weights_fixtures


class CountingEncoder(ClipTextEncoder):
    """The real CLIP encoder, counting what it is asked to encode and whether it built a model."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.encoded: list[str] = []
        self.builds = 0

    def encode(self, texts):
        self.encoded.extend(texts)
        return super().encode(texts)

    def _build(self):
        self.builds += 1
        return super()._build()


@pytest.fixture
def fresh(model_path: Path, tmp_path: Path) -> OpenVocabDetector:
    return OpenVocabDetector(model_path, device="cpu", text_encoder=CountingEncoder(), cache_dir=tmp_path / "emb")


def test_detect_before_classes_is_a_clear_error(fresh: OpenVocabDetector, bottle_frames) -> None:
    with pytest.raises(ModelError, match="set_classes"):
        fresh.detect(bottle_frames[0])


def test_cache_miss_then_hit_loads_no_text_model(model_path: Path, tmp_path: Path) -> None:
    first = OpenVocabDetector(model_path, device="cpu", text_encoder=CountingEncoder(), cache_dir=tmp_path / "c")
    first.set_classes(["bottle", "cap"])
    assert first.text_encoder.encoded == ["bottle", "cap"] and first.text_encoder.builds == 1

    second = OpenVocabDetector(model_path, device="cpu", text_encoder=CountingEncoder(), cache_dir=tmp_path / "c")
    second.set_classes(["cap", "bottle"])
    assert second.text_encoder.builds == 0 and not second.text_encoder.loaded
    np.testing.assert_array_equal(second.embeddings.vectors, first.embeddings.vectors[::-1])

    second.set_classes(["bottle", "label", "cap"])  # only the new prompt is encoded
    assert second.text_encoder.encoded == ["label"]


def test_cache_key_includes_the_weights(model_path: Path, tmp_path: Path, clip_path: Path) -> None:
    other = tmp_path / "other-clip.pt"
    weights_fixtures.build_clip_checkpoint(other, fmt="open_clip", seed=1)
    one = OpenVocabDetector(model_path, device="cpu", text_encoder=ClipTextEncoder(clip_path), cache_dir=tmp_path)
    two = OpenVocabDetector(model_path, device="cpu", text_encoder=ClipTextEncoder(other), cache_dir=tmp_path)
    one.set_classes(["bottle"])
    two.set_classes(["bottle"])
    assert two.text_encoder.loaded
    assert not np.allclose(one.embeddings.vectors, two.embeddings.vectors)


def test_default_prompt_is_the_class_name(detector: OpenVocabDetector) -> None:
    expected = detector.text_encoder.encode(["bottle", "person", "red backpack"])
    np.testing.assert_allclose(detector.embeddings.vectors, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        pytest.param([], r'no classes given: pass at least one name, e\.g\. \["person"', id="empty"),
        pytest.param(["cat", "  "], "class 2 is blank", id="blank"),
        pytest.param(["Cat", "cat"], "duplicate", id="duplicate"),
        pytest.param("cat,dog", r"got the string 'cat,dog': pass \['cat,dog'\] or split it", id="string"),
        pytest.param("person", r"got the string 'person'", id="one-name-string"),
        pytest.param(b"person", r"got the string b'person'", id="bytes"),
        pytest.param(None, r"a Vocabulary or Embeddings, got None: pass e\.g\. \[", id="none"),
        pytest.param(42, "got 42", id="number"),
        pytest.param(["cat", 1], "class 2 is 1, not text", id="non-string"),
        pytest.param([None], "class 1 is None, not text", id="none-in-list"),
    ],
)
def test_bad_class_lists(session_detector: OpenVocabDetector, classes, message: str) -> None:
    with pytest.raises(VocabularyError, match=message) as raised:
        session_detector.set_classes(classes)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        pytest.param(lambda d: d.stream(None), SourceError, "cannot stream from None: pass a video", id="stream-none"),
        pytest.param(lambda d: d.stream(2.5), SourceError, "cannot stream from 2.5", id="stream-float"),
        pytest.param(lambda d: d.stream(True), SourceError, "cannot stream from True", id="stream-bool"),
        pytest.param(lambda d: d.set_embeddings(None), VocabularyError, "takes Embeddings, got None",
                     id="set-embeddings-none"),
        pytest.param(lambda d: d.detect(None), SourceError, "cannot read an image from a NoneType", id="detect-none"),
        pytest.param(lambda d: d.detect(42), SourceError, "cannot read an image from a int", id="detect-number"),
        pytest.param(lambda d: d.detect([None]), SourceError, "from a NoneType", id="detect-list-of-none"),
    ],
)  # fmt: skip
def test_public_entry_points_refuse_wrong_types_in_one_line(detector: OpenVocabDetector, call, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        call(detector)
    assert "\n" not in str(raised.value)


def test_long_prompt_is_truncated_with_a_warning(session_detector: OpenVocabDetector) -> None:
    long_prompt = "a very " * 60 + "red backpack"
    with pytest.warns(UserWarning, match="over the limit of 77"):
        session_detector.set_classes([long_prompt])
    assert session_detector.classes == (long_prompt.strip(),)


def test_every_input_kind_gives_the_same_boxes(detector: OpenVocabDetector, bottle_frames, tmp_path: Path) -> None:
    frame = bottle_frames[0]
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), frame)
    pil = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    results = [detector.detect(source, conf=0.01) for source in (frame, path, str(path), pil)]
    assert len(results[0]) > 10
    for other in results[1:]:
        np.testing.assert_array_equal(other.xyxy, results[0].xyxy)
        np.testing.assert_array_equal(other.class_id, results[0].class_id)


def test_detections_are_in_original_pixels_with_names(detector: OpenVocabDetector, bottle_frames) -> None:
    frame = bottle_frames[1]
    detections = detector.detect(frame, conf=0.01)
    height, width = frame.shape[:2]
    assert isinstance(detections, sv.Detections)
    assert (detections.xyxy[:, [0, 2]] <= width).all() and (detections.xyxy[:, [1, 3]] <= height).all()
    assert (detections.xyxy >= 0).all() and (detections.confidence > 0.01).all()
    assert set(detections.data["class_name"]) <= {"bottle", "person", "red backpack"}
    names = np.array(detector.classes)[detections.class_id]
    np.testing.assert_array_equal(names, detections.data["class_name"])


def test_a_list_is_one_batch_with_per_image_results(detector: OpenVocabDetector, bottle_frames) -> None:
    batch = detector.detect(bottle_frames[:3], conf=0.01)
    assert isinstance(batch, list) and len(batch) == 3
    for frame, result in zip(bottle_frames[:3], batch):
        single = detector.detect(frame, conf=0.01)
        np.testing.assert_allclose(result.xyxy, single.xyxy, atol=1e-3)
        np.testing.assert_allclose(result.confidence, single.confidence, atol=1e-5)


def test_settings_change_the_result(detector: OpenVocabDetector, bottle_frames) -> None:
    frame = bottle_frames[2]
    loose = detector.detect(frame, conf=0.01)
    assert len(detector.detect(frame, conf=0.01, max_det=5)) == 5
    assert len(detector.detect(frame, conf=0.9)) < len(loose)
    assert len(detector.detect(frame, conf=0.01, agnostic_nms=True)) < len(loose)  # overlaps across classes go
    smaller = detector.detect(frame, conf=0.01, imgsz=320)
    assert len(smaller) != len(loose) and smaller.xyxy.shape[1] == 4  # another input size, other boxes
    with pytest.raises(ConfigError, match="conf must be a number in"):
        detector.detect(frame, conf=1.5)
    with pytest.raises(ConfigError, match="multiple of 32"):
        detector.detect(frame, imgsz=650)
    with pytest.raises(ConfigError, match="unknown setting"):
        detector.detect(frame, confidence=0.3)


def test_plain_yolov8_and_corrupt_checkpoints_are_refused(tmp_path: Path) -> None:
    plain = weights_fixtures.build_plain_yolov8_checkpoint(tmp_path / "yolov8n.pt")
    with pytest.raises(WeightsError, match="not a YOLO-World model"):
        OpenVocabDetector(plain, device="cpu")
    corrupt = tmp_path / "broken.pt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable Ultralytics checkpoint"):
        OpenVocabDetector(corrupt, device="cpu")


def test_unavailable_cuda_is_reported(model_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        OpenVocabDetector(model_path, device="cuda")
