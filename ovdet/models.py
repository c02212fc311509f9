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
from importlib import import_module
from pathlib import Path

import numpy as np

from .errors import ConfigError, SourceError, WeightsError
from .export.quantize import DEFAULT_CALIBRATION_FRAMES
from .runtimes.artifact import artifact_format
from .runtimes.backend import Backend
from .runtimes.registry import RUNTIMES, pt_runtimes, runtime_for_format, runtime_named
from .text import TextEncoder
from .weights import cache_dir, file_sha256

__all__ = ["CompiledBackend", "compiled_dir", "load_backend"]

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 80
_OPENED_ATTRIBUTES = ("name", "space", "stride", "device", "input_dtype", "precision", "task", "end2end")


def load_backend(
    model: str | os.PathLike[str],
    device: str = "auto",
    half: bool = False,
    runtime: str = "auto",
    calibration: str | os.PathLike[str] | None = None,
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
        task: ``"detect"`` or ``"segment"``; ``None``: what the model does (a ``-seg`` YOLOE segments).

    Example:
        >>> backend = load_backend("runs/export/yolov8s-worldv2-onnx-dynamic16/yolov8s-worldv2.onnx")  # doctest: +SKIP
        >>> backend.name  # doctest: +SKIP
        'onnxruntime'
    """
    path = Path(model)
    if path.suffix in runtime_named("torch").suffixes:
        return _load_weights(path, device, half, runtime, calibration, task)
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


def _load_weights(path: Path, device: str, half: bool, runtime: str, calibration, task: str | None) -> Backend:
    from .runtimes.torch import TorchBackend, resolve_device

    if runtime not in ("auto", *pt_runtimes()):
        raise ConfigError(f"unknown runtime {runtime!r}: use one of {', '.join(('auto', *pt_runtimes()))}")
    if runtime == "auto":
        runtime = os.environ.get("OVDET_RUNTIME") or _fastest_runtime(resolve_device(device))
    if runtime not in pt_runtimes():
        raise ConfigError(f"OVDET_RUNTIME={runtime!r} is not a runtime: use one of {', '.join(pt_runtimes())}")
    if calibration is not None and runtime != "openvino":
        raise ConfigError(f"INT8 runs through OpenVINO, not {runtime}: drop --runtime (or use openvino) for INT8")
    if runtime == "torch":
        return TorchBackend(path, device=device, half=half, task=task)
    device = "cpu" if device == "auto" else device
    return CompiledBackend(path, runtime, device=device, half=half, calibration=calibration, task=task)


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
        task: ``"detect"`` or ``"segment"``; ``None``: what the checkpoint does. A ``-seg`` checkpoint converted
            for ``"detect"`` has no mask branch, and is cached apart.

    Example:
        >>> backend = CompiledBackend(Path("weights/yolov8s-worldv2.pt"), "openvino")  # doctest: +SKIP
        >>> backend.name, backend.precision  # doctest: +SKIP
        ('openvino', 'f32')
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
        task: str | None = None,
    ) -> None:
        self.weights, self.runtime, self.half, self._device = Path(weights), runtime, half, device
        self._task = task
        self._digest = file_sha256(self.weights)
        self._first_slots = slots
        self.calibration = os.fspath(calibration) if calibration is not None else None
        self.calibration_frames = calibration_frames
        self._variant = f"-int8-{_content_key(Path(calibration), calibration_frames)}" if calibration else ""
        self._variant += "-detect" if task == "detect" else ""

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
        encoder = self.default_text_encoder() if self.calibration else None
        export_backend(backend, self.weights, options, folder, calibration_encoder=encoder)

    def default_text_encoder(self) -> TextEncoder:
        """The ``.pt``'s own text encoder in PyTorch (CLIP for YOLO-World): the same embeddings, the same cache."""
        from .runtimes.torch import checkpoint_space, default_text_encoder

        space = self.__dict__.get("space") or checkpoint_space(self.weights)
        return default_text_encoder(space, device="cpu")

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
