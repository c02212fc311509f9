"""Open a model with the runtime it needs: an ``ovdet export`` with its format's runtime, a ``.pt`` with PyTorch or,
converted once and cached, with OpenVINO or onnxruntime.

This sits above the runtimes and the exporter: it is the one place that converts a ``.pt`` through the exporter
(the default CPU path). The graph has a fixed number of class slots; a vocabulary that needs more converts once
more with twice the slots, and since the class embeddings are an input of the graph, changing the classes needs
no new conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

from .core.errors import ConfigError, MissingDependencyError, SourceError, WeightsError
from .export.quantize import DEFAULT_CALIBRATION_FRAMES, calibration_digest
from .core.precision import REDUCED, requested_precision
from .runtimes.artifact import artifact_format, exported_metadata
from .runtimes.backend import Backend
from .runtimes.registry import RUNTIMES, pt_runtimes, runtime_for_format, runtime_named
from .prompts.spaces import TextEncoder
from .prompts.text import text_encoder_for
from .prompts.vocabulary import Vocabulary
from .core.weights import cache_dir, file_sha256

__all__ = ["CompiledBackend", "PrecisionChoice", "choose_precision", "compiled_dir", "load_backend"]

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 80
_OPENED_ATTRIBUTES = ("name", "space", "stride", "device", "input_dtype", "precision", "task", "end2end")


def load_backend(
    model: str | os.PathLike[str],
    device: str = "auto",
    half: bool = False,
    runtime: str = "auto",
    calibration: str | os.PathLike[str] | None = None,
    text_encoder: TextEncoder | None = None,
    task: str | None = None,
) -> Backend:
    """Open a weights file or an exported model with the runtime its format needs.

    Args:
        model: A YOLO-World ``.pt`` file, or an ``ovdet export`` artifact: its folder or its model file
            (``.onnx``, ``.xml``, ``.torchscript``, ``.engine``).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; each runtime documents its own.
        half: Reduced precision (see each runtime).
        runtime: For a ``.pt``: ``"torch"``, ``"openvino"`` or ``"onnxruntime"`` (converted once and cached), or
            ``"auto"`` (``$OVDET_RUNTIME`` if set; else OpenVINO on a CPU where it is installed, PyTorch otherwise).
        calibration: For a ``.pt`` run by OpenVINO: a video file or image folder of the user's own scenes; the
            cached conversion is then INT8 (see :mod:`ovdet.export.quantize`), cached per calibration source.
        text_encoder: The encoder an INT8 conversion encodes its calibration classes with (default: the model's
            own, loaded for it); pass the detector's own so that it loads once.
        task: ``"detect"`` or ``"segment"``; ``None``: what the model does (a ``-seg`` YOLOE segments).

    Example:
        >>> backend = load_backend("runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx")  # doctest: +SKIP
        >>> backend.name  # doctest: +SKIP
        'onnxruntime'
    """
    path = Path(model)
    if path.suffix in runtime_named("torch").suffixes:
        return _load_weights(path, device, half, runtime, calibration, text_encoder, task)
    if calibration is not None:
        raise ConfigError(
            f"{path} is an export, and INT8 calibration applies to a .pt: export it with --precision int8 "
            f"--calibration, or run the .pt"
        )
    exported = artifact_format(path)
    if exported is None:
        suffixes = ", ".join(suffix for entry in RUNTIMES if entry.format is not None for suffix in entry.suffixes)
        raise WeightsError(
            f"{path} has an unsupported format {path.suffix or '(none)'}: ovdet loads YOLO-World .pt files and "
            f"models exported with ovdet export ({suffixes}, or their folder)"
        )
    entry = runtime_for_format(exported)
    backend_class = getattr(import_module(entry.module), entry.class_name)
    backend = backend_class(path, device=device, half=half)
    backend.select_task(task)
    return backend


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a detector runs in, and for INT8 of a ``.pt`` the scenes it is calibrated on.

    Attributes:
        precision: ``fp32``, ``bf16``, ``fp16`` (both: the device's reduced floating point) or ``int8``.
        calibration: For INT8 of a ``.pt``: a video file or image folder; ``None`` otherwise.
        origin: Where the choice came from: ``"asked"``, ``"default"``, an INT8 export, or a vocabulary file.
    """

    precision: str
    calibration: str | None = None
    origin: str = "default"

    @property
    def half(self) -> bool:
        """Whether the runtime computes in the device's reduced floating point."""
        return self.precision in REDUCED


