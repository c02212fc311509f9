"""Where the libraries ovdet runs keep their own files, and their telemetry: set once, when ovdet is imported.

Ultralytics writes ``settings.json`` into its config folder and matplotlib (which it imports) a font cache into
its own, both under ``$HOME`` by default; onnxruntime writes a device id under ``$HOME`` and sends usage events to
Microsoft. Before any of them is imported, ovdet points both folders into its cache folder and turns
onnxruntime's telemetry off, unless the user set the variable: nothing is written under ``$HOME`` that the user
did not ask for, and nothing is sent.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "set_library_defaults"]


def cache_dir() -> Path:
    """ovdet's cache folder: ``$OVDET_CACHE_DIR``, else ``$XDG_CACHE_HOME/ovdet`` or ``~/.cache/ovdet``.

    Example:
        >>> cache_dir().name  # doctest: +SKIP
        'ovdet'
    """
    explicit = os.environ.get("OVDET_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ovdet"


def set_library_defaults() -> None:
    """Ultralytics' and matplotlib's folders inside ovdet's cache folder, onnxruntime's telemetry off; a variable
    the user set is kept.

    Example:
        >>> set_library_defaults()
    """
    cache = cache_dir()
    for name, value in (
        ("YOLO_CONFIG_DIR", cache),  # Ultralytics keeps its settings.json in an Ultralytics/ folder of it
        ("MPLCONFIGDIR", cache / "matplotlib"),
        ("ORT_DISABLE_TELEMETRY", "1"),  # read when onnxruntime starts: no uploader, no device id, no lookups
    ):
        os.environ.setdefault(name, str(value))
