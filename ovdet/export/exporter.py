"""Export a detector's parts (its PyTorch model, and its classes or its text encoder): the vocabulary baked in
(fixed), or taken per call with its text tower beside it (dynamic).

The export is written into a hidden staging folder and moved into place once complete, so an interrupted export
never leaves a half-written artifact under the requested name, and nothing ovdet did not write is ever deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import __version__
from ..core.config import check_sizes
from ..core.errors import ConfigError
from ..runtimes.artifact import METADATA_FILE, ArtifactMetadata
from ..runtimes.registry import export_formats, format_suffix
from .quantize import DEFAULT_CALIBRATION_FRAMES, Calibration
from .staging import check_target, staging
from .text_towers import tower_encoder, write_text_tower

if TYPE_CHECKING:
    import torch

    from ..prompts.embeddings import Embeddings
    from ..prompts.spaces import TextEncoder
    from ..runtimes.torch import TorchBackend

__all__ = ["DEFAULT_MAX_CLASSES", "FORMATS", "ExportOptions", "export_backend"]

log = logging.getLogger(__name__)

FORMATS = export_formats()
DEFAULT_MAX_CLASSES = 80
DEFAULT_ROOT = Path("runs") / "export"
HALF_NEEDS_CUDA = ("onnx", "torchscript")  # their FP16 graphs are traced from an FP16 model, which needs CUDA
MASK_FORMATS = ("onnx", "openvino")  # the formats whose runtimes read the mask prototypes (a second output)


@dataclass(frozen=True)
class ExportOptions:
    """What to export, checked on creation.

    Attributes:
        format: ``"onnx"``, ``"openvino"``, ``"torchscript"`` or ``"engine"`` (TensorRT).
        dynamic_vocab: Take the class embeddings as an input (and export the text tower) instead of baking them in.
        max_classes: Class slots of a dynamic export (default 80); not used for fixed exports.
        imgsz: Input size the graph is traced at and described with; engines accept up to it.
        batch: Images per call an engine accepts at most; other formats take any batch.
        half: FP16 weights (OpenVINO, any device) or FP16 graphs (ONNX and TorchScript on CUDA, TensorRT).
        int8: INT8 convolutions (OpenVINO, through NNCF), calibrated on ``calibration``; whatever takes the class
            embeddings stays in floating point (see :mod:`ovdet.export.quantize`).
        calibration: A video file or image folder of the user's own scenes, for ``int8``.
        calibration_frames: Frames spread over ``calibration`` that INT8 ranges are measured on.

    Example:
        >>> ExportOptions("onnx", dynamic_vocab=True).max_classes
        80
    """

    format: str = "onnx"
    dynamic_vocab: bool = False
    max_classes: int | None = None
    imgsz: int = 640
    batch: int = 1
    half: bool = False
    int8: bool = False
    calibration: str | None = None
    calibration_frames: int = DEFAULT_CALIBRATION_FRAMES

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"unknown export format {self.format!r}: use one of {', '.join(FORMATS)}")
        self._check_int8()
        if self.max_classes is not None and not self.dynamic_vocab:
            raise ConfigError("max_classes sizes a changeable vocabulary: add --dynamic-vocab, or drop --max-classes")
        if self.dynamic_vocab and self.max_classes is None:
            object.__setattr__(self, "max_classes", DEFAULT_MAX_CLASSES)
        check_sizes(imgsz=self.imgsz, batch=self.batch, max_classes=self.max_classes)

    def _check_int8(self) -> None:
        if not self.int8:
            if self.calibration is not None:
                raise ConfigError("--calibration is for an INT8 export: add --precision int8, or drop --calibration")
            return
        if self.format != "openvino":
            raise ConfigError(f"INT8 export is to OpenVINO (through NNCF), not {self.format}: use --format openvino")
        if self.half:
            raise ConfigError("--half and --precision int8 exclude each other: choose one precision")
        if self.calibration is None:
            raise ConfigError(
                "INT8 export measures ranges on your own scenes: add --calibration VIDEO_OR_FOLDER (a few hundred "
                "frames like the ones it will see)"
            )

    @property
    def vocabulary(self) -> str:
        """``"dynamic"`` or ``"fixed"``."""
        return "dynamic" if self.dynamic_vocab else "fixed"

    @property
    def precision(self) -> str:
        """``"int8"``, ``"fp16"`` or ``"fp32"``."""
        return "int8" if self.int8 else "fp16" if self.half else "fp32"

    @property
    def input_dtype(self) -> str:
        """The dtype the graph's inputs have: FP16 only for FP16-traced graphs."""
        return "float16" if self.half and self.format in HALF_NEEDS_CUDA else "float32"


