"""The torch-free CLIP tokenizer gives exactly open_clip's tokens."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import open_clip
import pytest

from ovdet import WeightsError
from ovdet.prompts.spaces import CLIP_SPACE, SPACES
from ovdet.prompts.tokenizer import ClipTokenizer

PROMPTS = [
    "red backpack",
    "Person wearing SUNGLASSES",
    "it's a dog's toy, isn't it?",
    "café crème brûlée",
    "a 3-cup coffee maker, 12oz!",
    "🐱 cat emoji",
    "中文 物体",
    "Tom &amp; Jerry &lt;3",
    "Ã©lÃ¨ve (mojibake that ftfy repairs)",
    "  lots   of\twhitespace \n",
    "",
    "x" * 300,
    "<start_of_text> typed literally",
    "snake_case-and-dashes/slashes",
]


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(open_clip.tokenizer.default_bpe(), SPACES[CLIP_SPACE].context_length)


def test_tokens_equal_open_clip(tokenizer: ClipTokenizer) -> None:
    expected = open_clip.get_tokenizer("ViT-B-32-quickgelu")(PROMPTS).numpy()
    ours = tokenizer(PROMPTS)
    assert ours.dtype == np.int64 and ours.shape == (len(PROMPTS), 77)
    for prompt, want, got in zip(PROMPTS, expected, ours):
        assert got.tolist() == want.tolist(), prompt


def test_long_prompts_are_truncated_with_a_warning_and_keep_the_end_token(tokenizer: ClipTokenizer) -> None:
    prompt = "a" + " big" * 100
    with pytest.warns(UserWarning, match="over the limit of 77"):
        ours = tokenizer([prompt])
    assert ours.tolist() == open_clip.get_tokenizer("ViT-B-32-quickgelu")([prompt]).tolist()
    assert ours[0, -1] == tokenizer.end_id


def test_a_foreign_merges_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bpe.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("header\na b\n")
    with pytest.raises(WeightsError, match="is not CLIP's bpe_simple_vocab_16e6"):
        ClipTokenizer(path, 77)
    (tmp_path / "plain.txt.gz").write_text("not gzip")
    with pytest.raises(WeightsError, match="cannot read CLIP's tokenizer merges"):
        ClipTokenizer(tmp_path / "plain.txt.gz", 77)
