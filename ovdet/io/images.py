"""Still images in, BGR uint8 arrays out: paths, arrays and PIL images; grayscale, RGBA and 16-bit converted."""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError

__all__ = ["IMAGE_SUFFIXES", "expand_image_source", "load_image", "to_bgr8"]

IMAGE_SUFFIXES = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm"})


def to_bgr8(image: np.ndarray, where: str = "image") -> np.ndarray:
    """Convert a grayscale, BGR or BGRA array of 8 or 16 bits to contiguous HxWx3 BGR uint8.

    Example:
        >>> to_bgr8(np.zeros((4, 4), np.uint16)).shape
        (4, 4, 3)
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"{where} has pixel type {image.dtype}: pass uint8 (or uint16) BGR pixels")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise SourceError(f"{where} has shape {image.shape}: expected HxW, HxWx3 (BGR) or HxWx4 (BGRA)")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def load_image(source: Any) -> np.ndarray:
    """Read a path, a numpy BGR array or a PIL image as HxWx3 BGR uint8.

    Raises:
        SourceError: the file is missing, empty, or not a decodable image.
    """
    if isinstance(source, np.ndarray):
        return to_bgr8(source, "array")
    if _is_pil(source):
        return _from_pil(source)
    if not isinstance(source, (str, os.PathLike)):
        kind = type(source).__name__
        raise SourceError(f"cannot read an image from a {kind}: pass a path, a numpy array or a PIL image")
    path = Path(source)
    if not path.is_file():
        raise SourceError(f"image {path} does not exist: check the path")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise SourceError(f"image {path} is empty (0 bytes): re-copy or re-export it")
    # IMREAD_COLOR, as Ultralytics reads files: grayscale, alpha and 16-bit come out as 8-bit BGR, EXIF-rotated
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"image {path} could not be decoded: the file is corrupt or not an image")
    return image


def expand_image_source(source: str | os.PathLike[str]) -> list[Path]:
    """List the image files named by a file, a folder (sorted, not recursive) or a glob pattern.

    Files in a folder or glob that are not images are skipped with a warning.

    Raises:
        SourceError: nothing matches, or the folder holds no images.
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file())
        where = f"folder {path}"
    elif glob.has_magic(text):
        candidates = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        where = f"pattern {text!r}"
    else:
        raise SourceError(f"source {path} does not exist: pass an image, a folder or a glob such as 'photos/*.jpg'")
    images = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [p.name for p in candidates if p.suffix.lower() not in IMAGE_SUFFIXES]
    if skipped:
        shown = ", ".join(skipped[:5]) + (", …" if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} non-image file(s) in {where}: {shown}", UserWarning, stacklevel=2)
    if not images:
        raise SourceError(f"{where} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _is_pil(source: Any) -> bool:
    return type(source).__module__.startswith("PIL.")


def _from_pil(image: Any) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image)
        if array.dtype != np.uint16:
            array = np.clip(array, 0, 65535).astype(np.uint16)
        return to_bgr8(array, "PIL image")
    rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
