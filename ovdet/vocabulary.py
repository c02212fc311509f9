"""Class names as the user writes them: parsing and validation."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import VocabularyError

__all__ = ["parse_class_list", "validate_class_names"]


def parse_class_list(text: str) -> list[str]:
    """Split a comma-separated ``--classes`` value into validated class names.

    Example:
        >>> parse_class_list("red backpack, person wearing sunglasses")
        ['red backpack', 'person wearing sunglasses']
    """
    return validate_class_names(text.split(","))


def validate_class_names(names: Iterable[str]) -> list[str]:
    """Strip names and reject an empty list, blank names and duplicates with a message that names them."""
    if isinstance(names, str):
        raise VocabularyError(
            f"classes must be a list of names, got the string {names!r}: pass [{names!r}] or split it on commas"
        )
    cleaned = []
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str):
            raise VocabularyError(f"class {position} is {name!r}, not text: pass class names as strings")
        name = " ".join(name.split())
        if not name:
            raise VocabularyError(f"class {position} is blank: remove it or give it a name")
        cleaned.append(name)
    if not cleaned:
        raise VocabularyError('no classes given: pass at least one, e.g. --classes "person,red backpack"')
    seen: set[str] = set()
    duplicates = []
    for name in cleaned:  # CLIP lower-cases its input, so case variants are the same prompt
        if name.casefold() in seen:
            duplicates.append(name)
        seen.add(name.casefold())
    if duplicates:
        raise VocabularyError(f"duplicate class name(s) {', '.join(sorted(set(duplicates)))}: list each class once")
    return cleaned
