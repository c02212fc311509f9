"""What a request may cost, known before it is admitted: pixels from the image's header or the video stream's
declared size (nothing is decoded to find out), and memory held by the images decoded for requests not yet
answered, against one budget.

An image upload reserves ``2 × width × height × 3`` bytes (Pillow's RGB copy and the BGR array exist together while
it decodes) from before decoding until its answer is sent; a request that does not fit waits for nothing: it is
refused with 503 and Retry-After. A video's frames are decoded by FFmpeg onto the stream's declared canvas (a GIF's
logical screen: a frame larger than the screen is clipped to it), so the declared size bounds every frame; a GIF's
screen and frame sizes are also read from its blocks, as FFmpeg reports a screen too large for it as 0×0.
"""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..core.errors import OvdetError, SourceError
from ..io.images import ImageTooLarge, encoded_image_size

__all__ = ["MAX_VIDEO_PIXELS", "MemoryBudget", "OverBudget", "check_video_size", "gif_sizes", "image_cost"]

MB = 1 << 20
# 4K UHD. A job holds about 3 × batch + 2 frames at once (read ahead, in inference, queued for the outputs):
# 330 MB at the default batch of 4.
MAX_VIDEO_PIXELS = 3840 * 2160


class OverBudget(OvdetError, RuntimeError):
    """The images waiting for an answer hold as much memory as the server allows: try again shortly."""


class MemoryBudget:
    """Bytes reserved by requests in flight, at most ``limit`` in all.

    Example:
        >>> budget = MemoryBudget(100)
        >>> with budget.hold(60):
        ...     budget.held
        60
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Reserve ``nbytes`` for the ``with`` block.

        Raises:
            ImageTooLarge: ``nbytes`` is more than the whole budget (it would never fit).
            OverBudget: it does not fit beside what others hold now.
        """
        if nbytes > self.limit:
            raise ImageTooLarge(
                f"the image needs {nbytes / MB:.0f} MB to decode, more than this server's budget of "
                f"{self.limit / MB:g} MB (--max-queued-mb): send a smaller image"
            )
        with self._lock:
            if self.held + nbytes > self.limit:
                raise OverBudget("the server is busy (its memory budget for waiting images is full): retry shortly")
            self.held += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.held -= nbytes


def image_cost(data: bytes, name: str, max_pixels: int) -> int:
    """Bytes an upload will take to decode, from its header; refuses one over ``max_pixels`` first.

    An upload whose header Pillow cannot read costs nothing here: decoding it fails at once.

    Raises:
        ImageTooLarge: more than ``max_pixels`` pixels.
    """
    size = encoded_image_size(data)
    if size is None:
        return 0
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image {name} is {width}×{height} pixels: more than {max_pixels:,}, this server's limit")
    return 2 * width * height * 3


def check_video_size(path: Path, name: str, max_pixels: int) -> tuple[int, int]:
    """Refuse a video whose stream declares frames of more than ``max_pixels``, before any frame is decoded; a GIF's
    logical screen and every frame's size are read from its blocks (FFmpeg reports a huge screen as 0×0). Returns
    the (width, height) of the first video stream, the one a job reads.

    Raises:
        ImageTooLarge: the declared frame size is over the limit.
        SourceError: the file is not a video FFmpeg can open, or declares no frame size.
    """
    import av

    screens = gif_sizes(path)
    try:
        with av.open(str(path)) as container:
            streams = [(s.codec_context.width, s.codec_context.height) for s in container.streams.video]
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"video {name} could not be opened ({exc}): check that it is a video") from None
    for width, height in screens + streams:
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"video {name} has {width}×{height} frames: more than {max_pixels:,} pixels per frame, this "
                f"server's limit (--max-video-pixels): downscale it"
            )
        if width * height == 0:
            raise SourceError(f"video {name} declares frames of {width}×{height} pixels: send a playable video")
    if not streams:
        raise SourceError(f"{name} holds no video stream: send a video file")
    return streams[0]


def gif_sizes(path: Path) -> list[tuple[int, int]]:
    """A GIF's logical screen and the extent of each frame (from the image descriptors; no pixel is decoded), or
    nothing for another file. Reading stops at the trailer or at the first malformed block."""
    sizes: list[tuple[int, int]] = []
    with open(path, "rb") as file:
        head = file.read(13)
        if len(head) < 13 or head[:6] not in (b"GIF87a", b"GIF89a"):
            return sizes
        width, height, flags = struct.unpack("<HHB", head[6:11])
        sizes.append((width, height))
        _skip_color_table(file, flags)
        while (kind := file.read(1)) in (b"\x21", b"\x2c"):
            if kind == b"\x21":
                file.read(1)  # the extension's label
            else:
                descriptor = file.read(9)
                if len(descriptor) < 9:
                    break
                left, top, width, height, flags = struct.unpack("<HHHHB", descriptor)
                sizes.append((left + width, top + height))
                _skip_color_table(file, flags)
                file.read(1)  # LZW minimum code size
            _skip_sub_blocks(file)
    return sizes


def _skip_color_table(file: BinaryIO, flags: int) -> None:
    if flags & 0x80:
        file.seek(3 << ((flags & 0x07) + 1), io.SEEK_CUR)


def _skip_sub_blocks(file: BinaryIO) -> None:
    while (length := file.read(1)) and length != b"\x00":
        file.seek(length[0], io.SEEK_CUR)
