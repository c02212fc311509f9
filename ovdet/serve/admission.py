"""What a request may cost, known before it is admitted: pixels from the image's header or the video stream's
declared size (nothing is decoded to find out), and memory held by the images decoded for requests not yet
answered, against one budget.

An image upload reserves ``2 × width × height × 3`` bytes (Pillow's RGB copy and the BGR array exist together while
it decodes) from before decoding until its answer is sent; a request that does not fit waits for nothing: it is
refused with 503 and Retry-After. A video's frames are decoded by FFmpeg onto the stream's declared canvas (a GIF's
logical screen: a frame larger than the screen is clipped to it), so the declared size bounds every frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OvdetError, SourceError
from ..io.images import ImageTooLarge, encoded_image_size

__all__ = ["MAX_VIDEO_PIXELS", "MemoryBudget", "OverBudget", "check_video_size", "image_cost"]

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


def check_video_size(path: Path, name: str, max_pixels: int) -> None:
    """Refuse a video whose stream declares frames of more than ``max_pixels``, before any frame is decoded.

    Raises:
        ImageTooLarge: the declared frame size is over the limit.
        SourceError: the file is not a video FFmpeg can open.
    """
    import av

    try:
        with av.open(str(path)) as container:
            sizes = [(s.codec_context.width, s.codec_context.height) for s in container.streams.video]
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"video {name} could not be opened ({exc}): check that it is a video") from None
    for width, height in sizes:
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"video {name} has {width}×{height} frames: more than {max_pixels:,} pixels per frame, this "
                f"server's limit (--max-video-pixels): downscale it"
            )
