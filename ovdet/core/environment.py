"""Where the libraries ovdet runs keep their own files, and their telemetry: set once, when ovdet is imported.

Ultralytics writes ``settings.json`` into its config folder and matplotlib (which it imports) a font cache into
its own, both under ``$HOME`` by default; onnxruntime writes a device id under ``$HOME`` and sends usage events to
Microsoft. Before any of them is imported, ovdet points both folders into its cache folder and turns
onnxruntime's telemetry off, unless the user set the variable: nothing is written under ``$HOME`` that the user
did not ask for, and nothing is sent.

OpenVINO and onnxruntime are imported only through :func:`import_openvino` and :func:`import_onnxruntime`, which
keep their telemetry off: ``import openvino`` (through ``openvino.tools.ovc``) and ``convert_model`` send usage
events to Google Analytics via the ``openvino_telemetry`` package unless a consent file in the home folder says no;
OpenVINO falls back to its own no-op stub when that package cannot be imported, so ovdet makes it unimportable
before the first OpenVINO import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import missing_dependency

__all__ = ["cache_dir", "import_onnxruntime", "import_openvino", "set_library_defaults"]


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


def import_openvino(purpose: str) -> ModuleType:
    """The ``openvino`` module, with telemetry off; ``purpose`` completes the message if it is not installed.

    Example:
        >>> openvino = import_openvino("exporting to OpenVINO")  # doctest: +SKIP
    """
    sys.modules.setdefault("openvino_telemetry", None)  # None makes `import openvino_telemetry` fail
    try:
        import openvino
    except ImportError as exc:
        raise missing_dependency("openvino", "openvino", purpose) from exc
    return openvino


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module with telemetry off (its 1DS uploader would write a device id under ``$HOME`` and
    look up Microsoft's telemetry host); raises :class:`ImportError` if it is not installed.

    Example:
        >>> onnxruntime = import_onnxruntime()  # doctest: +SKIP
    """
    set_library_defaults()
    import onnxruntime

    if hasattr(onnxruntime, "disable_telemetry_events"):
        onnxruntime.disable_telemetry_events()
    return onnxruntime
