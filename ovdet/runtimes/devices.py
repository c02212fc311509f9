"""One reading of ``--device`` for every runtime: the syntax here, each runtime's own check of what it has.

Example:
    >>> parse_device("auto"), parse_device("1"), parse_device("cuda:1"), parse_device("tensorrt"), parse_device("GPU")
    (('auto', None), ('cuda', 1), ('cuda', 1), ('tensorrt', None), ('GPU', None))
"""

from __future__ import annotations

from ..core.errors import ConfigError

__all__ = ["parse_device"]

_INDEXED = ("cuda", "tensorrt")


def parse_device(device: str) -> tuple[str, int | None]:
    """``(kind, index)``: ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` with an optional index (``N`` alone is
    ``cuda:N``); any other word is returned as it is, for runtimes with device names of their own (OpenVINO's
    ``GPU``). A malformed index is a :class:`ConfigError`.
    """
    text = str(device).strip()
    if text.isdigit():
        return "cuda", int(text)
    kind, colon, index = text.partition(":")
    if kind.lower() in (*_INDEXED, "auto", "cpu") and not colon:
        return kind.lower(), None
    if kind.lower() in _INDEXED and index.isdigit():
        return kind.lower(), int(index)
    if kind.lower() in (*_INDEXED, "auto", "cpu"):
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N (N a GPU number) or tensorrt:N")
    return text, None
