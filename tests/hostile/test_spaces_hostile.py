"""YOLOE's text encoders from the command line: a missing MobileCLIP file offline, embeddings of another family."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovdet import EmbeddingSpaceError
from ovdet.core.weights import WEIGHTS
from ovdet.prompts.embeddings import Embeddings
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli, unchanged


@pytest.mark.parametrize("space", ["mobileclip:blt", "mobileclip2:b"])
def test_a_missing_mobileclip_file_offline_is_one_line_with_its_url_and_place(
    space: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    spec = next(spec for spec in WEIGHTS.values() if spec.kind == "mobileclip" and spec.space == space)
    empty = tmp_path / "weights"
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(empty))
    output = tmp_path / "out.npz"
    result = run_cli(["embed", "--classes", "bottle", "--space", space, "-o", output], capfd)
    assert_error(result, 1, Path(spec.filename).name, spec.url, str(empty / spec.filename))
    assert spec.url.startswith("https://github.com/ultralytics/assets/releases/download/v8.4.0/")
    assert not output.exists() and not empty.exists()


def test_embeddings_of_one_family_are_refused_by_another_naming_both_spaces(
    mobileclip_paths, model_path: Path, image: Path, tmp_path: Path, capfd
) -> None:
    vocabulary = tmp_path / "yoloe-26.npz"
    made = run_cli(["embed", "--classes", "bottle,person", "--model", "yoloe-26s-seg", "-o", vocabulary], capfd)
    assert_clean_stderr(made)
    assert Embeddings.load(vocabulary).space == "mobileclip2:b"
    with unchanged(image, vocabulary):
        refused = run_cli(["detect", image, "--model", model_path, "--vocab", vocabulary, "--no-save"], capfd)
    assert_error(refused, 1, "'mobileclip2:b'", "'clip:ViT-B/32'", model_path.name, "ovdet embed --space clip:ViT-B/32")
    with pytest.raises(EmbeddingSpaceError, match=r"'mobileclip2:b' but yoloe-11s-seg\.pt expects 'mobileclip:blt'"):
        Embeddings.load(vocabulary).require_space("mobileclip:blt", "yoloe-11s-seg.pt")


def test_a_named_mobileclip_file_that_is_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd):
    monkeypatch.setenv("OVDET_MOBILECLIP2_WEIGHTS", str(tmp_path / "MobileCLIP2-B.pt"))
    result = run_cli(["embed", "--classes", "bottle", "--space", "mobileclip2:b", "-o", tmp_path / "out.npz"], capfd)
    assert_error(result, 1, str(tmp_path / "MobileCLIP2-B.pt"), "does not exist", "OVDET_MOBILECLIP2_WEIGHTS")


def test_a_registry_ts_whose_bytes_changed_since_pinning_is_refused(
    mobileclip_paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    spec = WEIGHTS["mobileclip-blt"]
    target = tmp_path / "weights" / spec.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(mobileclip_paths["mobileclip:blt"]["torchscript"].read_bytes())
    (target.parent / "SHA256SUMS").write_text(f"{'0' * 64}  {target.name}\n")
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(tmp_path / "weights"))
    with unchanged(target):
        result = run_cli(["embed", "--classes", "bottle", "--space", "mobileclip:blt", "-o", tmp_path / "o.npz"], capfd)
    assert_error(result, 1, str(target), "expected 000000000000", "delete it to download again from", spec.url)
