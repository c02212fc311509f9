"""Open a model with the runtime it needs: an ``ovdet export`` with its format's runtime, a ``.pt`` with PyTorch or,
converted once and cached, with OpenVINO or onnxruntime.

This sits above the runtimes and the exporter: it is the one place that hands the exporter to the runtime layer's
cache of conversions (:mod:`ovdet.runtimes.converted`), the default CPU path.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .core.errors import ConfigError, MissingDependencyError, ModelError, SourceError, WeightsError
from .core.precision import REDUCED, requested_precision
from .export.exporter import ExportOptions, export_backend
from .export.quantize import DEFAULT_CALIBRATION_FRAMES, calibration_digest
from .prompts.spaces import TextEncoder
from .prompts.text import text_encoder_for
from .prompts.vocabulary import Vocabulary
from .runtimes.artifact import artifact_format, exported_metadata
from .runtimes.backend import Backend
from .runtimes.converted import DEFAULT_SLOTS, ConversionCache, ConvertedBackend
from .runtimes.exported import load_exported
from .runtimes.registry import RUNTIMES, pt_runtimes, runtime_named

if TYPE_CHECKING:
    from .runtimes.torch import TorchBackend

__all__ = ["PrecisionChoice", "choose_precision", "converted_backend", "load_backend", "torch_backend_of"]

log = logging.getLogger(__name__)


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
    return load_exported(path, exported, device=device, half=half, task=task)


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
    return converted_backend(path, runtime, device, half, calibration, text_encoder, task)


def torch_backend_of(backend: Backend, model: Path) -> TorchBackend:
    """The PyTorch model behind a running ``backend`` of ``model``, for an export: the backend itself, or for a
    converted ``.pt`` the ``.pt`` loaded on the CPU."""
    from .runtimes.torch import TorchBackend

    if isinstance(backend, TorchBackend):
        return backend
    if model.suffix in runtime_named("torch").suffixes:
        return TorchBackend(model, device="cpu", task=backend.task)
    raise ModelError(
        f"{model.name} is already an exported {backend.name} model: export from the YOLO-World .pt file it came from"
    )


def _fastest_runtime(device: str) -> str:
    """OpenVINO on a CPU (measured: benchmarks/speed.py), PyTorch on CUDA or where OpenVINO is missing."""
    if device.startswith("cuda") or importlib.util.find_spec("openvino") is None:
        return "torch"
    return "openvino"


def converted_backend(
    weights: Path,
    runtime: str,
    device: str = "cpu",
    half: bool = False,
    calibration: str | os.PathLike[str] | None = None,
    text_encoder: TextEncoder | None = None,
    task: str | None = None,
    slots: int = DEFAULT_SLOTS,
) -> ConvertedBackend:
    """A ``.pt`` run by OpenVINO or onnxruntime through a changeable-vocabulary export of it, made once and cached
    (see :mod:`ovdet.runtimes.converted`); the exporter makes the conversions.

    Args:
        weights: The YOLO-World or YOLOE ``.pt`` file.
        runtime: ``"openvino"`` or ``"onnxruntime"``.
        device: ``"cpu"``.
        half: Let OpenVINO compute in the CPU's BF16 instead of FP32.
        calibration: INT8 (OpenVINO): convolutions quantized on frames of this video file or image folder; the
            conversion is cached per weights, calibration content and frame count.
        text_encoder: Encodes the classes an INT8 conversion is calibrated with; default: the model's own text
            encoder, loaded for it.
        task: ``"detect"`` or ``"segment"``; ``None``: what the checkpoint does. A ``-seg`` checkpoint converted
            for ``"detect"`` has no mask branch, and is cached apart.
        slots: Class slots of the first conversion.

    Example:
        >>> backend = converted_backend(Path("weights/yolov8s-worldv2.pt"), "openvino")  # doctest: +SKIP
        >>> backend.name, backend.precision  # doctest: +SKIP
        ('openvino', 'fp32')
    """
    from .runtimes.torch import TorchBackend, checkpoint_segments, checkpoint_space

    space = checkpoint_space(weights)
    calibration = os.fspath(calibration) if calibration is not None else None

    def convert(folder: Path, slots: int) -> None:
        options = ExportOptions(
            runtime_named(runtime).format, dynamic_vocab=True, max_classes=slots, int8=bool(calibration),
            calibration=calibration, calibration_frames=DEFAULT_CALIBRATION_FRAMES,
        )  # fmt: skip
        backend = TorchBackend(weights, device="cpu", task=task)
        encoder = (text_encoder or text_encoder_for(space, device="cpu")) if calibration else None
        export_backend(backend, weights, options, folder, calibration_encoder=encoder)

    cache = ConversionCache(
        weights, runtime, convert, calibration=calibration, calibration_frames=DEFAULT_CALIBRATION_FRAMES,
        without_masks=task == "detect" and checkpoint_segments(weights),
    )  # fmt: skip
    return ConvertedBackend(cache, space, device=device, half=half, task=task, slots=slots)
