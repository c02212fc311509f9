"""Vocabulary files: a YAML vocabulary or an ``.npz`` of precomputed embeddings (from ``ovdet embed``), read and
watched for edits while a stream runs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..core.errors import OvdetError, VocabularyError
from .embeddings import Embeddings
from .vocabulary import Vocabulary
from .vocabulary_yaml import read_vocabulary_yaml

__all__ = ["VocabularyWatcher", "load_vocabulary"]

log = logging.getLogger(__name__)


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary | Embeddings:
    """Read a vocabulary file: ``.yaml``/``.yml`` → :class:`Vocabulary`; ``.npz`` → :class:`Embeddings` (from
    ``ovdet embed``, needs no text model).

    A YAML file is read as plain data only (no tags, no aliases, at most 1 MiB: see
    :mod:`ovdet.prompts.vocabulary_yaml`); an ``.npz`` is read without unpickling, and its vectors and stored
    vocabulary are checked before any work. Every failure is one :class:`~ovdet.core.errors.VocabularyError` (or
    ``SourceError``) line naming the file.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        embeddings = Embeddings.load(path)
        try:
            embeddings.as_vocabulary()  # plain rows are classes: their names are checked as class names
        except VocabularyError as exc:
            raise VocabularyError(f"{path}: {exc}") from None
        return embeddings
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise VocabularyError(f"vocabulary {path} must be a .yaml (or .yml) file or an .npz from `ovdet embed`")
    return read_vocabulary_yaml(path)


class VocabularyWatcher:
    """Notices edits to a vocabulary file between frames (by modification time and size).

    An edit that cannot be used, for whatever reason (bad YAML, a refused tag, bytes that are not UTF-8, the file
    deleted or replaced mid-read), is reported in one warning and ignored: the running vocabulary stays.

    Example:
        >>> watcher = VocabularyWatcher("vocab.yaml")  # doctest: +SKIP
        >>> if (vocabulary := watcher.poll()) is not None:  # doctest: +SKIP
        ...     detector.set_classes(vocabulary)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def poll(self) -> Vocabulary | Embeddings | None:
        """The new vocabulary if the file changed since the last poll, else ``None``."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if stamp is None:
            log.warning("vocabulary %s was removed; keeping the current one until it is back", self.path)
            return None
        try:
            vocabulary = load_vocabulary(self.path)
            names = vocabulary.names if isinstance(vocabulary, Vocabulary) else vocabulary.as_vocabulary().names
        except OvdetError as exc:
            log.warning("ignoring the edited vocabulary, keeping the current one: %s", exc)
            return None
        except Exception as exc:  # a live edit, whatever went wrong with it, must never stop a running stream
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.warning("ignoring the edited vocabulary %s, keeping the current one: %s", self.path, reason)
            return None
        log.info("vocabulary %s changed: now %s", self.path, ", ".join(names))
        return vocabulary
