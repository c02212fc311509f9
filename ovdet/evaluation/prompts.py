"""Prompt comparison: which variants of a vocabulary to run, how to rank them, and the vocabulary that wins.

A variant is the whole vocabulary with one thing changed — one class written with a single phrasing, or every
class under a single template — because YOLO-World's neck attends to all prompts at once, so a class's scores
depend on the other classes' words too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..prompts.vocabulary import Vocabulary

__all__ = [
    "ALL_PHRASINGS",
    "ALL_TEMPLATES",
    "TEMPLATES",
    "RankedVariant",
    "Variant",
    "best_vocabulary",
    "describe_prompts",
    "plan_variants",
    "rank",
    "without_thresholds",
]

TEMPLATES = "templates"  # the subject of template variants, which change every class at once
ALL_PHRASINGS = "all phrasings"
ALL_TEMPLATES = "all templates"


@dataclass(frozen=True)
class Variant:
    """One vocabulary to run: the written one with a single class's phrasings, or the templates, replaced.

    Attributes:
        subject: The class name changed, or :data:`TEMPLATES`.
        label: How reports name the variant: the phrasing, or the template.
        prompts: The class's phrasings, or the templates, in this variant.
        vocabulary: The whole vocabulary that is run.
    """

    subject: str
    label: str
    prompts: tuple[str, ...]
    vocabulary: Vocabulary


@dataclass(frozen=True)
class RankedVariant:
    """A variant's score: the class's AP, or the mAP for template variants.

    Attributes:
        label: The phrasing or template; :data:`ALL_PHRASINGS` or :data:`ALL_TEMPLATES` for the vocabulary as written.
        prompts: The phrasings (or templates) it used.
        ap50_95: AP (or mAP) over IoU 0.5 to 0.95.
        ap50: AP (or mAP) at IoU 0.5.
    """

    label: str
    prompts: tuple[str, ...]
    ap50_95: float
    ap50: float


def without_thresholds(vocabulary: Vocabulary) -> Vocabulary:
    """The vocabulary with every class's own threshold removed, so a low-confidence run sees all boxes.

    Example:
        >>> from ovdet.prompts.vocabulary import parse_classes
        >>> without_thresholds(parse_classes("pump@0.4")).classes[0].conf is None
        True
    """
    return dataclasses.replace(vocabulary, classes=tuple(dataclasses.replace(c, conf=None) for c in vocabulary.classes))


def plan_variants(vocabulary: Vocabulary, classes: Iterable[str]) -> list[Variant]:
    """Every single-phrasing variant of the named classes that have several phrasings, then every single-template
    variant when the vocabulary has several templates.

    Example:
        >>> from ovdet.prompts.vocabulary import parse_classes
        >>> vocabulary = parse_classes("pump=infusion pump|IV pump, person")
        >>> [v.label for v in plan_variants(vocabulary, ["pump", "person"])]
        ['infusion pump', 'IV pump']
    """
    wanted = set(classes)
    variants = [
        Variant(c.name, phrasing, (phrasing,), _with_prompts(vocabulary, c.name, (phrasing,)))
        for c in vocabulary.classes
        if c.name in wanted and len(c.prompts) > 1
        for phrasing in c.prompts
    ]
    if len(vocabulary.templates) > 1:
        variants += [
            Variant(TEMPLATES, template, (template,), dataclasses.replace(vocabulary, templates=(template,)))
            for template in vocabulary.templates
        ]
    return variants


def rank(written: RankedVariant, variants: Sequence[RankedVariant]) -> tuple[RankedVariant, ...]:
    """Best first by AP50-95, then AP50; on a tie the vocabulary as written stays ahead, then the listed order.

    Example:
        >>> written = RankedVariant("all phrasings", ("a", "b"), 0.2, 0.5)
        >>> singles = [RankedVariant("a", ("a",), 0.3, 0.4), RankedVariant("b", ("b",), 0.2, 0.5)]
        >>> [v.label for v in rank(written, singles)]
        ['a', 'all phrasings', 'b']
    """
    return tuple(sorted([written, *variants], key=lambda v: (-_sortable(v.ap50_95), -_sortable(v.ap50))))


def best_vocabulary(
    vocabulary: Vocabulary, phrasings: Mapping[str, Sequence[RankedVariant]], templates: Sequence[RankedVariant]
) -> Vocabulary:
    """The vocabulary with each ranked class's best phrasings and the best templates (thresholds unchanged).

    Example:
        >>> from ovdet.prompts.vocabulary import parse_classes
        >>> vocabulary = parse_classes("pump=infusion pump|IV pump")
        >>> ranked = (RankedVariant("IV pump", ("IV pump",), 0.4, 0.6),)
        >>> best_vocabulary(vocabulary, {"pump": ranked}, ()).classes[0].prompts
        ('IV pump',)
    """
    best = vocabulary
    for name, ranking in phrasings.items():
        best = _with_prompts(best, name, ranking[0].prompts)
    if templates:
        best = dataclasses.replace(best, templates=templates[0].prompts)
    return best


def describe_prompts(prompts: Sequence[str]) -> str:
    """Phrasings or templates as a reader sees them: quoted, the bare template explained.

    Example:
        >>> describe_prompts(["a photo of a {}", "{}"])
        '"a photo of a {}", "{}" (the phrasing alone)'
    """
    return ", ".join(f'"{p}" (the phrasing alone)' if p == "{}" else f'"{p}"' for p in prompts)


def _with_prompts(vocabulary: Vocabulary, name: str, prompts: tuple[str, ...]) -> Vocabulary:
    classes = tuple(dataclasses.replace(c, prompts=prompts) if c.name == name else c for c in vocabulary.classes)
    return dataclasses.replace(vocabulary, classes=classes)


def _sortable(value: float) -> float:
    return value if value == value else -1.0  # nan (undefined AP) sorts last
