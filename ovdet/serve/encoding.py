"""Class encoding on its own thread: the batch loop only swaps ready embeddings in, so new words never hold it.

A request's classes are counted before anything is encoded: more rows (classes and decoys) than ``max_classes``,
or more distinct prompts than ``PROMPTS_PER_CLASS`` times that, is refused at once. What passes is encoded by one
worker thread through the detector's embedding cache; requests asking for the same classes share one encoding,
and the last ``KEEP`` results stay in memory.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..core.errors import OvdetError
from ..prompts.embeddings import Embeddings
from ..prompts.spaces import SPACES
from ..prompts.vocabulary import Vocabulary

__all__ = ["DEFAULT_MAX_CLASSES", "ClassEncoder", "EncoderBusy", "Prepared", "TooManyClasses"]

DEFAULT_MAX_CLASSES = 128  # COCO's 80 with decoys; a converted .pt reserves this many slots once, at start
PROMPTS_PER_CLASS = 16  # phrasings × templates a class may average
KEEP = 64  # encoded vocabularies kept in memory: 64 × 128 × 512 floats = 16 MiB at most


class TooManyClasses(OvdetError, ValueError):
    """A vocabulary with more classes or prompts than the server encodes for one request."""


class EncoderBusy(OvdetError, RuntimeError):
    """As many different vocabularies wait to be encoded as the server allows: try again shortly."""


@dataclass(frozen=True)
class Prepared:
    """A vocabulary ready for the model: ``classes`` is what ``detector.set_classes`` takes (embeddings, or the
    vocabulary itself for a model exported with fixed classes); ``key`` tells vocabularies apart."""

    key: str
    vocabulary: Vocabulary
    classes: Embeddings | Vocabulary


def vocabulary_key(vocabulary: Vocabulary) -> str:
    text = json.dumps(vocabulary.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ClassEncoder:
    """Counts, encodes and keeps vocabularies for one detector.

    Args:
        detector: The server's detector; this object calls only its text side (``embed_vocabulary``).
        max_classes: Most rows (classes and decoys) one request may ask for; an export with fewer slots lowers it.
        max_pending: Most different vocabularies waiting to be encoded; more raise :class:`EncoderBusy`.

    Example:
        >>> encoder = ClassEncoder(detector, max_classes=128, max_pending=64)  # doctest: +SKIP
        >>> encoder.prepare(Vocabulary.from_names(["cat"])).result().key  # doctest: +SKIP
        '5f1c…'
    """

    def __init__(self, detector, max_classes: int = DEFAULT_MAX_CLASSES, max_pending: int = 64) -> None:
        self.detector = detector
        slots = getattr(getattr(detector, "backend", None), "max_classes", None)
        self.max_classes = min(max_classes, slots) if slots else max_classes
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Future] = OrderedDict()
        self._pending = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ovdet-encoder")

    def check(self, vocabulary: Vocabulary) -> None:
        """Refuse a vocabulary that costs more than one request may.

        Raises:
            TooManyClasses: more rows than ``max_classes``, or more distinct prompts than allowed.
        """
        rows = len(vocabulary.names) + len(vocabulary.dropped)
        if rows > self.max_classes:
            raise TooManyClasses(
                f"{rows} classes (decoys included) are more than this server's limit of {self.max_classes} per "
                f"request: send fewer, or start the server with a larger --max-classes"
            )
        prompts = len({prompt for row in vocabulary.row_prompts() for prompt in row})
        if prompts > self.max_classes * PROMPTS_PER_CLASS:
            raise TooManyClasses(
                f"{prompts} prompts (phrasings × templates) are more than this server's limit of "
                f"{self.max_classes * PROMPTS_PER_CLASS} per request: use fewer phrasings or templates"
            )

    def check_body(self, body: bytes, name: str) -> None:
        """Refuse a vocabulary file too long to hold ``max_classes`` classes, before parsing it (a megabyte of YAML
        takes seconds to parse).

        Raises:
            TooManyClasses: more lines and commas than the classes allowed could take.
        """
        entries = body.count(b"\n") + body.count(b",")
        if entries > self.max_classes * (PROMPTS_PER_CLASS + 4):
            raise TooManyClasses(
                f"vocabulary {name} has {entries} lines and commas, more than {self.max_classes} classes (this "
                f"server's limit) could take: send fewer classes, or start the server with a larger --max-classes"
            )

    def prepare(self, vocabulary: Vocabulary) -> Future:
        """A future of the :class:`Prepared` vocabulary; done at once when it was encoded lately.

        Raises:
            TooManyClasses: see :meth:`check`.
            EncoderBusy: too many different vocabularies wait to be encoded.
        """
        self.check(vocabulary)
        key = vocabulary_key(vocabulary)
        with self._lock:
            future = self._kept.get(key)
            if future is not None and not _failed(future):
                self._kept.move_to_end(key)
                return future
            if self._pending >= self.max_pending:
                raise EncoderBusy("the server is busy encoding other classes: retry shortly")
            self._pending += 1
            future = self._executor.submit(self._encode, key, vocabulary)
            self._kept[key] = future
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)
        return future

    def warm_up_classes(self) -> Future:
        """A future of classes that fill every slot a request may use (random vectors), to warm the model up with:
        a converted ``.pt`` converts for that many slots now, so no request later waits for a conversion. Encoding
        one word on the way loads the text model."""
        return self._executor.submit(self._dummy)

    def _dummy(self) -> Prepared:
        backend = self.detector.backend
        if backend.fixed_classes is not None:
            vocabulary = Vocabulary.from_names(backend.fixed_classes)
            return Prepared("warm-up", vocabulary, vocabulary)
        self.detector.embed_vocabulary(Vocabulary.from_names(["object"]))  # loads the text model before any request
        names = [f"warm-up {row}" for row in range(self.max_classes)]
        vectors = np.random.default_rng(0).standard_normal((self.max_classes, SPACES[backend.space].width))
        return Prepared("warm-up", Vocabulary.from_names(names), Embeddings(names, vectors, backend.space))

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _encode(self, key: str, vocabulary: Vocabulary) -> Prepared:
        try:
            if self.detector.backend.fixed_classes is not None:
                return Prepared(key, vocabulary, vocabulary)
            return Prepared(key, vocabulary, self.detector.embed_vocabulary(vocabulary))
        finally:
            with self._lock:
                self._pending -= 1


def _failed(future: Future) -> bool:
    return future.cancelled() or (future.done() and future.exception() is not None)
