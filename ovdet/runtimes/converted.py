"""A ``.pt`` run by OpenVINO or onnxruntime through a changeable-vocabulary conversion, made once and cached.

This layer knows where conversions live, what tells them apart and when one is needed; how to convert is given
to it as a function (:func:`ovdet.models.load_backend` passes the exporter). The graph has a fixed number of class
slots; a vocabulary that needs more converts once more with twice the slots, and since the class embeddings are
an input of the graph, changing the classes needs no new conversion.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import SourceError
from ..core.weights import cache_dir, file_sha256
from ..prompts.spaces import TextEncoder
from ..prompts.text import text_encoder_for
from .artifact import METADATA_FILE
from .backend import Backend
from .exported import load_exported
from .registry import runtime_named

__all__ = ["DEFAULT_SLOTS", "ConversionCache", "Convert", "ConvertedBackend", "compiled_dir"]

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 80

Convert = Callable[[Path, int], None]
"""Writes the conversion with this many class slots into this folder, which appears only once complete."""


def compiled_dir() -> Path:
    """Where converted models are kept: ``$OVDET_COMPILED_DIR``, else ``<ovdet cache>/compiled``."""
    return Path(os.environ.get("OVDET_COMPILED_DIR") or cache_dir() / "compiled").expanduser()


class ConversionCache:
    """The cached conversions of one ``.pt`` for one runtime: one folder per class-slot count.

    A folder is named by the weights file's name and SHA-256, the runtime, the slots and what else changes the
    graph: the content of an INT8 calibration source (and its frame count), and a segmentation checkpoint
    converted without its mask branch.

    Args:
        weights: The YOLO-World or YOLOE ``.pt`` file.
        runtime: ``"openvino"`` or ``"onnxruntime"``.
        convert: Makes a conversion that is not cached yet.
        calibration: INT8: the video file or image folder the conversion is calibrated on.
        calibration_frames: How many frames of ``calibration``.
        without_masks: A segmentation checkpoint converted for detection only.

    Example:
        >>> cache = ConversionCache(Path("weights/yolov8s-worldv2.pt"), "openvino", convert)  # doctest: +SKIP
        >>> cache.folder(80).name  # doctest: +SKIP
        'yolov8s-worldv2-2ee3fbc13b6f7d9a-openvino-k80'
    """

    def __init__(
        self,
        weights: Path,
        runtime: str,
        convert: Convert,
        *,
        calibration: str | None = None,
        calibration_frames: int = 0,
        without_masks: bool = False,
    ) -> None:
        self.weights, self.runtime, self._convert = Path(weights), runtime, convert
        self._digest = file_sha256(self.weights)
        self.variant = f"-int8-{_content_key(Path(calibration), calibration_frames)}" if calibration else ""
        self.variant += "-detect" if without_masks else ""

    def folder(self, slots: int) -> Path:
        """Where the conversion with ``slots`` class slots is kept."""
        name = f"{self.weights.stem}-{self._digest[:16]}-{self.runtime}-k{slots}{self.variant}"
        return compiled_dir() / name

    def converted(self, slots: int) -> Path:
        """The folder of the conversion with ``slots`` class slots, converted first unless it is cached."""
        folder = self.folder(slots)
        if not (folder / METADATA_FILE).is_file():
            log.info("converting %s for %s once (%d class slots; takes a while); cached in %s", self.weights.name,
                     self.runtime, slots, folder)  # fmt: skip
            self._convert(folder, slots)
        return folder


class _FromConversion:
    """An attribute of the converted model's backend, read through :attr:`ConvertedBackend.opened` (which opens
    the conversion on first use)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, backend: ConvertedBackend | None, owner: type | None = None):
        if backend is None:
            return self
        return getattr(backend.opened, self.name)


class ConvertedBackend:
    """A ``.pt`` run by the cached conversion its vocabulary fits.

    The conversion is opened (and, the first time, made) when first needed — usually when the classes are set —
    so a vocabulary or CLIP file that fails does so before a conversion of many seconds. The attributes that
    come from the converted model open it when read.

    Args:
        cache: The conversions of the ``.pt``.
        space: The checkpoint's embedding space, known before the conversion: classes are encoded before it.
        device: ``"cpu"``.
        half: Let OpenVINO compute in the CPU's BF16 instead of FP32.
        task: ``"detect"`` or ``"segment"``; ``None``: what the checkpoint does.
        slots: Class slots of the first conversion.

    Example:
        >>> backend = ConvertedBackend(cache, "clip:ViT-B/32", slots=16)  # doctest: +SKIP
        >>> backend.name, backend.slots  # doctest: +SKIP
        ('openvino', 16)
    """

    rect = True
    fixed_classes = None
    max_classes = None  # grows on demand
    name = _FromConversion()
    stride = _FromConversion()
    device = _FromConversion()
    input_dtype = _FromConversion()
    precision = _FromConversion()
    task = _FromConversion()
    end2end = _FromConversion()

    def __init__(
        self,
        cache: ConversionCache,
        space: str,
        *,
        device: str = "cpu",
        half: bool = False,
        task: str | None = None,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        self.cache, self.space, self.half = cache, space, half
        self._device, self._task, self._first_slots = device, task, slots
        self._opened: Backend | None = None
        self._slots = 0

    @property
    def opened(self) -> Backend:
        """The converted model's own backend; opening it converts first if it is not cached."""
        if self._opened is None:
            self._open(self._first_slots)
        return self._opened

    @property
    def slots(self) -> int:
        """Class slots of the conversion in use (opening it, as :attr:`opened`)."""
        if self._opened is None:
            self._open(self._first_slots)
        return self._slots

    def _open(self, slots: int) -> None:
        folder = self.cache.converted(slots)
        format = runtime_named(self.cache.runtime).format
        self._opened = load_exported(folder, format, device=self._device, half=self.half, task=self._task)
        self._slots = slots

    def default_text_encoder(self) -> TextEncoder:
        """The space's text encoder in PyTorch, as for the ``.pt`` itself: the same embeddings, the same cache."""
        return text_encoder_for(self.space, device="cpu")

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Use these embeddings; a vocabulary larger than the graph's slots converts once more, with more slots."""
        if self._opened is None:
            self._open(max(self._first_slots, _slots_for(len(vectors))))
        elif len(vectors) > self._slots:
            self._open(_slots_for(len(vectors)))
        self.opened.set_vocabulary(vectors)

    def infer(self, images: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        return self.opened.infer(images)


def _content_key(source: Path, frames: int) -> str:
    """A short digest of a calibration source's content (a file's bytes; a folder's names, sizes and times)."""
    if not source.exists():
        raise SourceError(f"--calibration {source} does not exist: pass a video file or a folder of images")
    digest = hashlib.sha256(f"{frames}".encode())
    if source.is_file():
        digest.update(file_sha256(source).encode())
    else:
        for entry in sorted(path for path in source.rglob("*") if path.is_file()):
            status = entry.stat()
            digest.update(f"{entry.relative_to(source)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def _slots_for(rows: int) -> int:
    """Class slots for ``rows`` embeddings: the next power of two."""
    return 2 ** math.ceil(math.log2(max(rows, 1)))
