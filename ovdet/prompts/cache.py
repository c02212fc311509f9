"""On-disk cache of prompt embeddings, keyed by encoder, weights SHA-256 and prompt.

One ``.npy`` file per prompt under ``$OVDET_CACHE_DIR/embeddings``, written atomically, with an in-memory layer
in front, so a warm ``set_classes`` touches neither the text model nor (after the first time) the disk.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import OutputError
from ..core.files import write_atomically
from ..core.weights import cache_dir
from .spaces import TextEncoder

__all__ = ["EmbeddingCache", "encode_cached"]

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Prompt → vector store for one process, backed by files shared between processes.

    Args:
        root: Folder of the cache files; default ``$OVDET_CACHE_DIR/embeddings``.

    Example:
        >>> cache = EmbeddingCache()  # doctest: +SKIP
        >>> cache.get_many("clip:ViT-B/32@abc", ["cat"])  # doctest: +SKIP
        {}
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"
        self._memory: dict[str, np.ndarray] = {}

    def get_many(self, encoder_key: str, prompts: Iterable[str]) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``prompts``; missing prompts are simply absent."""
        found = {}
        for prompt in prompts:
            key = self._key(encoder_key, prompt)
            vector = self._memory.get(key)
            if vector is None:
                vector = self._read(key)
            if vector is not None:
                self._memory[key] = vector
                found[prompt] = vector
        return found

    def put_many(self, encoder_key: str, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors; a cache folder that cannot be written only costs a re-encode later."""
        for prompt, vector in vectors.items():
            key = self._key(encoder_key, prompt)
            self._memory[key] = np.asarray(vector, dtype=np.float32)
            self._write(key, self._memory[key])

    @staticmethod
    def _key(encoder_key: str, prompt: str) -> str:
        return hashlib.sha256(f"{encoder_key}\0{prompt}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def _read(self, key: str) -> np.ndarray | None:
        try:
            return np.load(self._path(key), allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s (%s)", self._path(key), exc)
            return None

    def _write(self, key: str, vector: np.ndarray) -> None:
        path = self._path(key)
        buffer = io.BytesIO()
        np.save(buffer, vector)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically([(path, buffer.getvalue())], sync=False)
        except (OSError, OutputError) as exc:
            log.warning("could not write the embedding cache at %s (%s)", self.root, exc)


def encode_cached(encoder: TextEncoder, cache: EmbeddingCache, prompts: Sequence[str]) -> np.ndarray:
    """Embed prompts, encoding only those not in ``cache``: ``(N, D)`` float32 rows in the order given.

    When every prompt is cached the encoder's model is never loaded.
    """
    key = encoder.cache_key
    found = cache.get_many(key, prompts)
    missing = [prompt for prompt in dict.fromkeys(prompts) if prompt not in found]
    if missing:
        fresh = dict(zip(missing, encoder.encode(missing)))
        cache.put_many(key, fresh)
        found.update(fresh)
    return np.stack([found[prompt] for prompt in prompts])
