"""``ovdet embed`` encodes with the text encoder of the space asked for, or of the model named."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ovdet.prompts.embeddings import Embeddings
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli


def test_space_and_model_pick_the_encoder(mobileclip_paths, model_path: Path, tmp_path: Path, capfd) -> None:
    vectors = {}
    for args, space in (
        (["--space", "mobileclip:blt"], "mobileclip:blt"),
        (["--model", "yoloe-v8s-seg"], "mobileclip:blt"),
        (["--model", model_path], "clip:ViT-B/32"),
        ([], "clip:ViT-B/32"),
    ):
        output = tmp_path / f"{len(vectors)}.npz"
        assert_clean_stderr(run_cli(["embed", "--classes", "bottle", *args, "-o", output], capfd))
        embeddings = Embeddings.load(output)
        assert embeddings.space == space
        vectors.setdefault(space, embeddings.vectors)
        np.testing.assert_array_equal(embeddings.vectors, vectors[space])
    assert not np.allclose(vectors["mobileclip:blt"], vectors["clip:ViT-B/32"], atol=1e-3)


def test_space_and_model_exclude_each_other(tmp_path: Path, capfd) -> None:
    args = ["embed", "--classes", "a", "--space", "mobileclip2:b", "--model", "yoloe-26s-seg", "-o", tmp_path / "x.npz"]
    result = run_cli(args, capfd)
    assert result.code == 2 and "not allowed with argument" in result.err
    assert not (tmp_path / "x.npz").exists()
    assert_error(run_cli(["embed", "--classes", "a", "--model", "yoloe-12s-seg", "-o", tmp_path / "y.npz"], capfd), 1,
                 "unknown model 'yoloe-12s-seg'")  # fmt: skip