def choose_precision(
    model: str | os.PathLike[str],
    precision: str | None = None,
    half: bool | None = None,
    calibration: str | os.PathLike[str] | None = None,
    vocabulary: Vocabulary | None = None,
) -> PrecisionChoice:
    """What runs: the precision asked for (``half`` is its alias); else the one a vocabulary file records (what
    ``ovdet eval`` validated on labelled images, applied to a ``.pt``); else INT8 for an INT8 export; else FP32.

    ``calibration`` alone means INT8. Contradictions and INT8 without calibration are :class:`ConfigError`; a
    vocabulary's calibration source that is missing is a :class:`SourceError`, and one whose content changed since
    it was validated is a warning.

    Example:
        >>> choose_precision(Path("w.pt"), half=True)
        PrecisionChoice(precision='bf16', calibration=None, origin='asked')
    """
    asked = requested_precision(precision, half)
    if calibration is not None:
        if asked not in (None, "int8"):
            raise ConfigError(f"--calibration is for precision int8, and precision {asked} was given: choose one")
        return PrecisionChoice("int8", os.fspath(calibration), "asked")
    exported = exported_metadata(model)  # None for a .pt or a registry name
    recorded = vocabulary.precision if vocabulary is not None and exported is None else None
    if recorded is not None and asked in (None, recorded):
        return _recorded_choice(vocabulary)
    int8_export = exported is not None and exported.precision == "int8"
    if asked == "int8" and not int8_export:
        raise ConfigError(
            "--precision int8 needs --calibration VIDEO_OR_FOLDER (your own scenes) to convert a .pt, or an INT8 "
            "export (ovdet export --precision int8) as --model"
        )
    if asked is None:
        return PrecisionChoice("int8", None, os.fspath(model)) if int8_export else PrecisionChoice("fp32")
    if int8_export and asked == "fp32":
        log.warning(
            "%s was exported in INT8, so its convolutions run in INT8 (the rest in FP32): export it again without "
            "--precision int8 for FP32 throughout", Path(model).name,
        )  # fmt: skip
    return PrecisionChoice(asked, None, "asked")


def _recorded_choice(vocabulary: Vocabulary) -> PrecisionChoice:
    """The precision a vocabulary file records; its calibration source must still be there."""
    origin, source = vocabulary.origin, vocabulary.calibration
    if source is None:
        log.info("precision %s, as %s records", vocabulary.precision, origin)
        return PrecisionChoice(vocabulary.precision, None, origin)
    if not Path(source).exists():
        raise SourceError(
            f"{origin} asks for precision int8 calibrated on {source}, which does not exist here: run from the folder "
            f"ovdet eval ran in, write its absolute path in {origin}, or pass --precision fp32"
        )
    if vocabulary.calibration_digest and calibration_digest(source) != vocabulary.calibration_digest.lower():
        log.warning(
            "%s changed since ovdet eval validated INT8 on it (%s): re-run ovdet eval to check INT8 on these frames",
            source, origin,
        )  # fmt: skip
    log.info("precision int8, as %s records, calibrated on %s", origin, source)
    return PrecisionChoice("int8", source, origin)


def _load_weights(
    path: Path, device: str, half: bool, runtime: str, calibration, text_encoder, task: str | None
) -> Backend:
    try:
        from .runtimes.torch import TorchBackend, resolve_device
    except ImportError as exc:  # a torch-free install, which runs exported models only
        raise MissingDependencyError(
            f"{exc.name or 'torch'} is not installed, and running the PyTorch checkpoint {path.name} needs it: "
            f"install ovdet's torch extra (pip install '.[torch]' in ovdet's folder), or run a model exported with "
            f"ovdet export (ONNX or OpenVINO) instead"
        ) from exc
    if runtime not in ("auto", *pt_runtimes()):
        raise ConfigError(f"unknown runtime {runtime!r}: use one of {', '.join(('auto', *pt_runtimes()))}")
    if runtime == "auto":  # INT8 runs through OpenVINO only
        runtime = (
            "openvino" if calibration else os.environ.get("OVDET_RUNTIME") or _fastest_runtime(resolve_device(device))
        )
    if runtime not in pt_runtimes():
        raise ConfigError(f"OVDET_RUNTIME={runtime!r} is not a runtime: use one of {', '.join(pt_runtimes())}")
    if calibration is not None and runtime != "openvino":
        raise ConfigError(f"INT8 runs through OpenVINO, not {runtime}: drop --runtime (or use openvino) for INT8")
    if runtime == "torch":
        return TorchBackend(path, device=device, half=half, task=task)
    device = "cpu" if device == "auto" else device
    return CompiledBackend(
        path, runtime, device=device, half=half, calibration=calibration, calibration_encoder=text_encoder, task=task
    )


def _fastest_runtime(device: str) -> str:
    """OpenVINO on a CPU (measured: benchmarks/speed.py), PyTorch on CUDA or where OpenVINO is missing."""
    if device.startswith("cuda") or importlib.util.find_spec("openvino") is None:
        return "torch"
    return "openvino"


def compiled_dir() -> Path:
    """Where converted models are kept: ``$OVDET_COMPILED_DIR``, else ``<ovdet cache>/compiled``."""
    return Path(os.environ.get("OVDET_COMPILED_DIR") or cache_dir() / "compiled").expanduser()


