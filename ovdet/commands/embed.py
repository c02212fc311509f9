"""``ovdet embed``: precompute a vocabulary's embeddings, so detection runs with no text model loaded."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..core.errors import ConfigError
from ..core.weights import WEIGHTS, resolve_weights
from ..prompts.spaces import CLIP_SPACE, MOBILECLIP2_SPACE, MOBILECLIP_SPACE, SPACES

log = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ovdet embed``."""
    embed = commands.add_parser(
        "embed",
        help="precompute a vocabulary's embeddings into an .npz",
        description="Encode a vocabulary (YAML, or inline --classes) once; `ovdet detect --vocab OUT.npz` then "
        "needs no text model. Class thresholds, colours and decoys travel in the file.",
    )
    embed.add_argument("vocab", nargs="?", help="vocabulary file (.yaml)")
    embed.add_argument("--classes", help="inline classes instead of a file (same syntax as ovdet detect)")
    embed.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the embeddings")
    family = embed.add_mutually_exclusive_group()
    family.add_argument(
        "--space",
        choices=tuple(SPACES),
        help=f"embedding space of the detector it is for (default {CLIP_SPACE}, YOLO-World's); "
        f"{MOBILECLIP_SPACE}: YOLOE-v8/11, {MOBILECLIP2_SPACE}: YOLOE-26",
    )
    family.add_argument("--model", help="the detector it is for (registry name, .pt or export): its space is used")
    embed.add_argument("--device", default="cpu", help="device for the text encoder (default %(default)s)")
    embed.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io.sinks import check_writable
    from ..prompts.cache import EmbeddingCache
    from ..prompts.classes import embed
    from ..prompts.text import text_encoder_for
    from ..prompts.vocabulary import Vocabulary, parse_classes
    from ..prompts.vocabulary_files import load_vocabulary

    if bool(args.vocab) == bool(args.classes):
        raise ConfigError("give a vocabulary file or --classes (one of them): ovdet embed vocab.yaml -o vocab.npz")
    output = check_writable(args.output)
    if output.suffix.lower() != ".npz":
        raise ConfigError(f"output {output} must end in .npz")
    vocabulary = load_vocabulary(args.vocab) if args.vocab else parse_classes(args.classes)
    if not isinstance(vocabulary, Vocabulary):
        raise ConfigError(f"{args.vocab} is already an .npz of embeddings: pass the YAML vocabulary it came from")
    encoder, cache = text_encoder_for(_space(args), device=args.device), EmbeddingCache()
    started = time.perf_counter()
    embeddings = embed(vocabulary, encoder, cache).embeddings
    embeddings.save(output)
    rows = len(embeddings)
    print(f"{len(vocabulary.classes)} class(es), {rows - len(vocabulary.classes)} decoy/background row(s), "
          f"{embeddings.space}, {time.perf_counter() - started:.1f} s → {Path(output)}")  # fmt: skip
    return 0


def _space(args: argparse.Namespace) -> str:
    """The embedding space asked for: ``--space``, else ``--model``'s, else CLIP's (YOLO-World)."""
    if args.model is None:
        return args.space or CLIP_SPACE
    name = args.model.removesuffix(".pt")
    if name in WEIGHTS and not Path(args.model).exists():  # a registry name: its row says, nothing to load
        return WEIGHTS[name].space
    from ..models import load_backend

    return load_backend(resolve_weights(args.model), device="cpu", runtime="torch").space
