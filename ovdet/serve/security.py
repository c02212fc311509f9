"""What the server lets in: who (a token), from where (the bind address), and how much (bytes, pixels, types).

The body limit is an ASGI middleware, so an upload over the limit is cut off while it arrives instead of being
read whole first.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import UsageError
from ..io.images import MAX_IMAGE_PIXELS
from .admission import MAX_VIDEO_PIXELS

__all__ = ["BodyLimit", "Limits", "check_bind", "media_type", "token_matches"]

MB = 1 << 20
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"})


@dataclass(frozen=True)
class Limits:
    """Sizes the server accepts: an image upload or JSON request, a video upload (jobs), pixels per image and per
    video frame, and the memory that images decoded for requests not yet answered may hold in all."""

    upload_bytes: int = 20 * MB
    video_bytes: int = 500 * MB
    pixels: int = MAX_IMAGE_PIXELS
    video_pixels: int = MAX_VIDEO_PIXELS
    queued_bytes: int = 1024 * MB


def is_loopback(host: str) -> bool:
    """``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve past this machine without a token: anyone on the network could run the model."""
    if not token and not is_loopback(host):
        raise UsageError(
            f"--host {host} serves beyond this machine, so a token is required: pass --token TOKEN or set "
            f"OVDET_TOKEN, or serve on 127.0.0.1"
        )


def token_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer TOKEN``, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` header, lower case: ``image/png; x=y`` → ``image/png``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class BodyLimit:
    """Answer 413 for a request body over its route's limit: at once from ``Content-Length``, else while it streams.

    Args:
        app: The application behind it.
        limit_for: The most bytes a request to a path may send.
    """

    def __init__(self, app: ASGIApp, limit_for) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # raised inside the route, where the app turns it into the 413 response
                    raise HTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": _too_large_text(limit)}, status_code=413)


def _too_large_text(limit: int) -> str:
    return f"the request body is over {limit / MB:g} MB, this server's limit: send a smaller file"
