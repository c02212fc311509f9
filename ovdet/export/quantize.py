"""INT8 post-training quantization of an OpenVINO detector graph with NNCF, calibrated on the user's own frames.

Only what never sees the class embeddings is quantized: the convolutions. Every operation that takes them — the
guide projections and attention of the neck's text-guided blocks (``attn``) and the contrastive head's class
scores (``cv4``), which are all of the graph's matrix multiplications — stays in floating point, as does the head's
box decoding (DFL and anchor arithmetic, as Ultralytics keeps it). So an INT8 graph with a changeable vocabulary
still takes new classes, and its class scores are computed at full precision. The convolutions that read the
neck's text-gated features are quantized with ranges calibrated on the calibration vocabulary; the gate is a
sigmoid, so those ranges hold for other vocabularies too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ConfigError, MissingDependencyError, SourceError
from ..core.weights import file_sha256
from ..io.sources import open_source
from ..vision.preprocess import letterbox_batch

if TYPE_CHECKING:
    import openvino

    from ..runtimes.torch import TorchBackend

__all__ = [
    "DEFAULT_CALIBRATION_FRAMES",
    "Calibration",
    "calibration_digest",
    "calibration_images",
    "quantize_openvino",
]

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_FRAMES = 128
# The neck's text-guided attention, the contrastive head, and ovdet's own operations around the network (named
# outside ``/model.``): the empty-slot mask of a changeable vocabulary and the class scores it multiplies.
TEXT_OPERATIONS = (r".*/attn/.*", r".*/cv4\.\d+/.*", r"/(?!model\.)[^/]*")


def calibration_images(source: str, count: int, imgsz: int, stride: int) -> list[np.ndarray]:
    """Up to ``count`` frames spread over a video or an image folder, each letterboxed as the runtime will see it.

    Example:
        >>> images = calibration_images("../shared/data/bottle-detection.mp4", 8, 640, 32)  # doctest: +SKIP
        >>> images[0].shape  # doctest: +SKIP
        (1, 3, 384, 640)
    """
    if count < 1:
        raise ConfigError(f"--calibration-frames must be a positive integer, got {count}")
    try:
        frames = open_source(source)
    except SourceError as exc:
        raise SourceError(f"--calibration: {exc}") from exc
    if frames.live:
        raise ConfigError(f"--calibration {source} is a live source: calibrate on a video file or an image folder")
    step = max(1, (frames.total or 0) // count)
    try:
        images = [frame.image for frame in islice(islice(frames, 0, None, step), count)]
    finally:
        frames.close()
    if not images:
        raise SourceError(f"--calibration {source}: no frame or image could be read; pass a video file or a folder")
    if len(images) < count:
        log.info("calibrating on the %d frame(s) %s has (asked for %d)", len(images), source, count)
    return [letterbox_batch([image], imgsz, stride, rect=True)[0] for image in images]


def calibration_digest(source: str | os.PathLike[str]) -> str:
    """SHA-256 of a calibration source's content: a file's bytes; a folder's file names and bytes. Copying the
    set elsewhere keeps it; changing, adding or removing a frame changes it.

    Example:
        >>> calibration_digest("scenes/")  # doctest: +SKIP
        '3f2a…'
    """
    source = Path(source)
    if source.is_file():
        return file_sha256(source)
    digest = hashlib.sha256()
    for entry in sorted(path for path in source.rglob("*") if path.is_file()):
        digest.update(f"{entry.relative_to(source).as_posix()}\0{file_sha256(entry)}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Calibration:
    """What INT8 ranges are measured on.

    Attributes:
        images: Calibration inputs, ``(1, 3, H, W)`` float32 each (see :func:`calibration_images`).
        embeddings: ``(K, D)`` class embeddings fed with every image, for a changeable-vocabulary graph (the
            checkpoint's own class names: a broad everyday vocabulary); ``None`` when the classes are baked in.
        head: Index of the detection head among the model's layers (its operations are named ``/model.<head>/``).
    """

    images: Sequence[np.ndarray]
    embeddings: np.ndarray | None
    head: int

    @classmethod
    def prepare(cls, source: str, frames: int, imgsz: int, backend: TorchBackend, encoder, slots: int | None):
        """Read the frames, and for a changeable vocabulary of ``slots`` rows encode the checkpoint's names."""
        images = calibration_images(source, frames, imgsz, backend.stride)
        embeddings = None
        if slots is not None:
            names = list(backend.model.names.values())[:slots]
            embeddings = np.zeros((slots, backend.embedding_dim), np.float32)
            embeddings[: len(names)] = encoder.encode(names)
        return cls(images, embeddings, head=len(backend.model.model) - 1)

    def quantize(self, model: openvino.Model) -> openvino.Model:
        return quantize_openvino(model, self)


def quantize_openvino(model: openvino.Model, calibration: Calibration) -> openvino.Model:
    """The INT8 model: convolutions quantized on the calibration frames; text operations and box decoding in
    floating point (see the module's docstring)."""
    # NNCF imports PyTorch's extension builder, which warns on every machine without CUDA
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
    except ImportError as exc:
        raise MissingDependencyError(
            "INT8 export needs NNCF: pip install '.[int8]' in ovdet's folder (or pip install nncf), or export "
            "without --precision int8"
        ) from exc

    embeddings, head = calibration.embeddings, calibration.head

    def inputs(image: np.ndarray) -> dict[str, np.ndarray]:
        return {"images": image} if embeddings is None else {"images": image, "text_embeddings": embeddings}

    decoding = [rf".*/model\.{head}/dfl/.*", *(rf".*/model\.{head}/{op}[^/]*$" for op in ("Add", "Sub", "Mul", "Div"))]
    keep_float = nncf.IgnoredScope(
        types=["MatMul"], patterns=[*TEXT_OPERATIONS, *decoding], validate=False
    )  # validate=False: a fixed graph folds some of these away
    images = list(calibration.images)
    log.info("quantizing to INT8 on %d calibration frame(s); this takes a minute", len(images))
    logging.getLogger("nncf").setLevel(logging.WARNING)  # it logs each operation it leaves alone at INFO
    with contextlib.redirect_stdout(io.StringIO()):  # and draws its own progress bars on stdout
        return nncf.quantize(
            model,
            nncf.Dataset(images, inputs),
            subset_size=len(images),
            preset=nncf.QuantizationPreset.MIXED,
            ignored_scope=keep_float,
        )