def export_backend(
    backend: TorchBackend,
    weights: Path,
    options: ExportOptions,
    folder: str | os.PathLike[str] | None = None,
    embeddings: Embeddings | None = None,
    text_encoder: TextEncoder | None = None,
    calibration_encoder: TextEncoder | None = None,
) -> Path:
    """Write an artifact folder from a loaded PyTorch model: the detector graph, ``ovdet.json``, and (when a
    ``text_encoder`` is given) its text tower; the folder appears only once complete.

    A fixed export bakes ``embeddings`` in. A dynamic export takes 1 to ``max_classes`` class embeddings per call
    and ships the text tower of ``text_encoder`` (CLIP, MobileCLIP) as ONNX with its tokenizer, so the deployment
    changes classes with neither torch nor Ultralytics installed.

    Args:
        backend: The PyTorch runtime holding the YOLO-World or YOLOE model.
        weights: The ``.pt`` file it came from (its name and SHA-256 go into the metadata).
        options: What to export.
        folder: Where (default ``runs/export/<model>-<format>-<fixed|dynamic><K>``); replaced if it holds an
            earlier export, refused if it holds anything else.
        embeddings: The classes to bake in, for a fixed export.
        text_encoder: The encoder (CLIP or MobileCLIP, of the model's space) whose text tower a dynamic export
            ships; ``None`` ships none.
        calibration_encoder: Encodes the names an INT8 changeable graph is calibrated with (default
            ``text_encoder``), for an export that ships no text tower.

    Returns:
        The exported model file; pass it (or its folder) to ``OpenVocabDetector`` or ``ovdet detect --model``.

    Example:
        >>> options = ExportOptions("openvino", dynamic_vocab=True)
        >>> export_backend(backend, Path("yolov8s-worldv2.pt"), options, Path("out"))  # doctest: +SKIP
        PosixPath('out/yolov8s-worldv2.xml')
    """
    num_classes = options.max_classes if embeddings is None else len(embeddings)
    if folder is None:
        folder = DEFAULT_ROOT / f"{weights.stem}-{options.format}-{options.vocabulary}{num_classes}"
    folder = Path(folder)
    _check_masks(options, backend)  # before the text tower is looked for: a refused export says nothing else
    text_encoder = tower_encoder(text_encoder, backend.space) if text_encoder is not None else None
    _check_half(options, backend)
    check_target(folder)
    encoder = calibration_encoder or text_encoder
    calibration = _calibration(options, backend, encoder, num_classes)  # a bad source fails before the export
    with staging(folder) as staged:
        model_file = _write_detector_graph(
            backend, embeddings, num_classes, options, staged / weights.stem, calibration
        )
        text_tower = write_text_tower(text_encoder, staged) if text_encoder is not None else None
        metadata = ArtifactMetadata(
            format=options.format,
            model_file=model_file.name,
            vocabulary=options.vocabulary,
            max_classes=num_classes,
            classes=embeddings.names if embeddings is not None else None,
            embedding_space=backend.space,
            embedding_dim=backend.embedding_dim,
            imgsz=options.imgsz,
            stride=backend.stride,
            max_batch=options.batch if options.format == "engine" else None,
            precision=options.precision,
            input_dtype=options.input_dtype,
            source_weights=weights.name,
            source_sha256=backend.sha256,
            ovdet_version=__version__,
            text_encoder=text_tower,
            family=backend.family,
            task=backend.task,
            end2end=backend.end2end,
            model_sha256=_script_digest(model_file) if options.format == "torchscript" else None,
        )
        (staged / METADATA_FILE).write_text(metadata.to_json(), encoding="utf-8")
    log.debug("exported %s to %s", weights.name, folder)
    return folder / model_file.name


