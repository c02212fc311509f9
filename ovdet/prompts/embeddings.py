"""Text embeddings that know which embedding space they live in and which vocabulary they encode, and their
``.npz`` form."""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..core.errors import EmbeddingSpaceError, SourceError, VocabularyError
from ..core.files import write_atomically
from .spaces import SPACES
from .vocabulary import Vocabulary
from .vocabulary_yaml import parse_vocabulary_yaml

__all__ = ["MAX_NPZ_BYTES", "Embeddings", "normalize"]

MAX_NPZ_BYTES = 256 << 20  # uncompressed: 100 000 classes of 512 floats fit; a zip bomb does not


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows, as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass(frozen=True, eq=False)
class Embeddings:
    """One L2-normalised vector per class, tagged with the space that produced it.

    Attributes:
        names: Class names, one per row.
        vectors: ``(K, D)`` float32 array.
        space: Embedding space, e.g. ``"clip:ViT-B/32"``; detectors refuse other spaces.
        meta: Extra JSON-serialisable information that travels with the ``.npz`` file.
        vocabulary: The vocabulary the rows encode (``ovdet embed``'s): its classes first, then decoy and
            background rows; ``None``: one class per row, named by ``names``.

    Example:
        >>> e = Embeddings(["cat"], np.ones((1, 4)), "clip:ViT-B/32")
        >>> round(float(np.linalg.norm(e.vectors[0])), 3)
        1.0
    """

    names: tuple[str, ...]
    vectors: np.ndarray
    space: str
    meta: dict[str, Any] = field(default_factory=dict)
    vocabulary: Vocabulary | None = None

    def __post_init__(self) -> None:
        names = tuple(str(name) for name in self.names)
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise VocabularyError(f"embeddings must be a (classes, dim) array, got shape {vectors.shape}")
        if vectors.shape[0] != len(names):
            raise VocabularyError(f"expected one embedding per class name: {len(names)} names, {vectors.shape[0]} rows")
        if not np.isfinite(vectors).all():
            raise VocabularyError("embeddings contain NaN or infinity: re-encode the prompts")
        zero = np.flatnonzero(~np.abs(vectors).any(axis=1)) if vectors.size else []
        if len(zero):
            raise VocabularyError(
                f"the embedding of {names[zero[0]][:60]!r} (row {zero[0] + 1}) is all zeros, which matches nothing: "
                f"re-encode the prompts"
            )
        if self.vocabulary is not None and names[: len(self.vocabulary.classes)] != self.vocabulary.names:
            raise VocabularyError("its class rows do not match the vocabulary stored in it: re-run ovdet embed")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "vectors", normalize(vectors))

    def __len__(self) -> int:
        return len(self.names)

    def as_vocabulary(self) -> Vocabulary:
        """The vocabulary the rows encode: :attr:`vocabulary`, else one class per row named by ``names``."""
        return self.vocabulary if self.vocabulary is not None else Vocabulary.from_names(self.names)

    def require_space(self, space: str, where: str = "this detector") -> None:
        """Raise if these embeddings belong to another space than ``space``, or have another width than its."""
        if self.space != space:
            raise EmbeddingSpaceError(
                f"embeddings are in space {self.space!r} but {where} expects {space!r}: "
                f"re-encode the classes with the {space} text encoder (ovdet embed --space {space})"
            )
        _check_width(self.vectors, space)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a ``.npz`` of plain arrays; the file appears only once complete.

        It holds ``names``, ``vectors``, ``space`` and ``meta`` (JSON); with a vocabulary (from ``ovdet embed``)
        also its class table, per row ``reported`` (bool), ``thresholds`` (NaN: the global conf) and ``colors``
        (``""``: the palette's), and the ``vocabulary`` itself as JSON (phrasings, templates, decoys).
        """
        path = Path(path)
        arrays = {
            "names": np.array(self.names, dtype=str),
            "vectors": self.vectors,
            "space": np.array(self.space),
            "meta": np.array(json.dumps(self.meta)),
        }
        if self.vocabulary is not None:
            arrays.update(_class_arrays(self.names, self.vocabulary))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomically([(path, buffer.getvalue())])
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read embeddings written by :meth:`save` (or by ``ovdet embed``); no text model is needed.

        Nothing is unpickled; every array is checked (text names, finite non-zero numeric vectors of the space's
        width, JSON meta, the stored vocabulary as strictly as a vocabulary file) and any failure is one line naming
        the file. Files written before the class table was stored hold the vocabulary inside ``meta``.
        """
        path = Path(path)
        arrays = _read_npz(path)
        try:
            names, vectors, space = _names(arrays), _vectors(arrays), _text(arrays["space"], "space")
            meta = _json_object(arrays, "meta")
            stored = _json_object(arrays, "vocabulary") if "vocabulary" in arrays else meta.pop("vocabulary", None)
            vocabulary = None if stored is None else _stored_vocabulary(stored)
            embeddings = cls(names, vectors, space, meta, vocabulary)
            _check_width(embeddings.vectors, embeddings.space)
        except VocabularyError as exc:
            raise VocabularyError(f"{path}: {exc}") from None
        return embeddings


_NPZ_ARRAYS = ("names", "vectors", "space", "meta", "vocabulary")
# What numpy and zipfile raise on damaged, encrypted, oddly compressed or absurdly shaped archives.
_UNREADABLE = (OSError, ValueError, EOFError, MemoryError, RuntimeError, zlib.error, zipfile.BadZipFile)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (never unpickled; at most :data:`MAX_NPZ_BYTES` uncompressed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(info.file_size for info in archive.infolist())
        if size > MAX_NPZ_BYTES:
            raise SourceError(
                f"{path} unpacks to {size >> 20} MiB, over the {MAX_NPZ_BYTES >> 20} MiB an embeddings file may "
                f"hold: re-create it with ovdet embed"
            )
        with np.load(path, allow_pickle=False) as data:
            missing = {"names", "vectors", "space"} - set(data.files)
            if missing:
                raise SourceError(
                    f"{path} lacks {', '.join(sorted(missing))}: write it with Embeddings.save or `ovdet embed`"
                )
            arrays = {name: data[name] for name in _NPZ_ARRAYS if name in data.files}
    except FileNotFoundError as exc:
        raise SourceError(f"embeddings file {path} does not exist: check the path") from exc
    except _UNREADABLE as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SourceError(f"{path} is not a readable .npz embeddings file ({reason}): re-create it") from None
    foreign = [name for name, array in arrays.items() if not isinstance(array, np.ndarray)]  # NpzFile gives bytes
    if foreign:
        raise SourceError(f"{path} is not a readable .npz embeddings file ({foreign[0]} is not an array): re-create it")
    return arrays


def _names(arrays: dict[str, np.ndarray]) -> tuple[str, ...]:
    names = arrays["names"]
    if names.dtype.kind != "U" or names.ndim != 1 or not len(names):
        raise VocabularyError(
            f"names must be a non-empty list of text, got a {names.dtype} array of shape {names.shape}: "
            f"re-create the file with ovdet embed"
        )
    return tuple(names.tolist())


def _vectors(arrays: dict[str, np.ndarray]) -> np.ndarray:
    vectors = arrays["vectors"]
    if vectors.dtype.kind not in "fiu":
        raise VocabularyError(f"vectors are of type {vectors.dtype}, not numbers: re-create the file with ovdet embed")
    return vectors


def _text(array: np.ndarray, what: str) -> str:
    if array.dtype.kind != "U" or array.ndim != 0:
        raise VocabularyError(f"{what} must be one text, got a {array.dtype} array of shape {array.shape}")
    return str(array)


def _class_arrays(names: tuple[str, ...], vocabulary: Vocabulary) -> dict[str, np.ndarray]:
    """The class table's rows as plain arrays: the classes come first, then decoy and background rows."""
    dropped = len(names) - len(vocabulary.classes)
    return {
        "reported": np.arange(len(names)) < len(vocabulary.classes),
        "thresholds": np.array([c.conf for c in vocabulary.classes] + [None] * dropped, dtype=np.float64),
        "colors": np.array([c.color or "" for c in vocabulary.classes] + [""] * dropped, dtype=str),
        "vocabulary": np.array(json.dumps(vocabulary.to_dict())),
    }


def _stored_vocabulary(stored: dict[str, Any]) -> Vocabulary:
    """The stored object, written out as YAML, is checked by the same strict reader as a vocabulary file (YAML's
    block form: JSON's flow form allows no key over 1024 characters)."""
    text = yaml.safe_dump(stored, sort_keys=False, allow_unicode=True)
    return parse_vocabulary_yaml(text, "its stored vocabulary")


def _json_object(arrays: dict[str, np.ndarray], what: str) -> dict[str, Any]:
    if what not in arrays:
        return {}
    try:
        value = json.loads(_text(arrays[what], what))
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise VocabularyError(f"{what} is not a JSON object: re-create the file with ovdet embed")
    return value


def _check_width(vectors: np.ndarray, space: str) -> None:
    width = SPACES[space].width if space in SPACES else None
    if width is not None and vectors.shape[1] != width:
        raise VocabularyError(
            f"embeddings are {vectors.shape[1]} wide, but space {space!r} has {width}: re-encode the classes"
        )
