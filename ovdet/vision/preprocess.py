"""Letterboxing, exactly as Ultralytics does it, so boxes map back to the same pixels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox", "letterbox_batch"]

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How one image was placed in the network input: per-axis gain and left/top padding."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int
    width: int
    height: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` xyxy boxes from network-input pixels to original-image pixels, clipped to the image."""
        boxes = boxes.copy()
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - self.pad_x) / self.gain_x).clip(0, self.width)
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - self.pad_y) / self.gain_y).clip(0, self.height)
        return boxes


def target_shape(shapes: Sequence[tuple[int, int]], imgsz: int, stride: int, rect: bool) -> tuple[int, int]:
    """Network input ``(height, width)``: the square ``imgsz``, or the smallest stride multiple that fits (rect)."""
    if not rect or len(set(shapes)) != 1:
        return imgsz, imgsz
    height, width = shapes[0]
    gain = min(imgsz / height, imgsz / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    return new_h + (imgsz - new_h) % stride, new_w + (imgsz - new_w) % stride


def letterbox(image: np.ndarray, shape: tuple[int, int], out: np.ndarray) -> Letterbox:
    """Resize ``image`` (HxWx3 BGR uint8) into ``out`` (shape HxWx3) keeping its aspect ratio, padding with 114."""
    height, width = image.shape[:2]
    gain = min(shape[0] / height, shape[1] / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    pad_w, pad_h = (shape[1] - new_w) / 2, (shape[0] - new_h) / 2
    left, top = round(pad_w - 0.1), round(pad_h - 0.1)
    if (new_h, new_w) != (height, width):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out[:] = PAD_VALUE
    out[top : top + new_h, left : left + new_w] = image
    return Letterbox(new_w / width, new_h / height, left, top, width, height)


def letterbox_batch(
    images: Sequence[np.ndarray], imgsz: int, stride: int, rect: bool, dtype: type = np.float32
) -> tuple[np.ndarray, list[Letterbox]]:
    """Turn BGR uint8 images into one ``(B, 3, H, W)`` RGB array in [0, 1], and how each was placed.

    Args:
        images: HxWx3 BGR uint8 arrays.
        imgsz: Longest side of the network input.
        stride: The model's largest stride; rect inputs are padded to a multiple of it.
        rect: Use the smallest rectangle instead of a square when all images share a shape (as Ultralytics
            does for PyTorch models).
        dtype: Output dtype (float32, or float16 for half-precision runtimes).

    Example:
        >>> batch, boxes = letterbox_batch([np.zeros((360, 640, 3), np.uint8)], 640, 32, rect=True)
        >>> batch.shape
        (1, 3, 384, 640)
    """
    shape = target_shape([image.shape[:2] for image in images], imgsz, stride, rect)
    canvas = np.empty((len(images), *shape, 3), dtype=np.uint8)
    placements = [letterbox(image, shape, canvas[i]) for i, image in enumerate(images)]
    batch = np.empty((len(images), 3, *shape), dtype=dtype)
    np.multiply(canvas[..., ::-1].transpose(0, 3, 1, 2), dtype(1 / 255), out=batch, casting="unsafe")
    return batch, placements
