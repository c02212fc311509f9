"""The PyTorch modules that are traced into exported graphs.

A changeable-vocabulary graph takes ``text_embeddings`` of shape ``(K, D)``: one row per class slot, all-zero
rows being empty slots. Two things keep empty slots from changing anything:

- YOLO-World's ``C2fAttn`` blocks attend to the *maximum* over classes, so an empty slot is filled with a copy of
  the first row before the network sees it; a duplicate cannot change a maximum.
- The head's class scores of empty slots are multiplied by zero, so they can never pass a confidence threshold.

The result equals a fixed-vocabulary graph of the same classes, which is what the tests check.

YOLOE has no text attention in its neck, so its graph (:class:`YoloeGraph`) only silences the empty slots; its
RepRTA projection of the raw text embeddings runs inside the graph, as in the PyTorch runtime.
"""

from __future__ import annotations

import copy

import torch

from ..runtimes.yoloe import yoloe_forward

__all__ = ["DynamicVocabularyGraph", "FixedVocabularyGraph", "TextTowerGraph", "YoloeGraph", "prepare_for_export"]


def prepare_for_export(world_model: torch.nn.Module, num_classes: int) -> torch.nn.Module:
    """A copy of a (fused) Ultralytics ``WorldModel`` or ``YOLOEModel`` whose head decodes boxes for any input size,
    ``K`` classes.

    The live model of a detector is left untouched.
    """
    from ultralytics.nn.modules import C2f, Detect

    model = copy.deepcopy(world_model).eval()
    for parameter in model.parameters():
        parameter.requires_grad = False
    for module in model.modules():
        if isinstance(module, Detect):
            module.export = True  # return decoded (B, 4 + K, N) only
            module.dynamic = True  # anchors from the input shape at run time, not from the tracing shape
            module.format = "onnx"
            module.nc = num_classes
            module.shape = None
        elif isinstance(module, C2f):
            module.forward = module.forward_split  # Split instead of Chunk: the simpler graph Ultralytics exports
    return model


class FixedVocabularyGraph(torch.nn.Module):
    """``images`` → ``(B, 4 + K, N)`` with the class embeddings baked in as constants.

    Args:
        world_model: A model from :func:`prepare_for_export`.
        embeddings: ``(K, D)`` L2-normalised text embeddings.

    Example:
        >>> graph = FixedVocabularyGraph(prepare_for_export(model, 3), torch.randn(3, 512))  # doctest: +SKIP
    """

    def __init__(self, world_model: torch.nn.Module, embeddings: torch.Tensor) -> None:
        super().__init__()
        self.world_model = world_model
        self.register_buffer("embeddings", embeddings[None].clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.world_model.predict(images, txt_feats=self.embeddings)


class DynamicVocabularyGraph(torch.nn.Module):
    """``images``, ``text_embeddings`` ``(K, D)`` → ``(B, 4 + K, N)``; all-zero rows are empty slots that never score.

    Args:
        world_model: A model from :func:`prepare_for_export`.

    Example:
        >>> graph = DynamicVocabularyGraph(prepare_for_export(model, 16))  # doctest: +SKIP
    """

    def __init__(self, world_model: torch.nn.Module) -> None:
        super().__init__()
        self.world_model = world_model

    def forward(self, images: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        used = text_embeddings.abs().amax(dim=-1, keepdim=True) > 0  # (K, 1)
        filled = torch.where(used, text_embeddings, text_embeddings[:1])
        output = self.world_model.predict(images, txt_feats=filled[None])
        return torch.cat([output[:, :4], output[:, 4:] * used.to(output.dtype)], dim=1)


class YoloeGraph(torch.nn.Module):
    """YOLOE: ``images`` [, raw ``text_embeddings`` ``(K, D)``] → ``(B, 4 + K + M, N)`` [, prototypes ``(B, M, h, w)``].

    With ``embeddings`` the classes are baked in and ``images`` is the only input; without, all-zero embedding rows
    are empty slots whose scores are zero.

    Args:
        yoloe_model: A model from :func:`prepare_for_export`.
        masks: Output mask coefficients and prototypes (segmentation models).
        embeddings: ``(K, D)`` raw text embeddings to bake in, for a fixed vocabulary.

    Example:
        >>> graph = YoloeGraph(prepare_for_export(model, 16), masks=True)  # doctest: +SKIP
    """

    def __init__(self, yoloe_model: torch.nn.Module, masks: bool, embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        self.yoloe_model = yoloe_model
        self.masks = masks
        self.register_buffer("embeddings", embeddings.clone() if embeddings is not None else None)

    def forward(
        self, images: torch.Tensor, text_embeddings: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        text = self.embeddings if text_embeddings is None else text_embeddings
        output, prototypes = yoloe_forward(self.yoloe_model, images, text, self.masks)
        if text_embeddings is not None:
            used = (text.abs().amax(dim=-1) > 0).to(output.dtype)[None, :, None]  # (1, K, 1)
            slots = text.shape[0]
            output = torch.cat([output[:, :4], output[:, 4 : 4 + slots] * used, output[:, 4 + slots :]], dim=1)
        return output if prototypes is None else (output, prototypes)


class TextTowerGraph(torch.nn.Module):
    """A text tower: ``input_ids`` ``(N, 77)`` int64 → ``(N, D)`` features (not normalised).

    Args:
        text_model: An open_clip CLIP (its ``encode_text`` runs) or a bare open_clip ``TextTransformer``
            (MobileCLIP's tower, whose ``forward`` is the same).

    Example:
        >>> graph = TextTowerGraph(open_clip_model)  # doctest: +SKIP
    """

    def __init__(self, text_model: torch.nn.Module) -> None:
        super().__init__()
        self.text_model = text_model
        self.method = "encode_text" if hasattr(text_model, "encode_text") else "forward"

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return getattr(self.text_model, self.method)(input_ids)
