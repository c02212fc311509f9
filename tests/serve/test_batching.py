"""The batcher on its own: who shares a forward pass, whose result is whose, and what a full queue does."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import supervision as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from ovdet.core.config import InferenceSettings
from ovdet.prompts.vocabulary import Vocabulary
from ovdet.serve.batching import Batcher, QueueFull
from ovdet.serve.encoding import Prepared, vocabulary_key

SETTINGS = InferenceSettings(imgsz=160)


class RecordingDetector:
    """Answers each image with one box whose confidence is the image's first pixel / 255; records every call."""

    def __init__(self) -> None:
        self.vocabulary_version = 0
        self.classes: tuple[str, ...] = ()
        self.calls: list[tuple[tuple[str, ...], int, float]] = []
        self.gate = threading.Event()
        self.gate.set()

    def set_classes(self, vocabulary: Vocabulary) -> None:
        self.classes = vocabulary.names
        self.vocabulary_version += 1

    def detect_arrays(self, images, settings) -> list[sv.Detections]:
        self.gate.wait(30)
        self.calls.append((self.classes, len(images), settings.conf))
        return [
            sv.Detections(
                np.array([[0, 0, 1, 1]], float), confidence=np.array([image[0, 0, 0] / 255]),
                class_id=np.array([0]), data={"class_name": np.array([self.classes[0]])},
            )
            for image in images
        ]  # fmt: skip


def prepared(*names: str) -> Prepared:
    """Classes as the encoder hands them over (the recording detector takes the vocabulary itself)."""
    vocabulary = Vocabulary.from_names(names)
    return Prepared(vocabulary_key(vocabulary), vocabulary, vocabulary)


def image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["cat", "dog"]), st.sampled_from([0.1, 0.2]), st.integers(0, 255)),
                min_size=1, max_size=24))  # fmt: skip
def test_each_caller_gets_its_own_result_from_a_pass_of_its_own_kind(requests):
    detector = RecordingDetector()
    detector.gate.clear()  # everything queues up first, so the batcher has to sort it out
    batcher = Batcher(detector, max_batch=4, max_wait_s=0.01, queue_size=len(requests)).start()
    try:
        futures = [
            batcher.submit([image(value)], prepared(name), SETTINGS.replace(conf=conf))
            for name, conf, value in requests
        ]
        detector.gate.set()
        results = [future.result(timeout=30) for future in futures]
    finally:
        batcher.stop()
    for (name, _conf, value), (detections,) in zip(requests, results):
        assert detections.data["class_name"].tolist() == [name]
        assert detections.confidence[0] == pytest.approx(value / 255)
    assert sum(size for _, size, _ in detector.calls) == len(requests)
    assert all(size <= 4 for _, size, _ in detector.calls)


def test_a_full_queue_refuses_at_once_and_the_queue_drains():
    detector = RecordingDetector()
    detector.gate.clear()
    batcher = Batcher(detector, max_batch=1, max_wait_s=0, queue_size=2).start()
    cats = prepared("cat")
    try:
        first = batcher.submit([image(1)], cats, SETTINGS)
        while batcher.waiting:  # the worker took the first request, and waits at the gate
            threading.Event().wait(0.01)
        queued = [batcher.submit([image(2)], cats, SETTINGS), batcher.submit([image(3)], cats, SETTINGS)]
        with pytest.raises(QueueFull):
            batcher.submit([image(4)], cats, SETTINGS)
        detector.gate.set()
        assert [f.result(timeout=30)[0].confidence[0] * 255 for f in (first, *queued)] == pytest.approx([1, 2, 3])
    finally:
        batcher.stop()


def test_a_cancelled_request_is_never_inferred():
    detector = RecordingDetector()
    detector.gate.clear()
    batcher = Batcher(detector, max_batch=1, max_wait_s=0, queue_size=4).start()
    cats = prepared("cat")
    try:
        first = batcher.submit([image(1)], cats, SETTINGS)
        given_up = batcher.submit([image(2)], cats, SETTINGS)
        assert given_up.cancel()
        last = batcher.submit([image(3)], cats, SETTINGS)
        detector.gate.set()
        first.result(timeout=30), last.result(timeout=30)
    finally:
        batcher.stop()
    assert [size for _, size, _ in detector.calls] == [1, 1]
