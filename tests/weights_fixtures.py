"""Real architectures with random weights, saved in the on-disk formats real users have.

No pretrained weights can be downloaded in CI or on developer machines without internet, so the test suite
builds its own: a YOLO-World checkpoint recalibrated on real frames so that its scores vary, a plain YOLOv8
checkpoint, and a CLIP ViT-B/32 in OpenAI's TorchScript format or open_clip's state-dict format.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from tests.footage import BOTTLES_CLIP, PEOPLE_CLIP, SOURCE_FRAMES, read_source_frames

# Ultralytics reads these when first imported, which happens lazily inside the builders below.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")

CALIBRATION_CLIPS = (BOTTLES_CLIP, PEOPLE_CLIP)
TEXT_EMBED_DIM = 512
CLIP_ARCH = "ViT-B-32-quickgelu"
CLIP_IMAGE_SIZE = 224


def read_calibration_frames(n: int = 16) -> list[np.ndarray]:
    """Read BGR frames spread evenly over the sample clips, from their excerpts in ``tests/data``.

    Args:
        n: Total number of frames, split between the clips.

    Returns:
        The frames as HxWx3 uint8 BGR arrays.
    """
    clips = len(CALIBRATION_CLIPS)
    frames: list[np.ndarray] = []
    for i, name in enumerate(CALIBRATION_CLIPS):
        count = n // clips + (i < n % clips)
        if count > 0:
            indices = np.linspace(0, SOURCE_FRAMES[name] - 1, count).round().astype(int).tolist()
            frames.extend(read_source_frames(name, sorted(set(indices))))
    return frames


def letterbox_batch(frames: list[np.ndarray], imgsz: int = 320) -> torch.Tensor:
    """Letterbox BGR frames into the NCHW float32 RGB [0, 1] batch Ultralytics models take.

    Args:
        frames: HxWx3 uint8 BGR frames.
        imgsz: Side of the square input.

    Returns:
        A (N, 3, imgsz, imgsz) float32 tensor.
    """
    return torch.from_numpy(np.stack([_letterbox(frame, imgsz) for frame in frames]))


def _letterbox(frame: np.ndarray, imgsz: int) -> np.ndarray:
    """Resize keeping the aspect ratio, pad to a centred square with 114, and return CHW RGB in [0, 1]."""
    h, w = frame.shape[:2]
    ratio = min(imgsz / h, imgsz / w)
    new_w, new_h = round(w * ratio), round(h * ratio)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((imgsz, imgsz, 3), 114, dtype=np.uint8)
    top, left = (imgsz - new_h) // 2, (imgsz - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0


def random_text_features(num_classes: int, seed: int = 0) -> torch.Tensor:
    """Return seeded random L2-normalised text embeddings shaped (1, num_classes, 512)."""
    generator = torch.Generator().manual_seed(seed)
    feats = torch.randn(1, num_classes, TEXT_EMBED_DIM, generator=generator)
    return torch.nn.functional.normalize(feats, dim=-1)


def set_text_features(model: torch.nn.Module, txt_feats: torch.Tensor) -> None:
    """Install text embeddings on a WorldModel and keep its head's class count consistent."""
    model.txt_feats = txt_feats
    model.model[-1].nc = txt_feats.shape[1]


def build_yolo_world_checkpoint(
    path: Path,
    calibration_frames: list[np.ndarray],
    scale: str = "s",
    imgsz: int = 320,
    head_bias: float = -5.0,
    head_logit_scale: float = 0.0,
    seed: int = 0,
) -> Path:
    """Build a YOLO-World v2 with random weights, recalibrate it on real frames, and save a checkpoint.

    Args:
        path: Destination ``.pt`` file.
        calibration_frames: Real BGR frames for the BatchNorm statistics.
        scale: Model scale, one of n, s, m, l, x.
        imgsz: Letterbox size of the calibration batch.
        head_bias: Bias of every contrastive head; sets the typical class score.
        head_logit_scale: Log of every contrastive head's similarity scale; sets the spread of scores.
        seed: Seed of the weights and of the stored text embeddings.

    Returns:
        ``path``.
    """
    from ultralytics import YOLOWorld
    from ultralytics.utils import ROOT, YAML

    with _seeded(seed):
        model = YOLOWorld(f"yolov8{scale}-worldv2.yaml").model
    coco_names = YAML.load(ROOT / "cfg/datasets/coco.yaml")["names"]
    set_text_features(model, random_text_features(len(coco_names), seed=seed))
    model.names = dict(coco_names)
    calibrate_world_model(model, calibration_frames, imgsz, head_bias, head_logit_scale)
    return save_ultralytics_checkpoint(model, path, cfg=f"yolov8{scale}-worldv2.yaml")


