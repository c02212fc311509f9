"""The class table: one typed row per embedding (a reported class, a decoy or background), built by :func:`embed`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cache import EmbeddingCache, encode_cached
from .embeddings import Embeddings, normalize
from .spaces import TextEncoder
from .vocabulary import Vocabulary

__all__ = ["ClassTable", "embed"]


@dataclass(frozen=True, eq=False)
class ClassTable:
    """What a detector detects, one row per embedding: the classes reported, then decoys and background.

    Attributes:
        vocabulary: The vocabulary as written (phrasings, templates, decoys).
        rows: The name of each row (``decoy:…`` and ``background`` for dropped rows).
        reported: Per row, whether its boxes are reported (``False``: a decoy or background, dropped).
        thresholds: Per row, its own confidence threshold, or ``None`` for the global ``conf``.
        colors: Per row, its hex colour, or ``None`` for the palette's.
        embeddings: The ``(rows, D)`` vectors and their space; ``None`` for a model exported with fixed classes.
    """

    vocabulary: Vocabulary
    rows: tuple[str, ...]
    reported: tuple[bool, ...]
    thresholds: tuple[float | None, ...]
    colors: tuple[str | None, ...]
    embeddings: Embeddings | None = None

    @classmethod
    def of(cls, vocabulary: Vocabulary, embeddings: Embeddings | None = None) -> ClassTable:
        """The table of ``vocabulary``, with ``embeddings`` as its vectors when there are any."""
        dropped = len(vocabulary.dropped)
        rows = embeddings.names if embeddings is not None else vocabulary.names + _dropped_rows(vocabulary)
        return cls(
            vocabulary,
            rows,
            (True,) * len(vocabulary.classes) + (False,) * dropped,
            tuple(c.conf for c in vocabulary.classes) + (None,) * dropped,
            tuple(c.color for c in vocabulary.classes) + (None,) * dropped,
            embeddings,
        )

    @classmethod
    def of_embeddings(cls, embeddings: Embeddings) -> ClassTable:
        """The table of the vocabulary ``embeddings`` encode (``ovdet embed``'s); plain rows are reported classes."""
        return cls.of(embeddings.as_vocabulary(), embeddings)

    @property
    def names(self) -> tuple[str, ...]:
        """The reported class names, in class-id order."""
        return self.vocabulary.names

    @property
    def vectors(self) -> np.ndarray | None:
        return None if self.embeddings is None else self.embeddings.vectors

    @property
    def space(self) -> str | None:
        return None if self.embeddings is None else self.embeddings.space

    def class_thresholds(self, default: float) -> np.ndarray:
        """Each reported class's confidence threshold, ``default`` where it sets none."""
        limits = [default if conf is None else conf for conf, shown in zip(self.thresholds, self.reported) if shown]
        return np.array(limits, dtype=np.float32)


def embed(vocabulary: Vocabulary, encoder: TextEncoder, cache: EmbeddingCache) -> ClassTable:
    """The class table of ``vocabulary``: each row the normalised mean of its normalised prompt embeddings.

    Prompts found in ``cache`` are not encoded again; when all are cached, ``encoder`` loads no model.
    """
    rows = vocabulary.row_prompts()
    unique = list(dict.fromkeys(prompt for row in rows for prompt in row))
    vectors = dict(zip(unique, normalize(encode_cached(encoder, cache, unique))))
    means = np.stack([np.mean([vectors[p] for p in row], axis=0) for row in rows])
    names = vocabulary.names + _dropped_rows(vocabulary)
    embeddings = Embeddings(names, normalize(means), encoder.space, vocabulary=vocabulary)
    return ClassTable.of(vocabulary, embeddings)


def _dropped_rows(vocabulary: Vocabulary) -> tuple[str, ...]:
    return tuple(f"decoy:{d}" for d in vocabulary.decoys) + tuple("background" for _ in vocabulary.background)
