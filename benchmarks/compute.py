"""What the machine and the model can do: GEMM speed per precision, GFLOPs per frame, and the share of peak reached."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.configs import TEXT_DIM


def gemm_rates(precision: str, sizes: Sequence[int] = (1024, 2048), seconds: float = 0.5) -> dict[str, float]:
    """Matrix-multiply speed in GFLOP/s of each library here, at each size: the best of repeated products.

    ``precision`` is ``"fp32"`` (PyTorch, NumPy, OpenVINO), ``"bf16"`` (PyTorch, OpenVINO) or ``"int8"`` (OpenVINO:
    a MatMul between FakeQuantize nodes, which its CPU plugin runs as a u8×s8 GEMM, VNNI/AMX where present; rates
    are then GOP/s); OpenVINO is left out where it is not installed.

    Example:
        >>> sorted(gemm_rates("fp32", sizes=(256,), seconds=0.05))  # doctest: +SKIP
        ['numpy 256', 'openvino 256', 'torch 256']
    """
    rates = {}
    for size in sizes:
        for library, product in _gemm_products(precision, size).items():
            rates[f"{library} {size}"] = _best_rate(product, 2 * size**3, seconds)
    return rates


def _gemm_products(precision: str, size: int) -> dict[str, Callable[[], object]]:
    import importlib.util

    import torch

    if precision == "int8":
        return {"openvino": _openvino_int8_matmul(size)} if importlib.util.find_spec("openvino") is not None else {}
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    products: dict[str, Callable[[], object]] = {"torch": lambda: torch.matmul(a, b)}
    if precision == "fp32":
        x, y = a.numpy(), b.numpy()
        products["numpy"] = lambda: x @ y
    if importlib.util.find_spec("openvino") is not None:
        products["openvino"] = _openvino_matmul(precision, size)
    return products


def _openvino_matmul(precision: str, size: int) -> Callable[[], object]:
    """A compiled ``size``² MatMul on the CPU in ``precision`` (OpenVINO's GEMM beats PyTorch's on some CPUs)."""
    import openvino
    import openvino.opset13 as ops

    left = ops.parameter([size, size], openvino.Type.f32)
    right = ops.constant(np.random.default_rng(0).random((size, size), np.float32))
    model = openvino.Model([ops.matmul(left, right, False, False)], [left])
    config = {"INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision], "PERFORMANCE_HINT": "LATENCY"}
    request = openvino.Core().compile_model(model, "CPU", config).create_infer_request()
    data = np.random.default_rng(1).random((size, size), np.float32)
    return lambda: request.infer({0: data})


def _openvino_int8_matmul(size: int) -> Callable[[], object]:
    """A compiled ``size``² MatMul of FakeQuantized inputs: what an NNCF INT8 model's convolutions become."""
    import openvino
    import openvino.opset13 as ops

    def scalar(value: float):
        return ops.constant(np.array(value, np.float32))

    left = ops.parameter([size, size], openvino.Type.f32)
    activations = ops.fake_quantize(left, scalar(0), scalar(1), scalar(0), scalar(1), 256)
    weights = ops.constant(np.random.default_rng(0).uniform(-1, 1, (size, size)).astype(np.float32))
    quantized = ops.fake_quantize(weights, scalar(-1), scalar(1), scalar(-1), scalar(1), 255)
    model = openvino.Model([ops.matmul(activations, quantized, False, False)], [left])
    request = openvino.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    data = np.random.default_rng(1).random((size, size), np.float32)
    return lambda: request.infer({0: data})


def _best_rate(product: Callable[[], object], flops: int, seconds: float) -> float:
    product()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        product()
        best = max(best, flops / (time.perf_counter() - started) / 1e9)
    return best


def machine_gemm(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    """:func:`gemm_rates` for ``fp32``, ``bf16`` and ``int8``.

    Example:
        >>> sorted(machine_gemm(seconds=0.05))  # doctest: +SKIP
        ['bf16', 'fp32', 'int8']
    """
    return {precision: gemm_rates(precision, seconds=seconds) for precision in ("fp32", "bf16", "int8")}


def machine_peaks(*measurements: dict[str, dict[str, float]]) -> dict[str, float]:
    """The machine's peak per precision: the fastest GEMM of any library, size and measurement.

    Example:
        >>> machine_peaks({"fp32": {"torch 2048": 90.0, "numpy 2048": 98.0}}, {"fp32": {"torch 2048": 95.0}})
        {'fp32': 98.0}
    """
    peaks: dict[str, float] = {}
    for measurement in measurements:
        for precision, rates in measurement.items():
            peaks[precision] = max(peaks.get(precision, 0.0), *rates.values())
    return peaks


class ModelFlops:
    """GFLOPs of one forward pass per image of a YOLO-World ``.pt``, at a given input shape and class count.

    Counted by Ultralytics' ``get_flops`` (THOP) on the fused model with ``slots`` text embeddings; cached.

    Example:
        >>> ModelFlops("weights/yolov8s-worldv2.pt").gflops(384, 640, 3)  # doctest: +SKIP
        19.14
    """

    def __init__(self, weights: str | os.PathLike[str]) -> None:
        self.weights = Path(weights)
        self._model = None
        self._cache: dict[tuple[int, int, int], float] = {}

    def gflops(self, height: int, width: int, slots: int) -> float:
        key = (height, width, slots)
        if key not in self._cache:
            self._cache[key] = self._count(*key)
        return self._cache[key]

    def _count(self, height: int, width: int, slots: int) -> float:
        import torch
        from ultralytics.utils.torch_utils import get_flops

        if self._model is None:
            from ultralytics import YOLOWorld

            self._model = YOLOWorld(str(self.weights)).model.fuse(verbose=False).eval()
        text = torch.nn.functional.normalize(torch.randn(1, slots, TEXT_DIM), dim=-1)
        self._model.txt_feats = text
        self._model.model[-1].nc = slots
        return float(get_flops(self._model, (height, width)))


def add_compute(rows: list[dict[str, Any]], flops: ModelFlops, peaks: dict[str, float]) -> None:
    """Add ``gflops_per_frame``, achieved ``gflops_per_s`` (end to end and during inference) and ``pct_of_peak``.

    Example:
        >>> add_compute(measured.rows, ModelFlops("yolov8s-worldv2.pt"), {"fp32": 200.0})  # doctest: +SKIP
        >>> measured.rows[0]["pct_of_peak"]  # doctest: +SKIP
        44.6
    """
    for row in rows:
        if "error" in row:
            continue
        per_frame = flops.gflops(*row["input_shape"], row["slots"])
        peak = peaks.get(row["precision"])
        inference_seconds = row["ms_per_frame"]["inference"] / 1000
        row["gflops_per_frame"] = per_frame
        row["gflops_per_s"] = per_frame * row["fps"]
        row["inference_gflops_per_s"] = per_frame / inference_seconds if inference_seconds else None
        row["peak_gflops_per_s"] = peak
        row["pct_of_peak"] = 100 * row["gflops_per_s"] / peak if peak else None
        row["inference_pct_of_peak"] = (
            100 * row["inference_gflops_per_s"] / peak if peak and row["inference_gflops_per_s"] else None
        )
