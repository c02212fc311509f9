"""Exports on an NVIDIA GPU: TensorRT engines, onnxruntime's CUDA provider and TorchScript on CUDA.

Skipped where no CUDA GPU is present (the CPU-only CI); run them on a GPU machine with ``pytest -m gpu``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet import OpenVocabDetector
from tests.conftest import PEOPLE, read_frames
from tests.export.test_export import CLASSES, CONF, IMGSZ, MORE_CLASSES, assert_same_detections

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu_detector(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenVocabDetector]:
    """The PyTorch path on CUDA in true FP32 (TF32 would move scores by more than the export tolerances)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield OpenVocabDetector(model_path, device="cuda", imgsz=IMGSZ, cache_dir=tmp_path_factory.mktemp("gpu-cache"))
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def frames(bottle_frames: list[np.ndarray]) -> list[np.ndarray]:
    return [*bottle_frames[:3], *read_frames(PEOPLE, 1)]


def _assert_matches_pytorch(gpu_detector: OpenVocabDetector, exported: OpenVocabDetector, classes, frames) -> None:
    gpu_detector.set_classes(classes)
    exported.set_classes(classes)
    for want, got in zip(gpu_detector.detect(frames, conf=CONF), exported.detect(frames, conf=CONF)):
        assert_same_detections(want, got)


@pytest.mark.parametrize("dynamic_vocab", [False, True], ids=["fixed", "dynamic"])
def test_tensorrt_engine_matches_pytorch(dynamic_vocab: bool, gpu_detector, frames, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt")
    gpu_detector.set_classes(CLASSES)
    options = {"dynamic_vocab": True, "max_classes": 5} if dynamic_vocab else {}
    model = gpu_detector.export("engine", batch=len(frames), output=tmp_path / "engine", **options)
    exported = OpenVocabDetector(model, device="cuda", imgsz=IMGSZ)
    assert exported.backend.name == "tensorrt"
    for classes in [MORE_CLASSES[:1], MORE_CLASSES] if dynamic_vocab else [CLASSES]:
        _assert_matches_pytorch(gpu_detector, exported, classes, frames)


def test_tensorrt_fp16_engine_runs(gpu_detector, frames, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt")
    gpu_detector.set_classes(CLASSES)
    model = gpu_detector.export("engine", half=True, output=tmp_path / "engine16")
    exported = OpenVocabDetector(model, device="cuda", imgsz=IMGSZ)
    detections = exported.detect(frames[0], conf=CONF)
    assert exported.backend.precision == "fp16" and len(detections) > 0
    assert set(detections.data["class_name"]) <= set(CLASSES)


def test_onnxruntime_cuda_provider_matches_pytorch(gpu_detector, frames, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
    model = gpu_detector.export("onnx", dynamic_vocab=True, max_classes=5, output=tmp_path / "onnx")
    exported = OpenVocabDetector(model, device="cuda", imgsz=IMGSZ)
    assert exported.backend.device == "cuda:0"
    _assert_matches_pytorch(gpu_detector, exported, CLASSES, frames)


def test_torchscript_on_cuda_matches_pytorch(gpu_detector, frames, tmp_path: Path) -> None:
    gpu_detector.set_classes(CLASSES)
    model = gpu_detector.export("torchscript", output=tmp_path / "torchscript")
    exported = OpenVocabDetector(model, device="cuda", imgsz=IMGSZ)
    _assert_matches_pytorch(gpu_detector, exported, CLASSES, frames)


def test_fp16_onnx_export_takes_fp16_inputs(gpu_detector, frames, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
    gpu_detector.set_classes(CLASSES)
    model = gpu_detector.export("onnx", half=True, output=tmp_path / "onnx16")
    exported = OpenVocabDetector(model, device="cuda", imgsz=IMGSZ)
    assert exported.backend.input_dtype is np.float16
    assert len(exported.detect(frames[0], conf=CONF)) > 0