def calibrate_world_model(
    model: torch.nn.Module,
    frames: list[np.ndarray],
    imgsz: int = 320,
    head_bias: float = -5.0,
    head_logit_scale: float = 0.0,
) -> None:
    """Recompute every BatchNorm's statistics on real frames, then set the contrastive heads' bias and scale.

    A freshly initialised YOLO-World scores every box the same: its activations vanish through untrained
    BatchNorm statistics and the contrastive head bias of -10 saturates the sigmoid. The initial similarity
    scale of exp(-1) also leaves frames of the bottle clip with only dozens of scores above 0.01 at 320.

    Args:
        model: A ``WorldModel`` with text features set.
        frames: Real BGR frames.
        imgsz: Letterbox size of the calibration batch.
        head_bias: New bias of every ``BNContrastiveHead``.
        head_logit_scale: New ``logit_scale`` of every ``BNContrastiveHead``.
    """
    from ultralytics.nn.modules.block import BNContrastiveHead

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration pass
    batch = letterbox_batch(frames, imgsz)
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    for head in model.modules():
        if isinstance(head, BNContrastiveHead):
            head.bias.data.fill_(head_bias)
            head.logit_scale.data.fill_(head_logit_scale)


def build_plain_yolov8_checkpoint(path: Path, scale: str = "n", seed: int = 0) -> Path:
    """Build a plain (closed-vocabulary) YOLOv8 with random weights and save a checkpoint.

    Args:
        path: Destination ``.pt`` file.
        scale: Model scale, one of n, s, m, l, x.
        seed: Seed of the weights.

    Returns:
        ``path``.
    """
    from ultralytics import YOLO

    with _seeded(seed):
        model = YOLO(f"yolov8{scale}.yaml").model
    model.eval()
    return save_ultralytics_checkpoint(model, path, cfg=f"yolov8{scale}.yaml")


def save_ultralytics_checkpoint(model: torch.nn.Module, path: Path, cfg: str, task: str = "detect") -> Path:
    """Save a model as the dict Ultralytics' ``Model.save`` and ``strip_optimizer`` write, in float32.

    Args:
        model: The Ultralytics ``nn.Module``.
        path: Destination ``.pt`` file; written under a temporary name, then renamed.
        cfg: The model YAML recorded as ``train_args["model"]``.
        task: The task recorded as ``train_args["task"]`` (``"detect"`` or ``"segment"``).

    Returns:
        ``path``.
    """
    import copy

    from ultralytics import __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT

    module = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
    for param in module.parameters():
        param.requires_grad = False
    train_args = {**DEFAULT_CFG_DICT, "model": cfg, "task": task, "mode": "train"}
    module.args = dict(train_args)
    ckpt: dict[str, Any] = {
        "date": datetime.now().astimezone().isoformat(),
        "version": __version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": module,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "scaler": None,
        "modelopt": None,
        "train_args": train_args,
    }
    return _atomic_save(path, lambda tmp: torch.save(ckpt, tmp))


def describe_yolo_world_outputs(
    path: Path,
    frame: np.ndarray,
    imgsz: tuple[int, ...] = (320, 640),
    num_texts: int = 4,
    conf: float = 0.01,
    seed: int = 1,
) -> dict[int, dict[str, float]]:
    """Measure how varied a YOLO-World checkpoint's class scores are on one frame.

    Args:
        path: A YOLO-World checkpoint.
        frame: A BGR frame.
        imgsz: Inference sizes to measure.
        num_texts: Number of random normalised text embeddings to score against.
        conf: Score threshold.
        seed: Seed of the text embeddings.

    Returns:
        Per inference size: ``candidates`` (anchors), ``above_conf`` (anchor-class scores >= conf),
        ``distinct_above_conf`` (distinct such values), ``max_score`` and ``min_score``.
    """
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(path)
    set_text_features(model, random_text_features(num_texts, seed=seed))
    stats: dict[int, dict[str, float]] = {}
    with torch.no_grad():
        for size in imgsz:
            preds = model(letterbox_batch([frame], size))
            scores = (preds[0] if isinstance(preds, tuple) else preds)[0, 4:]
            kept = scores[scores >= conf]
            stats[size] = {
                "candidates": scores.shape[1],
                "above_conf": kept.numel(),
                "distinct_above_conf": torch.unique(kept).numel(),
                "max_score": float(scores.max()),
                "min_score": float(scores.min()),
            }
    return stats


