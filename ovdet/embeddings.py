"""Text embeddings that know which embedding space they live in, and their ``.npz`` form."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmbeddingSpaceError, SourceError, VocabularyError

__all__ = ["Embeddings", "normalize"]


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

    Example:
        >>> e = Embeddings(["cat"], np.ones((1, 4)), "clip:ViT-B/32")
        >>> round(float(np.linalg.norm(e.vectors[0])), 3)
        1.0
    """

    names: tuple[str, ...]
    vectors: np.ndarray
    space: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(name) for name in self.names)
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise VocabularyError(f"embeddings must be a (classes, dim) array, got shape {vectors.shape}")
        if vectors.shape[0] != len(names):
            raise VocabularyError(f"expected one embedding per class name: {len(names)} names, {vectors.shape[0]} rows")
        if not np.isfinite(vectors).all():
            raise VocabularyError("embeddings contain NaN or infinity: re-encode the prompts")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "vectors", normalize(vectors))

    def __len__(self) -> int:
        return len(self.names)

    def require_space(self, space: str, where: str = "this detector") -> None:
        """Raise if these embeddings belong to another space than ``space``."""
        if self.space != space:
            raise EmbeddingSpaceError(
                f"embeddings are in space {self.space!r} but {where} expects {space!r}: "
                f"re-encode the classes with the {space} text encoder"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a ``.npz`` with names, vectors, space and meta; the file appears only once complete."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(
                handle,
                names=np.array(self.names, dtype=str),
                vectors=self.vectors,
                space=np.array(self.space),
                meta=np.array(json.dumps(self.meta)),
            )
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read embeddings written by :meth:`save` (or by ``ovdet embed``); no text model is needed."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"names", "vectors", "space"} - set(data.files)
                if missing:
                    raise SourceError(
                        f"{path} lacks {', '.join(sorted(missing))}: write it with Embeddings.save or `ovdet embed`"
                    )
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
                return cls(tuple(data["names"].tolist()), data["vectors"], str(data["space"]), meta)
        except FileNotFoundError as exc:
            raise SourceError(f"embeddings file {path} does not exist: check the path") from exc
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise SourceError(f"{path} is not a readable .npz embeddings file ({exc}): re-create it") from exc

    def subset(self, names: Sequence[str]) -> Embeddings:
        """The rows for ``names``, in that order."""
        index = {name: i for i, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise VocabularyError(f"no embedding for {', '.join(missing)}; available: {', '.join(self.names)}")
        rows = [index[name] for name in names]
        return Embeddings(tuple(names), self.vectors[rows], self.space, dict(self.meta))
