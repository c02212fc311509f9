"""Instance masks from a segmentation head's prototypes and coefficients, in the original image's pixels.

The same steps as Ultralytics' ``process_mask_native`` (its ``retina_masks=True`` path), in numpy and OpenCV:
mask logits at the prototypes' resolution, upsampled just enough to crop the letterbox padding on whole pixels,
cropped, resized to the original image, thresholded at zero and cut to each box.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["instance_masks"]


def instance_masks(
    prototypes: np.ndarray, coefficients: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Boolean masks ``(N, H, W)`` of ``N`` detections in an original image of ``shape`` ``(H, W)``.

    Args:
        prototypes: ``(M, h, w)`` mask prototypes of the letterboxed input (a quarter of its size).
        coefficients: ``(N, M)`` mask coefficients of the detections.
        boxes: ``(N, 4)`` xyxy boxes in original-image pixels; each mask is cut to its box.
        shape: The original image's height and width.

    Example:
        >>> prototypes = np.ones((1, 4, 4), np.float32)
        >>> instance_masks(prototypes, np.ones((1, 1), np.float32), np.array([[0, 0, 8, 16.0]]), (16, 16)).sum()
        np.int64(128)
    """
    height, width = shape
    masks = np.zeros((len(coefficients), height, width), dtype=bool)
    if len(coefficients) == 0:
        return masks
    channels, proto_h, proto_w = prototypes.shape
    logits = (coefficients.astype(np.float32) @ prototypes.reshape(channels, -1)).reshape(-1, proto_h, proto_w)
    factor = _upsampling(proto_h, proto_w, height, width)
    top, bottom, left, right = _content(proto_h * factor, proto_w * factor, height, width)
    rows, columns = np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32)
    for index, (logit, (x1, y1, x2, y2)) in enumerate(zip(logits, boxes.astype(np.float32))):
        if factor > 1:
            logit = cv2.resize(logit, (proto_w * factor, proto_h * factor), interpolation=cv2.INTER_LINEAR)
        full = cv2.resize(logit[top:bottom, left:right], (width, height), interpolation=cv2.INTER_LINEAR)
        inside = ((rows >= y1) & (rows < y2))[:, None] & ((columns >= x1) & (columns < x2))[None, :]
        masks[index] = (full > 0) & inside
    return masks


def _upsampling(proto_h: int, proto_w: int, height: int, width: int) -> int:
    """The smallest factor (1, 2 or 4) at which the input's letterbox padding falls on whole prototype pixels."""
    gain = min(4 * proto_h / height, 4 * proto_w / width)
    pad = (4 * proto_h - max(round(height * gain), 1)) | (4 * proto_w - max(round(width * gain), 1))
    return 4 // math.gcd(4, pad | pad // 2)


def _content(mask_h: int, mask_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Rows and columns (top, bottom, left, right) of a letterboxed ``mask_h`` x ``mask_w`` map that hold the image."""
    gain = min(mask_h / height, mask_w / width)
    pad_w, pad_h = (mask_w - max(round(width * gain), 1)) / 2, (mask_h - max(round(height * gain), 1)) / 2
    top, left = round(pad_h - 0.1), round(pad_w - 0.1)
    return top, top + max(round(height * gain), 1), left, left + max(round(width * gain), 1)
