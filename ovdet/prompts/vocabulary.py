"""Vocabularies a team can own: classes with synonyms, prompt templates, per-class thresholds and colours,
decoys, and a background entry — written in YAML (:mod:`ovdet.prompts.vocabulary_yaml`), as an inline
``--classes`` string, or stored with precomputed embeddings (:mod:`ovdet.prompts.vocabulary_files`).

Each class is one embedding: the mean of its phrasings × templates (each L2-normalised), normalised again.
Decoys and the background entry get embeddings of their own so they compete for boxes, and are then dropped
from every output.
"""

from __future__ import annotations

import os
import reprlib
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError, VocabularyError
from ..core.files import write_atomically
from ..core.precision import check_precision

__all__ = [
    "BACKGROUND_PROMPT",
    "Vocabulary",
    "VocabularyClass",
    "parse_class_list",
    "parse_classes",
    "validate_class_names",
]

BACKGROUND_PROMPT = " "  # the YOLO-World authors pad few-class vocabularies with an empty prompt
MAX_PROMPTS = 100_000  # phrasings × templates to encode; more is a mistake (or an attack), not a vocabulary
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60


@dataclass(frozen=True)
class VocabularyClass:
    """One class: the name reported, the phrasings averaged into its embedding, optional threshold and colour."""

    name: str
    prompts: tuple[str, ...]
    conf: float | None = None
    color: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    """What to detect, as a team writes it down.

    Attributes:
        classes: The classes reported, in class-id order.
        templates: Prompt templates with ``{}`` for the phrasing, averaged per class (default: the phrasing alone).
        decoys: Prompts that compete for boxes and are dropped from every output.
        background: Padding prompts (dropped like decoys); the YOLO-World authors add ``" "`` to small vocabularies.
        precision: The precision ``ovdet eval`` validated for it on labelled images (``fp32``, ``bf16``, ``fp16``
            or ``int8``), which ``ovdet detect`` then runs in; ``None``: FP32.
        calibration: For ``int8``: the video file or image folder the INT8 ranges are calibrated on, as given.
        calibration_digest: SHA-256 of that source's content when it was validated, so a changed set is noticed.

    Example:
        >>> vocabulary = parse_classes("pump=infusion pump|IV pump@0.3, person, !toy pump")
        >>> [c.name for c in vocabulary.classes], vocabulary.decoys
        (['pump', 'person'], ('toy pump',))
    """

    classes: tuple[VocabularyClass, ...]
    templates: tuple[str, ...] = ("{}",)
    decoys: tuple[str, ...] = ()
    background: tuple[str, ...] = ()
    origin: str = field(default="--classes", compare=False)
    precision: str | None = None
    calibration: str | None = None
    calibration_digest: str | None = None

    def __post_init__(self) -> None:
        _check_vocabulary(self)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Vocabulary:
        """One phrasing per class, the class name itself — exactly what Ultralytics' ``set_classes`` encodes."""
        return cls(tuple(VocabularyClass(name, (name,)) for name in validate_class_names(names)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def dropped(self) -> tuple[str, ...]:
        """Rows that compete and are then dropped: decoys, then background prompts."""
        return self.decoys + self.background

    def row_prompts(self) -> list[list[str]]:
        """For each embedding row (classes, decoys, background), the full prompts averaged into it."""
        rows = [[template.format(p) for p in c.prompts for template in self.templates] for c in self.classes]
        rows += [[template.format(d) for template in self.templates] for d in self.decoys]
        rows += [[b] for b in self.background]
        return rows

    def colors(self) -> list[str | None]:
        return [c.color for c in self.classes]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (also stored inside ``.npz`` files)."""
        classes: dict[str, Any] = {}
        for c in self.classes:
            entry: dict[str, Any] = {"prompts": list(c.prompts)}
            if c.conf is not None:
                entry["conf"] = c.conf
            if c.color is not None:
                entry["color"] = c.color
            classes[c.name] = entry
        data: dict[str, Any] = {"classes": classes}
        if self.templates != ("{}",):
            data["templates"] = list(self.templates)
        if self.decoys:
            data["decoys"] = list(self.decoys)
        if self.background:
            data["background"] = True
        for key in ("precision", "calibration", "calibration_digest"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def save(self, path: str | os.PathLike[str], comment: str = "") -> Path:
        """Write the vocabulary as YAML, with ``comment`` lines on top, atomically: an ``ovdet detect`` watching
        the file never reads half of it.

        Example:
            >>> parse_classes("pump=IV pump@0.3").save("vocab.yaml", "tuned by ovdet eval")  # doctest: +SKIP
        """
        path = Path(path)
        header = "".join(f"# {line}\n" for line in comment.splitlines())
        text = header + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        write_atomically([(path, text.encode("utf-8"))])
        return path


def validate_class_names(names: Iterable[str]) -> list[str]:
    """Strip names and reject an empty list, blank names and duplicates with a message that names them."""
    if isinstance(names, (str, bytes)):
        raise VocabularyError(
            f"classes must be a list of names, got the string {shown(names)}: pass [{shown(names)}] or split it on "
            f"commas"
        )
    if not isinstance(names, Iterable):
        raise VocabularyError(
            f"classes must be a list of names, a Vocabulary or Embeddings, got {shown(names)}: pass e.g. "
            f'["person", "red backpack"]'
        )
    cleaned = []
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str):
            raise VocabularyError(f"class {position} is {shown(name)}, not text: pass class names as strings")
        name = " ".join(name.split())
        if not name:
            raise VocabularyError(f"class {position} is blank: remove it or give it a name")
        cleaned.append(name)
    if not cleaned:
        raise VocabularyError('no classes given: pass at least one name, e.g. ["person", "red backpack"]')
    seen: set[str] = set()
    duplicates = []
    for name in cleaned:  # CLIP lower-cases its input, so case variants are the same prompt
        if name.casefold() in seen:
            duplicates.append(name)
        seen.add(name.casefold())
    if duplicates:
        listed = ", ".join(shown(name) for name in sorted(set(duplicates)))
        raise VocabularyError(f"duplicate class name(s) {listed}: list each class once")
    return cleaned


def parse_class_list(text: str) -> list[str]:
    """Split a plain comma-separated list into validated class names.

    Example:
        >>> parse_class_list("red backpack, person wearing sunglasses")
        ['red backpack', 'person wearing sunglasses']
    """
    return validate_class_names(text.split(","))


def parse_classes(text: str) -> Vocabulary:
    """Parse the inline ``--classes`` syntax.

    Classes are separated by commas. Each is ``name``, optionally ``=phrasing|phrasing…`` (synonyms, averaged),
    optionally ``@conf`` (its own threshold). ``!prompt`` adds a decoy.

    Example:
        >>> v = parse_classes("infusion pump=infusion pump|IV pump|syringe driver@0.3, person, !toy")
        >>> v.classes[0].prompts, v.classes[0].conf
        (('infusion pump', 'IV pump', 'syringe driver'), 0.3)
    """
    classes, decoys = [], []
    for position, item in enumerate(text.split(","), start=1):
        item = item.strip()
        if item.startswith("!"):
            decoys.append(" ".join(item[1:].split()))
            continue
        item, conf = _split_threshold(item, f"--classes item {position}")
        name, _, phrasings = item.partition("=")
        name = " ".join(name.split())
        prompts = tuple(" ".join(p.split()) for p in phrasings.split("|")) if phrasings else (name,)
        if not name:
            raise VocabularyError(f"--classes item {position} is blank: remove it or give it a name")
        classes.append(VocabularyClass(name, prompts, conf))
    if not classes:
        raise VocabularyError('no classes given: pass at least one, e.g. --classes "person,red backpack"')
    return Vocabulary(tuple(classes), decoys=tuple(decoys))


def shown(value: Any) -> str:
    """A user's value quoted and shortened for a one-line message."""
    return _SHORT.repr(value)


def _split_threshold(item: str, where: str) -> tuple[str, float | None]:
    if "@" not in item:
        return item, None
    item, _, raw = item.rpartition("@")
    try:
        conf = float(raw)
    except ValueError:
        raise VocabularyError(f"{where}: threshold {raw!r} after @ is not a number; write e.g. person@0.3") from None
    return item, check_conf(conf, where)


def check_conf(conf: Any, where: str) -> float:
    """``conf`` as a float in [0, 1], or an error saying where it was and what to write."""
    if isinstance(conf, bool) or not isinstance(conf, (int, float)):
        raise VocabularyError(f"{where}: conf {shown(conf)} is not a number; use a threshold such as 0.3")
    if not 0.0 <= conf <= 1.0:
        raise VocabularyError(f"{where}: conf {shown(conf)} is outside [0, 1]; use a threshold such as 0.3")
    return float(conf)


def _check_vocabulary(vocabulary: Vocabulary) -> None:
    where = vocabulary.origin
    validate_class_names(vocabulary.names)
    for c in vocabulary.classes:
        if not c.prompts or any(not p.strip() for p in c.prompts):
            raise VocabularyError(f"{where}: class {shown(c.name)} has an empty phrasing; give it at least one word")
    for template in vocabulary.templates:
        check_template(template, where)
    _check_precision(vocabulary)
    prompts = len(vocabulary.templates) * (sum(len(c.prompts) for c in vocabulary.classes) + len(vocabulary.decoys))
    if prompts > MAX_PROMPTS:
        raise VocabularyError(
            f"{where}: {prompts} prompts to encode (phrasings × templates), over the limit of {MAX_PROMPTS}: "
            f"use fewer phrasings or templates"
        )
    names = {n.casefold() for n in vocabulary.names}
    for decoy in vocabulary.decoys:
        if not decoy:
            raise VocabularyError(f"{where}: a decoy is blank; remove it or write the look-alike it stands for")
        if decoy.casefold() in names:
            raise VocabularyError(
                f"{where}: decoy {shown(decoy)} is also a class; a decoy must be a look-alike, not a class"
            )


def check_template(template: str, where: str) -> None:
    """A template holds exactly one bare ``{}`` (``str.format`` would fail, or ignore the phrasing, otherwise)."""
    try:
        fields = [field for field in string.Formatter().parse(template) if field[1] is not None]
    except ValueError:  # an unmatched brace
        fields = []
    if [field[1:] for field in fields] != [("", "", None)]:
        raise VocabularyError(
            f"{where}: template {shown(template)} must contain {{}} exactly once and no other braces, "
            f"e.g. 'a photo of a {{}}'"
        )


def _check_precision(vocabulary: Vocabulary) -> None:
    """A recorded precision is a known one; INT8 names its calibration source, and only INT8 has one."""
    where = vocabulary.origin
    if vocabulary.precision is not None:
        try:
            check_precision(vocabulary.precision)
        except ConfigError as exc:
            raise VocabularyError(f"{where}: {exc}") from exc
    if vocabulary.precision == "int8" and not vocabulary.calibration:
        raise VocabularyError(
            f"{where}: precision int8 needs calibration: the video file or image folder it was calibrated on"
        )
    if vocabulary.precision != "int8" and (vocabulary.calibration or vocabulary.calibration_digest):
        raise VocabularyError(f"{where}: calibration belongs to precision int8: add precision: int8, or remove it")
    digest = vocabulary.calibration_digest
    if digest is not None and not (len(digest) == 64 and all(char in string.hexdigits for char in digest)):
        raise VocabularyError(
            f"{where}: calibration_digest must be the 64 hex digits ovdet eval writes; remove it to skip the check"
        )