def build_clip_checkpoint(path: Path, fmt: str = "openai-jit", seed: int = 0) -> Path:
    """Build a CLIP ViT-B/32 with random weights and save it in a real on-disk format.

    Args:
        path: Destination file.
        fmt: ``"openai-jit"`` for a TorchScript archive like OpenAI's ``ViT-B-32.pt`` (OpenAI key names,
            tensors stored as float32 where OpenAI stores some as float16), or ``"open_clip"`` for a plain
            ``torch.save`` of the state dict.
        seed: Seed of the weights.

    Returns:
        ``path``.
    """
    model = build_clip_model(seed)
    if fmt == "openai-jit":
        return _atomic_save(path, lambda tmp: _save_torchscript(_trace_openai_style(model), tmp))
    if fmt == "open_clip":
        return _atomic_save(path, lambda tmp: torch.save(model.state_dict(), tmp))
    raise ValueError(f"unknown CLIP format {fmt!r}; expected 'openai-jit' or 'open_clip'")


def build_clip_model(seed: int = 0) -> torch.nn.Module:
    """Return open_clip's ViT-B/32 (QuickGELU, as OpenAI's) with seeded random float32 weights, in eval mode.

    The weights OpenAI ships in float16 are rounded to float16 values, because ``open_clip.load_openai_model``
    (and OpenAI's own loader) round them so on load; a model loaded back from either format is then
    bit-identical to this one.
    """
    import open_clip

    with _seeded(seed):
        model = open_clip.create_model(CLIP_ARCH, pretrained=None)
    open_clip.convert_weights_to_lp(model, dtype=torch.float16)
    return model.float().eval()


def _trace_openai_style(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """Trace the CLIP methods OpenAI's archive exposes; tracing keeps every parameter under its own name."""
    import open_clip

    model = _with_openai_keys(model)
    tokens = open_clip.tokenize(["a photo"])
    image = torch.zeros(1, 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE)
    with torch.no_grad(), _quiet_torchscript():
        return torch.jit.trace_module(
            model,
            {"encode_text": tokens, "encode_image": image},
            check_trace=False,
        )


def _save_torchscript(module: torch.jit.ScriptModule, path: Path) -> None:
    """Save a TorchScript archive."""
    with _quiet_torchscript():
        torch.jit.save(module, str(path))


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """Silence the FutureWarnings recent torch raises for TorchScript, the format being reproduced here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block, leaving the caller's random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _with_openai_keys(model: torch.nn.Module) -> torch.nn.Module:
    """Return a copy of ``model`` whose state dict has exactly the keys of OpenAI's archive."""
    import copy

    # OpenAI's archive also carries these scalars in its state dict; open_clip's loader drops them.
    scalars = {
        "input_resolution": CLIP_IMAGE_SIZE,
        "context_length": model.positional_embedding.shape[0],
        "vocab_size": model.token_embedding.weight.shape[0],
    }
    model = copy.deepcopy(model)
    for name, value in scalars.items():
        # open_clip keeps two of these as plain ints, which tracing would drop; the traced methods never read them.
        if hasattr(model, name):
            delattr(model, name)
        model.register_buffer(name, torch.tensor(value))
    # Tracing would save the non-persistent causal mask buffer too, and open_clip's strict loader rejects it.
    mask = model.attn_mask
    del model.attn_mask
    model.attn_mask = mask  # now a plain attribute, which tracing bakes in as a constant
    return model


def build_weights_dir(root: Path, calibration_frames: list[np.ndarray]) -> Path:
    """Lay out ``<root>/yolov8s-worldv2.pt`` and ``<root>/clip/ViT-B-32.pt`` (OpenAI TorchScript format).

    Args:
        root: Directory to fill; created if missing.
        calibration_frames: Real BGR frames for the YOLO-World calibration.

    Returns:
        ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    build_yolo_world_checkpoint(root / "yolov8s-worldv2.pt", calibration_frames, scale="s")
    build_clip_checkpoint(root / "clip" / "ViT-B-32.pt", fmt="openai-jit")
    return root


def _atomic_save(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
