"""Still images in, BGR uint8 arrays out: paths, arrays and PIL images; grayscale, RGBA and 16-bit converted.

Files are decoded with Pillow, which reports damage as exceptions: OpenCV's decoders print libpng and libjpeg
messages on stderr. The pixels equal ``cv2.imread(path, cv2.IMREAD_COLOR)``'s (EXIF rotation applied, alpha
dropped, 16 bits scaled to 8), as Ultralytics reads files.
"""

from __future__ import annotations

import glob
import io
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import SourceError, printable

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "ImageTooLarge",
    "decode_image_bytes",
    "encoded_image_size",
    "expand_image_source",
    "load_image",
    "pillow_open",
    "to_bgr8",
]

IMAGE_SUFFIXES = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm"})
# 8192×8192 (67 megapixels, more than any phone or DSLR): 192 MiB per BGR copy. Reading a folder holds about
# 3 × batch + 12 frames at once (read ahead, in inference, queued for the outputs), so a folder of such images
# needs about 3 GB at the default batch and 7 GB at batch 8 — within a 24 GB machine. Checked from the header,
# before any pixel is decoded; Pillow's own bomb check starts above this (89 megapixels).
MAX_IMAGE_PIXELS = 8192 * 8192


class ImageTooLarge(SourceError):
    """An image has more pixels than the reader allows (known from its header, before decoding)."""


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
        SourceError: the file is missing, unreadable, empty, larger than ``MAX_IMAGE_PIXELS`` (checked from the
            header, before decoding) or not a decodable image.
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
    return _read_file(path)


def decode_image_bytes(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an encoded image held in memory (an upload) as HxWx3 BGR uint8, like :func:`load_image` a file.

    Raises:
        SourceError: ``data`` is empty, not a decodable image, or has more than ``max_pixels`` (from the header).

    Example:
        >>> decode_image_bytes(b"not an image", "upload")  # doctest: +SKIP
        SourceError: image upload could not be decoded: the file is corrupt or not an image
    """
    if not data:
        raise SourceError(f"image {name} is empty (0 bytes): send the image's bytes")
    return _decode(io.BytesIO(data), name, max_pixels)


def encoded_image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an encoded image's header, without decoding a pixel; ``None`` where Pillow cannot
    read the header (decoding it would fail too).

    Example:
        >>> encoded_image_size(b"not an image") is None
        True
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        return None  # decoding refuses it as too large
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return None


def _read_file(path: Path) -> np.ndarray:
    try:
        if path.stat().st_size == 0:
            raise SourceError(f"image {path} is empty (0 bytes): re-copy or re-export it")
    except PermissionError as exc:
        raise SourceError(f"image {path} cannot be read (permission denied): check the file's permissions") from exc
    return _decode(path, path, MAX_IMAGE_PIXELS)


def _decode(file: Path | io.BytesIO, path: Path | str, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 megapixels on, above ovdet's own limit: the warning means the image is too large.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _pillow_open()(file) as image:
                _check_size(path, image.size, max_pixels)
                ImageOps.exif_transpose(image, in_place=True)
                return _from_pil(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image {path} has more than {_limit_text()}") from exc
    except PermissionError as exc:
        raise SourceError(f"image {path} cannot be read (permission denied): check the file's permissions") from exc
    except UnidentifiedImageError as exc:
        raise SourceError(f"image {path} could not be decoded: the file is corrupt or not an image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"image {path} could not be decoded ({reason}): the file is corrupt or truncated") from exc


def _pillow_open() -> Callable[..., Image.Image]:
    """Pillow's own ``Image.open``.

    Importing Ultralytics replaces ``PIL.Image.open`` with a wrapper that, for a file Pillow cannot identify, tries
    to pip-install ``pi-heif`` and then fails with ``ModuleNotFoundError``; it keeps Pillow's as ``_image_open``.
    """
    original = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", None)
    return original if getattr(original, "__module__", None) == Image.__name__ else Image.open


def pillow_open(file: Path | str | io.BytesIO) -> Image.Image:
    """Open an image with Pillow's own ``Image.open`` (never Ultralytics' replacement, which pip-installs)."""
    return _pillow_open()(file)


def _check_size(path: Path | str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        limit = (
            _limit_text()
            if max_pixels == MAX_IMAGE_PIXELS
            else f"{max_pixels:,} pixels, this server's limit: downscale it"
        )
        raise ImageTooLarge(f"image {path} is {width}×{height} pixels: more than {limit}")


def _limit_text() -> str:
    return f"{MAX_IMAGE_PIXELS:,} pixels (8192×8192), the most ovdet reads: downscale it or cut it into tiles"


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
        where = f"folder {path}"
        try:
            candidates = sorted(p for p in path.iterdir() if p.is_file())
        except PermissionError as exc:
            raise SourceError(f"{where} cannot be read (permission denied): check its permissions") from exc
    elif glob.has_magic(text):
        candidates = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        where = f"pattern {text!r}"
    else:
        raise SourceError(f"source {path} does not exist: pass an image, a folder or a glob such as 'photos/*.jpg'")
    images = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [p.name for p in candidates if p.suffix.lower() not in IMAGE_SUFFIXES]
    if skipped:
        shown = ", ".join(skipped[:5]) + (", …" if len(skipped) > 5 else "")
        message = printable(f"skipped {len(skipped)} non-image file(s) in {where}: {shown}")  # names from the disk
        warnings.warn(message, UserWarning, stacklevel=2)
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
