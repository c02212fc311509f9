"""PyTorch runtime: an Ultralytics ``WorldModel`` or ``YOLOEModel`` whose text embeddings are injected directly.

Ultralytics' own ``set_classes`` imports the git-only ``clip`` package and tries to pip-install it at run time;
ovdet never calls it. The embeddings go straight into ``WorldModel.predict(x, txt_feats=...)``, or, for YOLOE,
through the head's RepRTA projection inside :func:`ovdet.runtimes.yoloe.yoloe_forward`.
"""

from __future__ import annotations

import logging
import os
import pickletools
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import checkpoint, weights
from ..core.errors import ConfigError, WeightsError, missing_dependency
from ..prompts.spaces import CLIP_SPACE, DEFAULT_YOLOE_SPACE, TextEncoder
from ..prompts.text import text_encoder_for
from .backend import check_task
from .devices import parse_device
from .registry import runtime_named
from .yoloe import checkpoint_task, is_yoloe, select_head, yoloe_forward

__all__ = [
    "TorchBackend",
    "check_registry_entry",
    "checkpoint_segments",
    "checkpoint_space",
    "inject_classes",
    "load_world_model",
    "resolve_device",
]

log = logging.getLogger(__name__)

TEXT_MODEL_KEY = "text_model"  # YOLOEModel's attribute (and YAML key) naming its text encoder, i.e. its space

for _name, _value in (("YOLO_AUTOINSTALL", "False"), ("YOLO_OFFLINE", "1"), ("YOLO_VERBOSE", "False")):
    os.environ.setdefault(_name, _value)  # Ultralytics must never reach for the network or pip


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda:0"`` when a GPU is present, else ``"cpu"``; other values are checked."""
    import torch

    kind, index = parse_device(device)
    if kind == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available here: use --device cpu")
        return f"cuda:{index or 0}"
    if kind != "cpu":
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return "cpu"


def load_world_model(file: weights.WeightsFile):
    """Load a YOLO-World or YOLOE checkpoint from its checked bytes, building only what an Ultralytics checkpoint
    holds.

    The restricted load uses Ultralytics' own allowlist (its model and layer classes, the data types its
    releases pickle), which also keeps a file from building layers through ``eval``; other models and unreadable
    files are refused with a clear error.
    """
    try:
        import torch
        from ultralytics.nn.tasks import WorldModel, YOLOEModel, _SafeLoad
    except ImportError as exc:
        extra = runtime_named("torch").extra
        raise missing_dependency(exc.name or "torch", extra, f"loading {file.path.name}") from exc
    if not (_SafeLoad.SUPPORTED or checkpoint.trusted()):
        raise WeightsError(
            f"loading {file.path} safely needs torch 2.6 or newer (found {torch.__version__}): upgrade torch, "
            f"or set {checkpoint.TRUST_VARIABLE}=1 if you trust this file"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _model_from(checkpoint.load(file, "YOLO-World or YOLOE", allowlist=_SafeLoad.loading), file.path)
    except WeightsError:
        raise
    except Exception as exc:  # torch.load and Ultralytics raise many types for a damaged file
        raise WeightsError(
            f"{file.path} is not a readable Ultralytics checkpoint ({type(exc).__name__}): "
            f"re-download it or pass a YOLO-World or YOLOE .pt file"
        ) from exc
    if not isinstance(model, (WorldModel, YOLOEModel)):
        raise WeightsError(
            f"{file.path} is a {type(model).__name__}, not a YOLO-World model or YOLOE model: ovdet needs "
            f"open-vocabulary weights such as yolov8s-worldv2.pt or yoloe-11s-seg.pt"
        )
    return model


def _model_from(ckpt: Any, path: Path):
    """The FP32 eval-mode model of an Ultralytics checkpoint, set up as Ultralytics' ``load_checkpoint`` does."""
    import torch
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.nn.tasks import guess_model_task

    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module):
        raise WeightsError(
            f"{path} holds no Ultralytics model: pass a YOLO-World or YOLOE .pt file such as yolov8s-worldv2.pt"
        )
    model = model.float()
    model.args = {**DEFAULT_CFG_DICT, **ckpt.get("train_args", {})}
    model.pt_path = str(path)
    model.task = getattr(model, "task", guess_model_task(model))
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = True
        elif isinstance(module, torch.nn.Upsample) and not hasattr(module, "recompute_scale_factor"):
            module.recompute_scale_factor = None
    return model.eval()


