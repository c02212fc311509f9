"""The exported ONNX text tower (CLIP's, or YOLOE's MobileCLIP) run without PyTorch: prompts tokenized by
:mod:`ovdet.prompts.tokenizer` with the merges file beside the tower, encoded by onnxruntime or OpenVINO.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

import numpy as np

from ..core.environment import import_onnxruntime
from ..core.errors import ConfigError, WeightsError, missing_dependency
from ..prompts.embeddings import normalize
from ..prompts.spaces import embedding_space
from ..prompts.tokenizer import ClipTokenizer
from .artifact import ArtifactMetadata, load_graph
from .registry import text_runtimes

__all__ = ["OnnxTextEncoder"]

TEXT_RUNTIMES = text_runtimes()


class OnnxTextEncoder:
    """The exported CLIP text tower, run by onnxruntime or OpenVINO; loaded on first use.

    Args:
        model_path: ONNX text tower (``input_ids`` (N, 77) int64 in, (N, D) features out).
        vocab_path: CLIP's byte-pair merges file.
        cache_key: Embedding-cache key of the encoder it was exported from (same weights, same key).
        space: Embedding space it produces.
        runtime: ``"onnxruntime"``, ``"openvino"`` or ``"auto"`` (onnxruntime if installed, else OpenVINO).
        context_length: Tokens per prompt; by default the space's.

    Example:
        >>> encoder = OnnxTextEncoder.from_artifact(folder, metadata)  # doctest: +SKIP
        >>> encoder.encode(["red backpack"]).shape  # doctest: +SKIP
        (1, 512)
    """

    batch_size = 256

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        vocab_path: str | os.PathLike[str],
        cache_key: str,
        space: str,
        runtime: str = "auto",
        context_length: int | None = None,
    ) -> None:
        if runtime not in TEXT_RUNTIMES:
            raise ConfigError(f"unknown text runtime {runtime!r}: use {', '.join(TEXT_RUNTIMES)}")
        self.model_path = Path(model_path)
        self.vocab_path = Path(vocab_path)
        self.cache_key = cache_key
        self.space = space
        self.runtime = runtime
        self.context_length = context_length or embedding_space(space).context_length
        self._tokenizer: ClipTokenizer | None = None
        self._run: Callable[[np.ndarray], np.ndarray] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_artifact(cls, folder: Path, metadata: ArtifactMetadata, runtime: str = "auto") -> OnnxTextEncoder:
        """The text encoder described by an artifact's metadata."""
        if metadata.text_encoder is None:
            raise WeightsError(f"the export in {folder} has no text encoder: re-export it with --dynamic-vocab")
        tower = metadata.text_encoder
        return cls(
            folder / tower.model_file,
            folder / tower.vocab_file,
            tower.cache_key,
            metadata.embedding_space,
            runtime,
            tower.context_length,
        )

    @property
    def loaded(self) -> bool:
        """Whether the text tower is in memory."""
        return self._run is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        tokenizer, run = self._load()
        ids = tokenizer(list(texts))
        rows = [run(ids[start : start + self.batch_size]) for start in range(0, len(ids), self.batch_size)]
        return normalize(np.concatenate(rows, axis=0))

    def _load(self) -> tuple[ClipTokenizer, Callable[[np.ndarray], np.ndarray]]:
        with self._lock:
            if self._run is None:
                self._tokenizer = ClipTokenizer(self.vocab_path, self.context_length)
                self._run = _open_text_tower(self.model_path, self.runtime)
        return self._tokenizer, self._run


def _open_text_tower(path: Path, runtime: str) -> Callable[[np.ndarray], np.ndarray]:
    if not path.is_file():
        raise WeightsError(f"text encoder {path} does not exist: copy the whole export folder or re-export")
    if runtime == "auto":
        runtime = "openvino" if not _importable("onnxruntime") and _importable("openvino") else "onnxruntime"
    return _openvino_runner(path) if runtime == "openvino" else _onnxruntime_runner(path)


def _onnxruntime_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    try:
        onnxruntime = import_onnxruntime()
    except ImportError as exc:
        raise missing_dependency("onnxruntime", "onnx", "encoding prompts with the exported text tower") from exc
    session = load_graph(
        path, "onnxruntime", lambda: onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    )
    return lambda ids: session.run(None, {"input_ids": ids})[0]


def _openvino_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import openvino
    except ImportError as exc:
        raise missing_dependency("openvino", "openvino", "encoding prompts with the exported text tower") from exc
    # FP32 keeps the embeddings equal to PyTorch's; OpenVINO would pick BF16 on CPUs that have it
    compiled = load_graph(
        path, "openvino", lambda: openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    )
    return lambda ids: compiled(ids)[0]


def _importable(module: str) -> bool:
    try:
        import_module(module)
    except ImportError:
        return False
    return True
