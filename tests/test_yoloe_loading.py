"""Opening YOLOE checkpoints: every family through the restricted unpickler, its embedding space, head and task."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import pytest
import torch

from ovdet import Embeddings, OpenVocabDetector
from ovdet.core.errors import WeightsError
from ovdet.runtimes.torch import TorchBackend, checkpoint_space
from tests.conftest import BOTTLES, read_frames
from tests.hostile.harness import assert_error, checksums, run_cli
from tests.weights_fixtures import random_text_features
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
    assert checkpoint_space(yoloe_paths[name]) == backend.space, "read without unpickling, the same space"


def test_a_yolo_world_checkpoint_is_in_clip_space(model_path: Path) -> None:
    assert checkpoint_space(model_path) == "clip:ViT-B/32"


def test_a_yoloe_checkpoint_referring_to_other_types_loads_only_when_trusted(
    yoloe_paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = torch.load(yoloe_paths["yoloe-26n-seg"], map_location="cpu", weights_only=False)  # our own fixture
    checkpoint["notes"] = argparse.Namespace(author="someone")  # argparse is on no allowlist
    crafted = tmp_path / "crafted.pt"
    torch.save(checkpoint, crafted)
    with pytest.raises(WeightsError, match=r"crafted\.pt was not loaded.*argparse\.Namespace.*OVDET_TRUST_WEIGHTS=1"):
        OpenVocabDetector(crafted, device="cpu", runtime="torch")
    monkeypatch.setenv("OVDET_TRUST_WEIGHTS", "1")
    assert OpenVocabDetector(crafted, device="cpu", runtime="torch").backend.space == "mobileclip2:b"


def test_a_vocabulary_of_another_family_is_refused_naming_both_spaces(yoloe_paths, tmp_path: Path, capfd) -> None:
    vectors = random_text_features(2, seed=3)[0].numpy()
    Embeddings(["bottle", "cap"], vectors, "mobileclip:blt").save(tmp_path / "yoloe-11.npz")
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), read_frames(BOTTLES, 1)[0])
    before = checksums([tmp_path])
    command = ["detect", str(image), "--model", str(yoloe_paths["yoloe-26n"]), "--runtime", "torch",
               "--vocab", str(tmp_path / "yoloe-11.npz")]  # fmt: skip
    result = run_cli(command, capfd)
    assert_error(result, 1, "mobileclip:blt", "mobileclip2:b")
    assert checksums([tmp_path]) == before, "the inputs are untouched"