def checkpoint_space(path: Path) -> str:
    """The embedding space a YOLO-World or YOLOE ``.pt`` was trained in, read from its pickle's opcodes: nothing is
    unpickled and no model is built (a damaged file reads as YOLO-World's; loading it says what is wrong)."""
    strings = _pickled_strings(path)
    if not any(text.startswith("ultralytics.nn.tasks YOLOE") for text in strings):
        return CLIP_SPACE
    after_key = strings.index(TEXT_MODEL_KEY) + 1 if TEXT_MODEL_KEY in strings else len(strings)
    return strings[after_key] if after_key < len(strings) else DEFAULT_YOLOE_SPACE


def checkpoint_segments(path: Path) -> bool:
    """Whether a ``.pt`` holds a segmentation model (a mask branch), read as :func:`checkpoint_space` reads."""
    strings = _pickled_strings(path)
    return any(text.startswith("ultralytics.nn.tasks ") and text.endswith("SegModel") for text in strings)


def _pickled_strings(path: Path) -> list[str]:
    """The strings of a ``torch.save`` archive's pickle opcodes (class names, attribute names, values); none for a
    file that is not one — whatever it is, its loading reports it."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = archive.read(next(name for name in archive.namelist() if name.endswith("/data.pkl")))
        return [argument for _, argument, _ in pickletools.genops(pickled) if isinstance(argument, str)]
    except Exception:  # not a zip, no pickle, truncated opcodes
        return []


def check_registry_entry(path: Path, family: str, space: str, task: str) -> None:
    """A file at a registry entry's place must hold what the entry names (family, embedding space, task); another
    model saved under a registry name is refused before its digest could be pinned as that entry's."""
    spec = weights.registry_entry(path)
    if spec is None or spec.kind not in weights.DETECTOR_KINDS:
        return
    expected = (spec.kind, spec.space, "segment" if spec.name.endswith("-seg") else "detect")
    if (family, space, task) != expected:
        raise WeightsError(
            f"{path} holds a {_described(family, space, task)}, but {spec.name} is a {_described(*expected)}: another "
            f"model saved under its name was not used (nor its SHA-256 pinned); delete it to download {spec.name} "
            f"again from {spec.url}, or move it out of {path.parent} and pass its path with --model"
        )


def _described(family: str, space: str, task: str) -> str:
    kind = {"yolo-world": "YOLO-World", "yoloe": "YOLOE"}.get(family, family)
    return f"{kind} {'segmentation' if task == 'segment' else 'detection'} model (embedding space {space})"


def _space_of(model) -> str:
    return str(getattr(model, TEXT_MODEL_KEY, DEFAULT_YOLOE_SPACE)) if is_yoloe(model) else CLIP_SPACE


def inject_classes(world_model, vectors: np.ndarray, names: Sequence[str]) -> None:
    """Give an Ultralytics ``WorldModel`` these ``(K, D)`` class embeddings and names.

    Ultralytics' own ``set_classes`` imports the git-only ``clip`` package and tries to pip-install it; this is
    the one place (for ovdet, its tests and its benchmarks) that sets the classes without it. A ``YOLOWorld``
    wrapper needs ``predictor = None`` afterwards, so that its next ``predict`` reads the new names.

    Example:
        >>> inject_classes(YOLOWorld("yolov8s-worldv2.pt").model, vectors, ["person", "bus"])  # doctest: +SKIP
    """
    import torch

    world_model.txt_feats = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))[None].clone()
    world_model.model[-1].nc = len(names)
    world_model.names = dict(enumerate(names))


