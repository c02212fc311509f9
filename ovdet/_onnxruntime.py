"""onnxruntime, imported with its telemetry off: every onnxruntime import in ovdet goes through here.

``ORT_DISABLE_TELEMETRY=1`` (set when ovdet is imported, see :mod:`ovdet._environment`) keeps onnxruntime's 1DS
uploader from starting: without it, a session writes a device id under ``$HOME`` and looks up Microsoft's telemetry
host within seconds. Its API switch is turned off too, where this onnxruntime has it.
"""

from __future__ import annotations

from types import ModuleType

from ._environment import set_library_defaults

__all__ = ["import_onnxruntime"]


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module with telemetry off; raises :class:`ImportError` if it is not installed.

    Example:
        >>> onnxruntime = import_onnxruntime()  # doctest: +SKIP
    """
    set_library_defaults()
    import onnxruntime

    if hasattr(onnxruntime, "disable_telemetry_events"):
        onnxruntime.disable_telemetry_events()
    return onnxruntime