class CompiledBackend:
    """A YOLO-World or YOLOE ``.pt`` run by OpenVINO or onnxruntime through a cached changeable-vocabulary export.

    The converted model is opened (and, the first time, converted) when first needed — usually when the classes
    are set — so a vocabulary or CLIP file that fails does so before a conversion of many seconds.

    Args:
        weights: The YOLO-World ``.pt`` file.
        runtime: ``"openvino"`` or ``"onnxruntime"``.
        device: ``"auto"`` or ``"cpu"``.
        half: Let OpenVINO compute in the CPU's BF16 instead of FP32.
        slots: Class slots of the first conversion.
        calibration: INT8 (OpenVINO): convolutions quantized on frames of this video file or image folder; the
            conversion is cached per weights, calibration content and frame count.
        calibration_frames: How many frames of ``calibration``.
        calibration_encoder: Encodes the classes an INT8 conversion is calibrated with; default: the model's own
            text encoder, loaded for it.
        task: ``"detect"`` or ``"segment"``; ``None``: what the checkpoint does. A ``-seg`` checkpoint converted
            for ``"detect"`` has no mask branch, and is cached apart.

    Example:
        >>> backend = CompiledBackend(Path("weights/yolov8s-worldv2.pt"), "openvino")  # doctest: +SKIP
        >>> backend.name, backend.precision  # doctest: +SKIP
        ('openvino', 'fp32')
    """

    rect = True
    fixed_classes = None
    max_classes = None  # grows on demand

    def __init__(
        self,
        weights: Path,
        runtime: str,
        device: str = "auto",
        half: bool = False,
        slots: int = DEFAULT_SLOTS,
        calibration: str | os.PathLike[str] | None = None,
        calibration_frames: int = DEFAULT_CALIBRATION_FRAMES,
        calibration_encoder: TextEncoder | None = None,
        task: str | None = None,
    ) -> None:
        from .runtimes.torch import checkpoint_segments, checkpoint_space

        self.weights, self.runtime, self.half, self._device = Path(weights), runtime, half, device
        self.space = checkpoint_space(self.weights)  # known before the conversion: classes are encoded before it
        self._task = task
        self._digest = file_sha256(self.weights)
        self._first_slots = slots
        self.calibration = os.fspath(calibration) if calibration is not None else None
        self.calibration_frames = calibration_frames
        self.calibration_encoder = calibration_encoder
        self._variant = f"-int8-{_content_key(Path(calibration), calibration_frames)}" if calibration else ""
        self._variant += "-detect" if task == "detect" and checkpoint_segments(self.weights) else ""

    def __getattr__(self, name: str):
        """The converted model's attributes (and ``slots``) open it on first use."""
        if name not in (*_OPENED_ATTRIBUTES, "slots") or "_first_slots" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self._open(self._first_slots)
        return getattr(self, name)

    def _open(self, slots: int) -> None:
        folder = compiled_dir() / f"{self.weights.stem}-{self._digest[:16]}-{self.runtime}-k{slots}{self._variant}"
        if not (folder / "ovdet.json").is_file():
            self._convert(folder, slots)
        self._inner = load_backend(folder, device=self._device, half=self.half, task=self._task)
        self.slots = slots
        for name in _OPENED_ATTRIBUTES:
            setattr(self, name, getattr(self._inner, name))

    def _convert(self, folder: Path, slots: int) -> None:
        from .export.exporter import ExportOptions, export_backend
        from .runtimes.torch import TorchBackend

        log.info("converting %s for %s once (%d class slots; takes a while); cached in %s", self.weights.name,
                 self.runtime, slots, folder)  # fmt: skip
        options = ExportOptions(
            runtime_named(self.runtime).format, dynamic_vocab=True, max_classes=slots, int8=bool(self.calibration),
            calibration=self.calibration, calibration_frames=self.calibration_frames,
        )  # fmt: skip
        backend = TorchBackend(self.weights, device="cpu", task=self._task)
        encoder = (self.calibration_encoder or self.default_text_encoder()) if self.calibration else None
        export_backend(backend, self.weights, options, folder, calibration_encoder=encoder)

    def default_text_encoder(self) -> TextEncoder:
        """The space's text encoder in PyTorch, as for the ``.pt`` itself: the same embeddings, the same cache."""
        return text_encoder_for(self.space, device="cpu")

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Use these embeddings; a vocabulary larger than the graph's slots converts once more, with more slots."""
        if "slots" not in self.__dict__:
            self._open(max(self._first_slots, _slots_for(len(vectors))))
        elif len(vectors) > self.slots:
            self._open(_slots_for(len(vectors)))
        self._inner.set_vocabulary(vectors)

    def infer(self, images: np.ndarray) -> np.ndarray:
        return self._inner.infer(images)


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
