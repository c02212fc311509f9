"""Vocabularies stored by name under the server's data folder, as the YAML files ``ovdet detect --vocab`` reads.

A name is a plain file stem (letters, digits, ``-``, ``_``, ``.``; no leading dot), so no name reaches outside
the folder. A body is checked by the same reader as a ``--vocab`` file before it is stored: a malformed one is
refused with the line at fault, one of more classes than a request may ask for is refused too, and what is stored
always loads. Writers (store, delete) take the store's lock, so clients racing on one name leave one whole file
or none; parsing happens before the lock, so a large body never holds up the others' writes.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ..core.errors import OvdetError, VocabularyError
from ..core.files import write_atomically
from ..prompts.vocabulary import Vocabulary
from ..prompts.vocabulary_yaml import MAX_VOCABULARY_BYTES, parse_vocabulary_yaml

__all__ = ["DEFAULT_VOCABULARY", "InvalidName", "UnknownVocabulary", "VocabularyStore"]

DEFAULT_VOCABULARY = "default"  # ovdet serve --vocab stores its file under this name; a request naming none uses it

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class InvalidName(OvdetError, ValueError):
    """A vocabulary name that is not a plain file stem."""


class UnknownVocabulary(OvdetError, LookupError):
    """No vocabulary of that name is stored."""


class VocabularyStore:
    """``<folder>/<name>.yaml`` files, written atomically, one writer at a time.

    Args:
        folder: Where the files are.
        limits: What a stored vocabulary may hold: ``limits.check_body(body, name)`` before parsing and
            ``limits.check(vocabulary)`` after (both raise); the server's class encoder. ``None``: no limit.

    Example:
        >>> store = VocabularyStore(Path("data/vocabularies"))  # doctest: +SKIP
        >>> store.put("ward", "classes: [infusion pump, IV pole]")  # doctest: +SKIP
        >>> store.load("ward").names  # doctest: +SKIP
        ('infusion pump', 'IV pole')
    """

    def __init__(self, folder: Path, limits=None) -> None:
        self.folder = folder
        self.limits = limits
        self._writing = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.yaml") if _NAME.fullmatch(path.stem))

    def put(self, name: str, body: bytes) -> Vocabulary:
        """Check ``body`` as a vocabulary and store it as ``name``; returns the vocabulary.

        Raises:
            InvalidName: ``name`` is not a plain file stem.
            VocabularyError: ``body`` is too large, not UTF-8, or not a valid vocabulary (the message names the line).
        """
        path = self._path(name)
        if len(body) > MAX_VOCABULARY_BYTES:
            raise VocabularyError(f"vocabulary {name} is over {MAX_VOCABULARY_BYTES >> 20} MiB: send a smaller one")
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = body.count(b"\n", 0, exc.start) + 1
            raise VocabularyError(f"vocabulary {name}:{line}: the body is not UTF-8: send it as UTF-8") from None
        if self.limits is not None:
            self.limits.check_body(body, name)
        vocabulary = parse_vocabulary_yaml(text, f"vocabulary {name}")
        if self.limits is not None:
            self.limits.check(vocabulary)
        with self._writing:
            write_atomically([(path, body)])
        return vocabulary

    def text(self, name: str) -> str:
        """The stored YAML, as it was sent."""
        path = self._existing(name)
        return path.read_text(encoding="utf-8-sig")

    def load(self, name: str) -> Vocabulary:
        return parse_vocabulary_yaml(self.text(name), f"vocabulary {name}")

    def delete(self, name: str) -> None:
        with self._writing:
            self._existing(name).unlink()

    def _existing(self, name: str) -> Path:
        path = self._path(name)
        if not path.is_file():
            raise UnknownVocabulary(f"no vocabulary named {name!r}: store it with PUT /v1/vocabularies/{name} first")
        return path

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or ".." in name:
            raise InvalidName(
                f"vocabulary name {name[:80]!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
                f"starting with a letter or digit"
            )
        return self.folder / f"{name}.yaml"
