"""The one table of embedding spaces: each row agrees with its weights, its encoder and its tokenizer, and every
place in ovdet that names a space reads the table."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest

import ovdet
from ovdet import EmbeddingSpaceError
from ovdet.core.weights import DETECTOR_KINDS, WEIGHTS
from ovdet.prompts.spaces import SPACES, TextEncoder, embedding_space
from ovdet.prompts.text import text_encoder_for
from ovdet.prompts.tokenizer import ClipTokenizer
from tests.export.test_export_tokenizer import PROMPTS

PACKAGE = Path(ovdet.__file__).parent
TABLE = PACKAGE / "prompts" / "spaces.py"
WEIGHTS_TABLE = PACKAGE / "core" / "weights.py"  # below the prompts layer: it names spaces, checked below


@pytest.mark.parametrize("space", SPACES)
def test_each_space_names_its_encoders_weights_row(space: str) -> None:
    row = SPACES[space]
    spec = WEIGHTS[row.weights]
    assert (spec.space, spec.kind) == (space, row.encoder)
    assert row.name == space and embedding_space(space) is row


def test_every_detector_of_the_registry_is_trained_in_a_known_space() -> None:
    detectors = [spec for spec in WEIGHTS.values() if spec.kind in DETECTOR_KINDS]
    assert detectors and {spec.space for spec in detectors} == set(SPACES)


@pytest.mark.parametrize("space", SPACES)
def test_the_encoder_of_each_space_produces_vectors_of_its_width(space: str, clip_path, mobileclip_paths) -> None:
    encoder = text_encoder_for(space)
    vectors = encoder.encode(["red backpack", "bottle"])
    assert isinstance(encoder, TextEncoder) and encoder.space == space
    assert vectors.shape == (2, SPACES[space].width) and vectors.dtype == np.float32


@pytest.mark.parametrize("space", SPACES)
def test_ovdets_tokenizer_at_each_spaces_context_length_equals_open_clips_tokenizer_of_its_config(space: str) -> None:
    row = SPACES[space]
    ours = ClipTokenizer(open_clip.tokenizer.default_bpe(), row.context_length)(PROMPTS)
    expected = open_clip.get_tokenizer(row.config)(PROMPTS).numpy()
    assert ours.shape == (len(PROMPTS), row.context_length) and ours.tolist() == expected.tolist()


def test_an_unknown_space_is_one_error_listing_the_known_ones() -> None:
    with pytest.raises(
        EmbeddingSpaceError, match=r"'siglip:b' \(it knows clip:ViT-B/32, mobileclip:blt, mobileclip2:b\)"
    ):
        embedding_space("siglip:b")


def _facts(space) -> set[object]:
    """What a row says that no other module may write out again: its name, config, weights key and variable."""
    return {space.name, space.config, space.weights, space.variable}


def test_no_module_but_the_table_writes_out_a_spaces_facts() -> None:
    facts = set().union(*(_facts(space) for space in SPACES.values()))
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in (TABLE, WEIGHTS_TABLE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in facts:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert found == []


def test_the_table_tokenizer_and_stored_embeddings_import_without_torch_or_open_clip() -> None:
    modules = ["spaces", "tokenizer", "embeddings", "vocabulary_files", "classes", "cache"]
    code = (
        "import sys\n"
        + "".join(f"import ovdet.prompts.{module}\n" for module in modules)
        + "print(sorted(m for m in ('torch', 'open_clip', 'ultralytics') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
