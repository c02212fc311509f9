"""YOLOE in PyTorch with the raw text embeddings as an input, so the vocabulary stays changeable.

Ultralytics' ``YOLOEModel.predict`` takes prompt embeddings that already went through the head's RepRTA
projection (``head.get_tpe``), and its export folds them into the head's weights. Here the raw text features
(what the MobileCLIP text tower gives, before RepRTA) go in, and RepRTA runs inside, once per call: the same
function serves the PyTorch runtime and the exported graphs, which therefore take new classes after export.

The output is the decoded head in Ultralytics' own layout: ``(B, 4 + K + M, N)`` with ``M`` mask coefficients per
anchor (``M = 0`` without masks); boxes are xywh, or xyxy for an end-to-end (one-to-one) head, whose top-k
selection happens afterwards, in the shared post-processing. Segmentation models also give the mask prototypes
``(B, M, H/4, W/4)``.
"""

from __future__ import annotations

import torch

__all__ = ["checkpoint_task", "is_yoloe", "select_head", "yoloe_forward"]


def is_yoloe(model: torch.nn.Module) -> bool:
    """Whether ``model`` is an Ultralytics YOLOE (detection or segmentation)."""
    from ultralytics.nn.tasks import YOLOEModel

    return isinstance(model, YOLOEModel)


def checkpoint_task(model: torch.nn.Module) -> str:
    """``"segment"`` for a model with a mask head, else ``"detect"``."""
    from ultralytics.nn.modules.head import YOLOESegment

    return "segment" if isinstance(model.model[-1], YOLOESegment) else "detect"


def select_head(model: torch.nn.Module) -> bool:
    """Run the one-to-one (end-to-end, NMS-free) head where the model has one; returns whether it does.

    Must be called before ``model.fuse()``, which drops the branch that is not selected.
    """
    head = model.model[-1]
    end2end = getattr(head, "one2one_cv2", None) is not None
    if end2end:
        head.end2end = True
    return end2end


def yoloe_forward(
    model: torch.nn.Module, images: torch.Tensor, text: torch.Tensor, masks: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a YOLOE on ``images`` ``(B, 3, H, W)`` with raw text embeddings ``text`` ``(K, D)``.

    Args:
        model: A (fused) Ultralytics ``YOLOEModel`` or ``YOLOESegModel`` in eval mode.
        images: RGB in [0, 1].
        text: One raw (pre-RepRTA) text embedding per class.
        masks: Compute mask coefficients and prototypes (segmentation models only); ``False`` skips the mask
            branch altogether.

    Returns:
        ``(predictions, prototypes)``: ``(B, 4 + K + M, N)`` and ``(B, M, h, w)`` or ``None``.
    """
    head = model.model[-1]
    features = _neck_features(model, images)
    prompts = head.get_tpe(text[None]).type_as(features[0]).expand(images.shape[0], -1, -1)
    branch = dict(head.one2one if head.end2end else head.one2many)
    if "mask_head" in branch and not masks:
        branch["mask_head"] = None
    raw = head.forward_head([*features, prompts], **branch)
    outputs = [head._get_decode_boxes(raw), raw["scores"].sigmoid()]
    if not masks:
        return torch.cat(outputs, 1), None
    outputs.append(raw["mask_coefficient"])
    return torch.cat(outputs, 1), _prototypes(head, features)


def _neck_features(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The feature maps the head reads, as ``YOLOEModel.predict`` computes them."""
    saved: list[torch.Tensor | None] = []
    x = images
    for layer in model.model[:-1]:
        if layer.f != -1:
            x = saved[layer.f] if isinstance(layer.f, int) else [x if j == -1 else saved[j] for j in layer.f]
        x = layer(x)
        saved.append(x if layer.i in model.save else None)
    head = model.model[-1]
    return [saved[j] if j != -1 else x for j in head.f]


def _prototypes(head: torch.nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
    from ultralytics.nn.modules.head import YOLOESegment26

    if isinstance(head, YOLOESegment26):
        return head.proto(features, return_semantic=False)
    return head.proto(features[0])
