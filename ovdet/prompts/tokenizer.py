"""CLIP's byte-pair tokenizer in numpy, the one every prompt in ovdet is tokenized with (no torch).

It reproduces OpenAI CLIP's (MIT License, © 2021 OpenAI), as open_clip ships it for ``ViT-B-32-quickgelu`` and the
MobileCLIP configs (the tests check the tokens equal open_clip's): fix the text with ftfy, unescape HTML twice,
collapse whitespace, lower-case, split with CLIP's pattern, map bytes to printable characters, merge byte pairs by
rank, frame with start/end tokens and pad with zeros to the space's context length. Its merges file travels inside
each changeable-vocabulary export, so a deployment needs only numpy, ftfy, regex and onnxruntime (or OpenVINO).
"""

from __future__ import annotations

import gzip
import html
import itertools
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.errors import WeightsError, missing_dependency

__all__ = ["ClipTokenizer"]

START, END = "<start_of_text>", "<end_of_text>"
MERGE_COUNT = 49152 - 256 - 2  # CLIP's vocabulary: 49,408 tokens = 2×256 bytes + merges + 2 specials
SPLIT_PATTERN = START + "|" + END + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
WORD_END = "</w>"


@lru_cache(maxsize=1)
def byte_characters() -> dict[int, str]:
    """CLIP's reversible map from each byte to a printable character (bytes that print map to themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes)}


class ClipTokenizer:
    """CLIP's byte-pair tokenizer, in numpy.

    Args:
        vocab_path: CLIP's ``bpe_simple_vocab_16e6.txt.gz`` (merges by rank).
        context_length: Tokens per prompt, start and end tokens included (the space's, in
            :data:`ovdet.prompts.spaces.SPACES`).

    Example:
        >>> tokenizer = ClipTokenizer("bpe_simple_vocab_16e6.txt.gz", 77)  # doctest: +SKIP
        >>> tokenizer(["a red backpack"])[0, :6]  # doctest: +SKIP
        array([49406,   320,   736, 14898, 49407,     0])
    """

    def __init__(self, vocab_path: str | os.PathLike[str], context_length: int) -> None:
        try:
            import ftfy
            import regex
        except ImportError as exc:
            raise missing_dependency(exc.name or "ftfy", "onnx", "tokenizing prompts without torch") from exc
        self._fix_text = ftfy.fix_text
        self._pattern = regex.compile(SPLIT_PATTERN, regex.IGNORECASE)
        merges = _read_merges(Path(vocab_path))
        characters = list(byte_characters().values())
        vocabulary = [*characters, *(c + WORD_END for c in characters), *("".join(m) for m in merges), START, END]
        self.token_ids = {token: index for index, token in enumerate(vocabulary)}
        self.merge_ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.start_id, self.end_id = self.token_ids[START], self.token_ids[END]
        self.context_length = context_length
        self._words: dict[str, list[str]] = {START: [START], END: [END]}

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without the start and end tokens."""
        cleaned = " ".join(html.unescape(html.unescape(self._fix_text(text))).split()).lower()
        ids: list[int] = []
        for word in self._pattern.findall(cleaned):
            printable = "".join(byte_characters()[byte] for byte in word.encode("utf-8"))
            ids.extend(self.token_ids[token] for token in self._merge(printable))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, context_length)`` int64 token ids; a text that does not fit is truncated with a warning."""
        ids = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.start_id, *self.encode(text), self.end_id]
            if len(tokens) > self.context_length:
                warnings.warn(
                    f"prompt {text[:40]!r}… is {len(tokens)} CLIP tokens, over the limit of {self.context_length}: "
                    f"it was truncated; shorten it to keep its end",
                    UserWarning,
                    stacklevel=3,
                )
                tokens = [*tokens[: self.context_length - 1], self.end_id]
            ids[row, : len(tokens)] = tokens
        return ids

    def _merge(self, word: str) -> list[str]:
        """Merge the characters of one word by byte-pair rank, lowest rank first, until no known pair is left."""
        if word in self._words:
            return self._words[word]
        parts = [*word[:-1], word[-1] + WORD_END]
        while len(parts) > 1:
            pairs = set(itertools.pairwise(parts))
            best = min(pairs, key=lambda pair: self.merge_ranks.get(pair, float("inf")))
            if best not in self.merge_ranks:
                break
            parts = _join_pair(parts, best)
        self._words[word] = parts
        return parts


def _join_pair(parts: list[str], pair: tuple[str, str]) -> list[str]:
    joined, index = [], 0
    while index < len(parts):
        if index < len(parts) - 1 and (parts[index], parts[index + 1]) == pair:
            joined.append(parts[index] + parts[index + 1])
            index += 2
        else:
            joined.append(parts[index])
            index += 1
    return joined


def _read_merges(path: Path) -> list[tuple[str, str]]:
    try:
        with gzip.open(path) as handle:
            lines = handle.read().decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read CLIP's tokenizer merges from {path} ({exc}): re-export the model") from exc
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    if len(merges) != MERGE_COUNT or any(len(merge) != 2 for merge in merges):
        raise WeightsError(f"{path} is not CLIP's bpe_simple_vocab_16e6.txt.gz: re-export the model")
    return merges