def _script_digest(path: Path) -> str:
    """A TorchScript graph is code: its digest goes into ``ovdet.json``, and only a file that matches it is loaded."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_half(options: ExportOptions, backend: TorchBackend) -> None:
    if options.input_dtype == "float16" and not backend.device.startswith("cuda"):
        raise ConfigError(
            f"--half {options.format} export traces an FP16 model, which needs CUDA: add --device cuda on a GPU "
            f"machine, or export FP32 (OpenVINO --half works on the CPU)"
        )


def _calibration(options: ExportOptions, backend: TorchBackend, encoder, num_classes: int) -> Calibration | None:
    if not options.int8:
        return None
    slots = num_classes if options.dynamic_vocab else None
    return Calibration.prepare(options.calibration, options.calibration_frames, options.imgsz, backend, encoder, slots)


def _check_masks(options: ExportOptions, backend: TorchBackend) -> None:
    if backend.task == "segment" and options.format not in MASK_FORMATS:
        raise ConfigError(
            f"a {options.format} export of a segmentation model has no mask output in ovdet: export to "
            f"{' or '.join(MASK_FORMATS)}, or create the detector with task='detect' for boxes only"
        )


def _write_detector_graph(
    backend: TorchBackend,
    embeddings: Embeddings | None,
    num_classes: int,
    options: ExportOptions,
    stem: Path,
    calibration: Calibration | None = None,
) -> Path:
    import torch

    from .graphs import DynamicVocabularyGraph, FixedVocabularyGraph, YoloeGraph, prepare_for_export
    from .writers import write_engine, write_onnx, write_openvino, write_torchscript

    device = torch.device(backend.device)
    dtype = torch.float16 if options.input_dtype == "float16" else torch.float32
    model = prepare_for_export(backend.model, num_classes).to(device, dtype)
    images = torch.zeros(options.batch, 3, options.imgsz, options.imgsz, device=device, dtype=dtype)
    baked = torch.from_numpy(embeddings.vectors).to(device, dtype) if embeddings is not None else None
    masks = backend.task == "segment"
    if backend.family == "yoloe":
        graph: torch.nn.Module = YoloeGraph(model, masks, baked)
    else:
        graph = DynamicVocabularyGraph(model) if baked is None else FixedVocabularyGraph(model, baked)
    example: tuple[torch.Tensor, ...] = (images,)
    if baked is None:
        example = (images, _example_embeddings(num_classes, backend.embedding_dim, device, dtype))
    suffix = format_suffix(options.format)
    if options.format == "onnx":
        return write_onnx(graph, example, stem.with_suffix(suffix), prototypes=masks)
    if options.format == "torchscript":
        return write_torchscript(graph, example, stem.with_suffix(suffix))
    onnx_path = write_onnx(graph, example, stem.with_name(f"{stem.name}.intermediate.onnx"), prototypes=masks)
    try:
        if options.format == "openvino":
            quantize = calibration.quantize if calibration is not None else None
            return write_openvino(onnx_path, stem.with_suffix(suffix), options.half, quantize)
        return write_engine(
            onnx_path, stem.with_suffix(suffix), imgsz=options.imgsz, max_batch=options.batch, half=options.half
        )
    finally:
        onnx_path.unlink()


def _example_embeddings(num_classes: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    import torch

    return torch.nn.functional.normalize(torch.ones(num_classes, dim, device=device, dtype=dtype), dim=-1)
