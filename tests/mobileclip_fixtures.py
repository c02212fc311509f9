"""Random-init MobileCLIP-B and MobileCLIP2-B text towers in the two file formats ovdet accepts.

Each tower is open_clip's text tower of the ``MobileCLIP-B`` / ``MobileCLIP2-B`` config, built offline with random
weights (seeded), and saved twice from the same weights:

- as Ultralytics ships its text encoders (``mobileclip_blt.ts``, ``mobileclip2_b.ts``): a traced TorchScript module
  that takes CLIP tokens ``(N, 77)`` int64 and returns L2-normalised ``(N, 512)`` features, the normalisation
  inside the graph, as Ultralytics' ``MobileCLIPTS.encode_text`` expects;
- as an open_clip checkpoint: a state dict with the tower under ``text.``, as open_clip's ``CustomTextCLIP`` saves
  it (the vision tower is left out: ovdet reads only the text tower).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ovdet.core.weights import SUMS_FILE, WEIGHTS
from ovdet.prompts.mobileclip import MOBILECLIP_SPACES
from ovdet.prompts.spaces import SPACES

SEEDS = {"mobileclip:blt": 11, "mobileclip2:b": 12}  # different weights, so the two spaces differ


class NormalizedTower(torch.nn.Module):
    """``input_ids`` → L2-normalised features: what Ultralytics' MobileCLIP TorchScript files compute."""

    def __init__(self, tower: torch.nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.tower(input_ids), dim=-1)


def build_text_tower(space: str) -> torch.nn.Module:
    """open_clip's text tower of the space's config, random-init with the space's seed."""
    import open_clip
    from open_clip.model import _build_text_tower

    config = open_clip.get_model_config(SPACES[space].config)
    torch.manual_seed(SEEDS[space])
    return _build_text_tower(config["embed_dim"], config["text_cfg"]).eval()


def save_torchscript(tower: torch.nn.Module, path: Path) -> Path:
    """Trace the tower (with its normalisation) as Ultralytics' ``.ts`` files hold it."""
    import open_clip

    example = open_clip.tokenize(["a photo of a red backpack", "person"])
    with torch.no_grad():
        traced = torch.jit.trace(NormalizedTower(tower), example, check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(path))
    return path


def save_open_clip(tower: torch.nn.Module, path: Path) -> Path:
    """Save the tower's tensors as an open_clip checkpoint of the whole model holds them (``text.*``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"text.{name}": value for name, value in tower.state_dict().items()}
    torch.save({**state, "logit_scale": torch.tensor(4.6052)}, path)
    return path


def build_mobileclip_files(weights_dir: Path) -> dict[str, dict[str, Path]]:
    """Both towers in both formats: the ``.ts`` at its registry place (pinned as by an earlier run), the open_clip
    checkpoint beside it.

    Returns:
        ``{space: {"torchscript": path, "open_clip": path}}``.
    """
    files: dict[str, dict[str, Path]] = {}
    for space in MOBILECLIP_SPACES:
        model = SPACES[space]
        tower = build_text_tower(space)
        script = save_torchscript(tower, weights_dir / WEIGHTS[model.weights].filename)
        state = save_open_clip(tower, weights_dir / "mobileclip" / "open_clip" / f"{model.config}.pt")
        digest = hashlib.sha256(script.read_bytes()).hexdigest()
        with open(script.parent / SUMS_FILE, "a") as sums:
            sums.write(f"{digest}  {script.name}\n")
        files[space] = {"torchscript": script, "open_clip": state}
    return files
