"""Random-init YOLOE checkpoints (v8, 11, 26; detection and ``-seg``), built from Ultralytics' own YAMLs and saved
as Ultralytics saves them, recalibrated on real frames so that their scores and masks vary like a trained model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.weights_fixtures import (
    _seeded,
    letterbox_batch,
    random_text_features,
    read_calibration_frames,
    save_ultralytics_checkpoint,
)

YOLOE_SCALE = "n"  # the smallest: the tests compare ovdet with Ultralytics, which any size shows as well
YOLOE_FAMILIES = ("yoloe-v8", "yoloe-11", "yoloe-26")
YOLOE_HEAD_BIAS = -4.0  # with a logit scale of 1, frames of the bottle clip give hundreds of scores above 0.01


def yoloe_names(scale: str = YOLOE_SCALE) -> list[str]:
    """Every checkpoint the fixtures build, e.g. ``yoloe-11n`` and ``yoloe-11n-seg``."""
    return [f"{family}{scale}{suffix}" for family in YOLOE_FAMILIES for suffix in ("", "-seg")]


def build_yoloe_checkpoint(
    path: Path,
    name: str,
    calibration_frames: list[np.ndarray],
    imgsz: int = 320,
    head_bias: float = YOLOE_HEAD_BIAS,
    seed: int = 0,
) -> Path:
    """Build one YOLOE with random weights, recalibrate it on real frames, and save it as Ultralytics does.

    Args:
        path: Destination ``.pt`` file.
        name: Model name as Ultralytics' YAMLs are addressed, e.g. ``"yoloe-26n-seg"``.
        calibration_frames: Real BGR frames for the BatchNorm statistics.
        imgsz: Letterbox size of the calibration batch.
        head_bias: Bias of every contrastive head (the typical class logit).
        seed: Seed of the weights and of the stored prompt embeddings.

    Returns:
        ``path``.
    """
    from ultralytics import YOLOE
    from ultralytics.utils import ROOT, YAML

    with _seeded(seed):
        model = YOLOE(f"{name}.yaml").model
    coco_names = YAML.load(ROOT / "cfg/datasets/coco.yaml")["names"]
    model.names = dict(coco_names)
    model.pe = random_text_features(len(coco_names), seed=seed)  # what a checkpoint trained on COCO carries
    calibrate_yoloe_model(model, calibration_frames, imgsz, head_bias)
    task = "segment" if name.endswith("-seg") else "detect"
    return save_ultralytics_checkpoint(model, path, cfg=f"{name}.yaml", task=task)


def calibrate_yoloe_model(
    model: torch.nn.Module, frames: list[np.ndarray], imgsz: int = 320, head_bias: float = YOLOE_HEAD_BIAS
) -> None:
    """Recompute every BatchNorm's statistics on real frames, then set the contrastive heads' bias and scale.

    As for YOLO-World (see ``weights_fixtures.calibrate_world_model``): untrained BatchNorm statistics make every
    score the same, and the initial bias keeps them all under any usable threshold.
    """
    from ultralytics.nn.modules.block import BNContrastiveHead

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(letterbox_batch(frames, imgsz))
    model.eval()
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    for head in model.modules():
        if isinstance(head, BNContrastiveHead):
            head.bias.data.fill_(head_bias)
            head.logit_scale.data.fill_(0.0)


def build_yoloe_dir(root: Path, calibration_frames: list[np.ndarray] | None = None) -> dict[str, Path]:
    """Build every checkpoint of :func:`yoloe_names` into ``root``; returns name → path."""
    frames = calibration_frames if calibration_frames is not None else read_calibration_frames(8)
    return {name: build_yoloe_checkpoint(root / f"{name}.pt", name, frames) for name in yoloe_names()}
