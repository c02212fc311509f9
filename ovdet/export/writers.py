"""Write traced graphs in each runtime's format: ONNX, OpenVINO IR, TorchScript and TensorRT engines.

Every detector graph has a dynamic batch, height and width, so runtimes get the same minimum-rectangle letterbox
as PyTorch (a 16:9 frame at 640 runs at 640x384, not 640x640). Engines take any shape up to the exported size.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ..core.environment import import_openvino
from ..core.errors import ConfigError, ModelError, missing_dependency
from ..runtimes.artifact import IMAGES_INPUT, OUTPUT, PROTOTYPES, TEXT_INPUT

__all__ = ["write_engine", "write_onnx", "write_openvino", "write_text_tower", "write_torchscript"]

log = logging.getLogger(__name__)

OPSET = 18  # what Ultralytics exports with this torch; onnxruntime's CUDA provider lacks some opset-19+ kernels
ENGINE_WORKSPACE_BYTES = 4 << 30


def write_onnx(graph: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path, prototypes: bool = False) -> Path:
    """Trace a detector graph (``images`` [, ``text_embeddings``] → ``output0`` [, ``output1``: mask prototypes])
    into an ONNX file."""
    names = [IMAGES_INPUT, TEXT_INPUT][: len(example)]
    axes = {IMAGES_INPUT: {0: "batch", 2: "height", 3: "width"}, OUTPUT: {0: "batch", 2: "anchors"}}
    outputs = [OUTPUT]
    if prototypes:
        axes[PROTOTYPES] = {0: "batch", 2: "mask_height", 3: "mask_width"}
        outputs.append(PROTOTYPES)
    _trace_to_onnx(graph, example, path, names, axes, outputs)
    return path


def write_text_tower(graph: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace CLIP's text tower (``input_ids`` → ``text_features``) into an ONNX file with a dynamic batch."""
    axes = {"input_ids": {0: "texts"}, "text_features": {0: "texts"}}
    _trace_to_onnx(graph, (example,), path, ["input_ids"], axes, ["text_features"])
    return path


def _trace_to_onnx(
    graph: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    output_names: list[str],
) -> None:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise missing_dependency("onnx", "export", "exporting to ONNX") from exc
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python-side shape arithmetic, which the graph handles
        torch.onnx.export(
            graph,
            example,
            str(path),
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            dynamo=False,  # the TorchScript-based exporter: it keeps shape arithmetic dynamic without onnxscript
        )


def write_openvino(onnx_path: Path, xml_path: Path, half: bool, transform: Callable[[Any], Any] | None = None) -> Path:
    """Convert an ONNX detector graph to OpenVINO IR (``.xml`` + ``.bin``); ``half`` stores FP16 weights, and
    ``transform`` (e.g. INT8 quantization) rewrites the model before it is saved."""
    openvino = import_openvino("exporting to OpenVINO")
    model = openvino.convert_model(str(onnx_path))
    if transform is not None:
        model = transform(model)
    openvino.save_model(model, str(xml_path), compress_to_fp16=half)  # its default would compress FP32 exports too
    return xml_path


def write_torchscript(graph: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> Path:
    """Trace a detector graph into a TorchScript file."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, example, strict=False, check_trace=False)
        torch.jit.save(traced, str(path))
    return path


def write_engine(onnx_path: Path, engine_path: Path, *, imgsz: int, max_batch: int, half: bool) -> Path:
    """Build a TensorRT engine from an ONNX detector graph for batches up to ``max_batch`` and sizes up to ``imgsz``."""
    try:
        import tensorrt
    except ImportError as exc:
        raise missing_dependency("tensorrt", "tensorrt", "exporting TensorRT engines") from exc
    if int(tensorrt.__version__.split(".")[0]) < 10:
        raise ConfigError(
            f"TensorRT {tensorrt.__version__} is too old: install ovdet's tensorrt extra for TensorRT 10+ "
            f"(pip install '.[tensorrt]' in ovdet's folder)"
        )
    logger = tensorrt.Logger(tensorrt.Logger.WARNING)
    builder = tensorrt.Builder(logger)
    network = builder.create_network(0)
    parser = tensorrt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse the exported ONNX graph ({errors}): report this with your versions")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(tensorrt.MemoryPoolType.WORKSPACE, ENGINE_WORKSPACE_BYTES)
    _set_precision(tensorrt, config, half)
    profile = builder.create_optimization_profile()
    largest = (max_batch, 3, imgsz, imgsz)
    profile.set_shape(IMAGES_INPUT, (1, 3, 32, 32), largest, largest)
    config.add_optimization_profile(profile)
    log.info("building a TensorRT %s engine; this takes minutes", "FP16" if half else "FP32")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError("TensorRT could not build an engine from the exported graph: rerun with --verbose for its log")
    engine_path.write_bytes(bytes(serialized))
    return engine_path


def _set_precision(tensorrt: ModuleType, config: Any, half: bool) -> None:
    """FP16 kernels where allowed; an FP32 engine computes in FP32 (no TF32), as its metadata says."""
    flags = tensorrt.BuilderFlag
    if half and not hasattr(flags, "FP16"):
        raise ConfigError(
            f"TensorRT {tensorrt.__version__} no longer builds FP16 engines from FP32 graphs: export FP32, or use "
            f"TensorRT 10"
        )
    if half:
        config.set_flag(flags.FP16)
    elif hasattr(flags, "TF32"):
        config.clear_flag(flags.TF32)
