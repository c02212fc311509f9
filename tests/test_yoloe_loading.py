"""Opening YOLOE checkpoints: every family through the restricted unpickler, its embedding space, head and task."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from ovdet import OpenVocabDetector
from ovdet.errors import WeightsError
from ovdet.runtimes.torch import TorchBackend
from tests.yoloe_fixtures import yoloe_names

EXPECTED = {  # family → (embedding space, end-to-end head)
    "yoloe-v8": ("mobileclip:blt", False),
    "yoloe-11": ("mobileclip:blt", False),
    "yoloe-26": ("mobileclip2:b", True),
}


@pytest.mark.parametrize("name", yoloe_names())
def test_every_family_opens_with_its_space_head_and_task(name: str, yoloe_paths: dict[str, Path]) -> None:
    backend = TorchBackend(yoloe_paths[name], device="cpu")
    family = name[: name.index("n", len("yoloe-"))]
    assert (backend.family, backend.space, backend.end2end) == ("yoloe", *EXPECTED[family])
    assert backend.task == ("segment" if name.endswith("-seg") else "detect")
    assert backend.embedding_dim == 512


def test_a_yoloe_checkpoint_referring_to_other_types_loads_only_when_trusted(
    yoloe_paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = torch.load(yoloe_paths["yoloe-26n-seg"], map_location="cpu", weights_only=False)  # our own fixture
    checkpoint["train_args"] = argparse.Namespace(**checkpoint["train_args"])  # argparse is on no allowlist
    crafted = tmp_path / "crafted.pt"
    torch.save(checkpoint, crafted)
    with pytest.raises(WeightsError, match=r"crafted\.pt was not loaded.*argparse\.Namespace.*OVDET_TRUST_WEIGHTS=1"):
        OpenVocabDetector(crafted, device="cpu", runtime="torch")
    monkeypatch.setenv("OVDET_TRUST_WEIGHTS", "1")
    assert OpenVocabDetector(crafted, device="cpu", runtime="torch").backend.space == "mobileclip2:b"
