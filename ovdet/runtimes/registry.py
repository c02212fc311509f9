"""Every runtime ovdet runs, in one table: what it loads, where its code lives and what to install for it.

A new runtime is one :class:`Runtime` row here and one module beside this one; the ``--runtime`` and ``--format``
choices, the export formats, the file suffixes and the text-tower runtimes all come from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RUNTIMES",
    "Runtime",
    "export_formats",
    "format_suffix",
    "pt_runtimes",
    "runtime_for_format",
    "runtime_for_suffix",
    "runtime_named",
    "text_runtimes",
]


@dataclass(frozen=True)
class Runtime:
    """One runtime.

    Attributes:
        name: What ``backend.name`` reports and ``--runtime`` takes, e.g. ``"onnxruntime"``.
        format: The ``ovdet export`` format it loads, e.g. ``"onnx"``; ``None`` for the runtime of ``.pt`` files.
        suffixes: Model file suffixes it loads; the first is the one an export writes.
        module: The module holding its backend class, imported only when it loads a model.
        class_name: Its backend class.
        extra: The pip extra that installs it: ``pip install '.[<extra>]'`` in ovdet's folder.
        text_runtime: The runtime its exported CLIP text tower runs on (``"auto"``: whichever is installed);
            ``None`` where prompts are encoded by CLIP in PyTorch.
        runs_pt: Whether a ``.pt`` can run on it (``--runtime``); all but torch convert the ``.pt`` once.
    """

    name: str
    format: str | None
    suffixes: tuple[str, ...]
    module: str
    class_name: str
    extra: str
    text_runtime: str | None
    runs_pt: bool = False


RUNTIMES = (
    Runtime(
        name="torch",
        format=None,
        suffixes=(".pt",),
        module="ovdet.runtimes.torch",
        class_name="TorchBackend",
        extra="torch",
        text_runtime=None,
        runs_pt=True,
    ),
    Runtime(
        name="onnxruntime",
        format="onnx",
        suffixes=(".onnx",),
        module="ovdet.runtimes.onnx",
        class_name="OnnxBackend",
        extra="onnx",
        text_runtime="onnxruntime",
        runs_pt=True,
    ),
    Runtime(
        name="openvino",
        format="openvino",
        suffixes=(".xml",),
        module="ovdet.runtimes.openvino",
        class_name="OpenVinoBackend",
        extra="openvino",
        text_runtime="openvino",
        runs_pt=True,
    ),
    Runtime(
        name="torchscript",
        format="torchscript",
        suffixes=(".torchscript",),
        module="ovdet.runtimes.torchscript",
        class_name="TorchScriptBackend",
        extra="torch",
        text_runtime="auto",
    ),
    Runtime(
        name="tensorrt",
        format="engine",
        suffixes=(".engine",),
        module="ovdet.runtimes.tensorrt",
        class_name="TensorRTBackend",
        extra="tensorrt",
        text_runtime="auto",
    ),
)


def runtime_named(name: str) -> Runtime | None:
    """The runtime called ``name`` (``backend.name``), or ``None``.

    Example:
        >>> runtime_named("onnxruntime").format
        'onnx'
    """
    return next((runtime for runtime in RUNTIMES if runtime.name == name), None)


def runtime_for_format(format: str) -> Runtime | None:
    """The runtime that loads exports of ``format``, or ``None``.

    Example:
        >>> runtime_for_format("engine").name
        'tensorrt'
    """
    return next((runtime for runtime in RUNTIMES if runtime.format == format), None)


def runtime_for_suffix(suffix: str) -> Runtime | None:
    """The runtime that loads files ending in ``suffix`` (``".onnx"``), or ``None``."""
    return next((runtime for runtime in RUNTIMES if suffix in runtime.suffixes), None)


def export_formats() -> tuple[str, ...]:
    """Every ``ovdet export`` format: ``("onnx", "openvino", "torchscript", "engine")``."""
    return tuple(runtime.format for runtime in RUNTIMES if runtime.format is not None)


def format_suffix(format: str) -> str:
    """The suffix an export of ``format`` writes its graph with, e.g. ``".xml"`` for ``"openvino"``."""
    runtime = runtime_for_format(format)
    if runtime is None:
        raise KeyError(format)
    return runtime.suffixes[0]


def pt_runtimes() -> tuple[str, ...]:
    """The runtimes a ``.pt`` can run on: ``("torch", "onnxruntime", "openvino")``."""
    return tuple(runtime.name for runtime in RUNTIMES if runtime.runs_pt)


def text_runtimes() -> tuple[str, ...]:
    """What an exported text tower can run on: ``"auto"`` and each runtime that runs one itself."""
    named = (runtime.text_runtime for runtime in RUNTIMES if runtime.text_runtime not in (None, "auto"))
    return ("auto", *dict.fromkeys(named))
