"""OpenVINO, imported with its usage telemetry off: every OpenVINO import in ovdet goes through here.

``import openvino`` (through ``openvino.tools.ovc``) and ``convert_model`` send usage events to Google Analytics
via the ``openvino_telemetry`` package, unless a consent file in the user's home folder says no. OpenVINO falls
back to its own no-op stub when that package cannot be imported, so ovdet makes it unimportable in its process
before the first OpenVINO import: no lookup, no connection, nothing written to the home folder.
"""

from __future__ import annotations

import sys
from types import ModuleType

from .errors import missing_dependency

__all__ = ["import_openvino"]


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
