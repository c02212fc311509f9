"""Inference settings as data: one dataclass that the CLI fills from flags and the API from keyword arguments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["MAX_BATCH_PIXELS", "MAX_IMGSZ", "InferenceSettings", "check_sizes"]

# The network's activations take about 210 bytes per input pixel (yolov8s-worldv2 on PyTorch, measured: 0.35 GB at
# 1280², 1 GB at 2560²; the l and x models are wider), so a forward pass over 4096² pixels needs about 3.5 GB with
# the s model and 9 GB with the x model: the most a 24 GB machine can take with room to spare. 8192² would need
# 14–35 GB, and a larger --imgsz is killed by the kernel without a message.
MAX_IMGSZ = 4096
MAX_BATCH_PIXELS = MAX_IMGSZ * MAX_IMGSZ  # batch × imgsz², e.g. batch 40 at imgsz 640


@dataclass(frozen=True)
class InferenceSettings:
    """Per-call detection settings, with the same meaning and defaults as Ultralytics' ``predict``.

    Attributes:
        conf: Minimum confidence of a reported box, in [0, 1].
        iou: IoU above which non-maximum suppression drops the weaker box, in [0, 1].
        imgsz: Longest side of the network input, a multiple of 32 up to ``MAX_IMGSZ`` (4096).
        max_det: Most boxes reported per image.
        half: Reduced precision: FP16 on CUDA (PyTorch); the CPU's BF16 with OpenVINO; ignored with a warning by
            PyTorch on a CPU and by ONNX and TorchScript exports, which keep the precision they were exported with.
        agnostic_nms: Suppress overlapping boxes across classes (one box, one label).
        batch: Images per forward pass for sequences (folders, videos); ``batch × imgsz²`` is at most
            ``MAX_BATCH_PIXELS`` (4096², so 40 images at imgsz 640).

    Example:
        >>> InferenceSettings(conf=0.1).replace(imgsz=320).imgsz
        320
    """

    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    max_det: int = 300
    half: bool = False
    agnostic_nms: bool = False
    batch: int = 1

    def __post_init__(self) -> None:
        for name in ("conf", "iou"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}: use e.g. 0.25")
        check_sizes(imgsz=self.imgsz, batch=self.batch, max_det=self.max_det)

    def replace(self, **changes: Any) -> InferenceSettings:
        """Return a validated copy with some settings changed; ``None`` values keep the current setting."""
        changes = {key: value for key, value in changes.items() if value is not None}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            valid = ", ".join(f.name for f in dataclasses.fields(self))
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid settings are: {valid}")
        return dataclasses.replace(self, **changes)


def check_sizes(*, imgsz: int, batch: int, **counts: int | None) -> None:
    """The size checks that inference and export share: positive integers, ``imgsz`` a multiple of 32 up to
    ``MAX_IMGSZ``, and ``batch`` × imgsz² at most ``MAX_BATCH_PIXELS``; ``None`` counts are not checked.

    Example:
        >>> check_sizes(imgsz=640, batch=8, max_det=300)
    """
    for name, value in {"imgsz": imgsz, "batch": batch, **counts}.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if imgsz % 32:
        raise ConfigError(f"imgsz must be a multiple of 32 (the model's largest stride), got {imgsz}")
    if imgsz > MAX_IMGSZ:
        raise ConfigError(
            f"imgsz {imgsz} is more than the maximum of {MAX_IMGSZ}: the network would need more memory "
            f"than a 24 GB machine has; use e.g. 1280"
        )
    if batch * imgsz**2 > MAX_BATCH_PIXELS:
        most = MAX_BATCH_PIXELS // imgsz**2
        raise ConfigError(
            f"batch {batch} at imgsz {imgsz} is too large: batch × imgsz² may be at most "
            f"{MAX_IMGSZ}² (batch ≤ {most} at imgsz {imgsz}) to fit in memory; use a batch of {min(most, 8)}"
        )
