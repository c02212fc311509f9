"""The class encoder on its own: the limit an export's slots set, the warm-up classes that fill every slot a
request may use (so a converted .pt converts once, at start), one encoding shared by requests asking alike."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ovdet.prompts.vocabulary import Vocabulary
from ovdet.serve.encoding import ClassEncoder, TooManyClasses


class CountingDetector:
    """The text side of a detector: counts encodings; ``gate`` holds them."""

    def __init__(self, slots: int | None = None) -> None:
        self.backend = SimpleNamespace(fixed_classes=None, max_classes=slots, space="clip:ViT-B/32")
        self.encoded: list[tuple[str, ...]] = []
        self.gate = threading.Event()
        self.gate.set()

    def embed_vocabulary(self, vocabulary: Vocabulary):
        self.gate.wait(30)
        self.encoded.append(vocabulary.names)
        return vocabulary


@pytest.mark.parametrize(("slots", "flag", "limit"), [(None, 128, 128), (16, 128, 16), (256, 100, 100)])
def test_an_exports_slots_lower_the_limit(slots, flag: int, limit: int):
    encoder = ClassEncoder(CountingDetector(slots), flag)
    try:
        assert encoder.max_classes == limit
        warm = encoder.warm_up_classes().result(30)
        assert len(warm.classes) == limit, "the warm-up fills every slot a request may use"
        with pytest.raises(TooManyClasses, match=f"limit of {limit}"):
            encoder.check(Vocabulary.from_names([f"c{i}" for i in range(limit + 1)]))
    finally:
        encoder.stop()


def test_requests_asking_alike_share_one_encoding_and_it_is_kept():
    detector = CountingDetector()
    detector.gate.clear()
    encoder = ClassEncoder(detector, 16)
    try:
        cats = [encoder.prepare(Vocabulary.from_names(["cat", "dog"])) for _ in range(5)]
        detector.gate.set()
        assert len({future.result(30).key for future in cats}) == 1
        assert encoder.prepare(Vocabulary.from_names(["cat", "dog"])).done()
    finally:
        encoder.stop()
    assert detector.encoded == [("cat", "dog")]


def test_too_many_prompts_are_refused_before_encoding():
    detector = CountingDetector()
    encoder = ClassEncoder(detector, 2)
    phrasings = Vocabulary.from_names(["cat"])
    many = Vocabulary(classes=tuple(phrasings.classes), templates=tuple(f"{{}} number {i}" for i in range(64)))
    try:
        with pytest.raises(TooManyClasses, match="prompts"):
            encoder.prepare(many)
    finally:
        encoder.stop()
    assert detector.encoded == []