class TorchBackend:
    """YOLO-World or YOLOE in PyTorch.

    Args:
        path: YOLO-World or YOLOE ``.pt`` checkpoint.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        half: FP16 on CUDA; ignored with a warning on CPU.
        task: ``"detect"`` or ``"segment"`` (a ``-seg`` YOLOE); ``None``: what the checkpoint does.

    Attributes:
        family: ``"yolo-world"`` or ``"yoloe"``.
        task: ``"detect"`` or ``"segment"``: with ``"segment"``, :meth:`infer` also returns mask prototypes.
        end2end: Whether the head is one-to-one (YOLOE-26): its output is top-k selected, never NMS'd.

    Example:
        >>> backend = TorchBackend(Path("weights/yolov8s-worldv2.pt"))  # doctest: +SKIP
    """

    name = "torch"
    rect = True
    fixed_classes = None
    max_classes = None

    def __init__(self, path: Path, device: str = "auto", half: bool = False, task: str | None = None) -> None:
        import torch

        self.device = resolve_device(device)
        self.half = half and self.device.startswith("cuda")
        if half and not self.half:
            warnings.warn("half precision needs CUDA; running FP32 on the CPU", UserWarning, stacklevel=3)
        file = weights.read_weights(path)
        model = load_world_model(file)
        self.sha256 = file.sha256
        self.family = "yoloe" if is_yoloe(model) else "yolo-world"
        self.space = _space_of(model)
        holds = checkpoint_task(model) if self.family == "yoloe" else "detect"
        check_registry_entry(file.path, self.family, self.space, holds)
        weights.pin_first_use(file)
        self.task = check_task(task, holds, Path(path).name)
        if self.family == "yoloe":
            self.end2end = select_head(model)
            self.embedding_dim = int(model.model[-1].embed)
        else:
            self.end2end = False
            self.embedding_dim = int(model.txt_feats.shape[-1])
        model = model.fuse(verbose=False).to(self.device)
        self.model = model.half() if self.half else model.float()
        self.stride = int(self.model.stride.max())
        self.input_dtype = np.float16 if self.half else np.float32
        self.precision = "fp16" if self.half else "fp32"
        self._torch = torch
        self._text = None

    def default_text_encoder(self) -> TextEncoder:
        """The text encoder of this model's embedding space in PyTorch, on this backend's GPU when it has one."""
        return text_encoder_for(self.space, device=self.device if self.device.startswith("cuda") else "cpu")

    def set_vocabulary(self, vectors: np.ndarray) -> None:
        """Inject ``(K, D)`` embeddings into the head (YOLOE: the raw text features, before RepRTA)."""
        dtype = self._torch.float16 if self.half else self._torch.float32
        self._text = self._torch.from_numpy(np.ascontiguousarray(vectors)).to(self.device, dtype)
        self.model.model[-1].nc = vectors.shape[0]

    def infer(self, images: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Forward a ``(B, 3, H, W)`` batch; returns ``(B, 4 + K [+ M], N)`` float32, and with ``task="segment"``
        the ``(B, M, h, w)`` mask prototypes too."""
        if self._text is None:
            raise RuntimeError("set_vocabulary must be called before infer")
        with self._torch.inference_mode():
            batch = self._torch.from_numpy(images).to(self.device)
            if self.family == "yoloe":
                output, prototypes = yoloe_forward(self.model, batch, self._text, self.task == "segment")
            else:
                output, prototypes = self.model.predict(batch, txt_feats=self._text[None]), None
        output = output[0] if isinstance(output, (list, tuple)) else output
        if prototypes is None:
            return output.float().cpu().numpy()
        return output.float().cpu().numpy(), prototypes.float().cpu().numpy()
