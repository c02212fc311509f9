"""The configurations the benchmarks compare, the pairs whose detections must agree, and prompt lists of any size."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ovdet.bench import ULTRALYTICS, RunConfig

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

TEXT_DIM = 512  # YOLO-World's CLIP ViT-B/32 text embeddings


def prompts(count: int) -> list[str]:
    """``count`` distinct prompts: COCO's 80 names, then numbered phrasings of them.

    Example:
        >>> prompts(82)[-2:]
        ['person number 80', 'bicycle number 81']
    """
    names = list(COCO_NAMES)
    while len(names) < count:
        names.append(f"{COCO_NAMES[len(names) % len(COCO_NAMES)]} number {len(names)}")
    return names[:count]


def default_configs() -> list[RunConfig]:
    """Ultralytics PyTorch and OpenVINO (default precision, FP32 and INT8), and ovdet on each runtime and precision.

    The INT8 rows compute what they do not quantize in BF16 where the CPU has it (Ultralytics' default; ovdet with
    ``half``), so the two INT8 rows differ only in what each quantizes and how it runs.

    ``"ovdet default"`` (whatever ``OpenVocabDetector(model)`` picks) is included where the detector chooses its
    runtime itself (it takes ``runtime=``); the PyTorch row then asks for PyTorch explicitly.

    Example:
        >>> [config.label for config in default_configs()][:2]
        ['ultralytics torch', 'ultralytics openvino']
    """
    options = torch_options()
    configs = [
        RunConfig("ultralytics torch", ULTRALYTICS),
        RunConfig("ultralytics openvino", ULTRALYTICS, "openvino"),
        RunConfig("ultralytics openvino fp32", ULTRALYTICS, "openvino", {"openvino_precision": "f32"}),
        RunConfig("ultralytics openvino int8", ULTRALYTICS, "openvino", int8=True),
        RunConfig("ovdet torch", options=options),
        RunConfig("ovdet onnxruntime", export="onnx"),
        RunConfig("ovdet openvino fp32", export="openvino"),
        RunConfig("ovdet openvino reduced", export="openvino", options={"half": True}),
        RunConfig("ovdet openvino int8", export="openvino", options={"half": True}, int8=True),
    ]
    if options:
        configs.append(RunConfig("ovdet default"))
    return configs


def default_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """``(candidate, reference)`` pairs whose detections are compared, among the labels present.

    Example:
        >>> default_pairs(["ovdet torch", "ovdet onnxruntime"])
        [('ovdet onnxruntime', 'ovdet torch')]
    """
    pairs = [
        ("ovdet default", "ovdet torch"),
        ("ovdet openvino reduced", "ovdet openvino fp32"),
        ("ovdet openvino int8", "ovdet openvino fp32"),
        ("ultralytics openvino int8", "ultralytics openvino fp32"),
        ("ovdet openvino fp32", "ovdet torch"),
        ("ovdet onnxruntime", "ovdet torch"),
        ("ovdet torch", "ultralytics torch"),
        ("ultralytics openvino", "ultralytics openvino fp32"),
    ]
    return [(a, b) for a, b in pairs if a in labels and b in labels]


def torch_options() -> dict[str, Any]:
    """Keyword arguments that make ``OpenVocabDetector`` run PyTorch, where it can choose another runtime."""
    from ovdet.detector import OpenVocabDetector

    return {"runtime": "torch"} if "runtime" in inspect.signature(OpenVocabDetector).parameters else {}
