"""Plain YAML for files anyone may hand over (vocabularies, zones): no tags (``!!python/...`` and every other), no
aliases (``*name``: no "billion laughs"), nested at most :data:`MAX_DEPTH` levels. Nothing is ever constructed
from a tag, so nothing in the file can run; every failure is one line naming the file and the line.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

from .errors import OvdetError

__all__ = ["MAX_DEPTH", "compose_plain_yaml", "plain_value"]

MAX_DEPTH = 8  # a vocabulary needs 4: the file → classes → a class → its prompts
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_shown = _SHORT.repr


class _PlainLoader(yaml.SafeLoader):
    """Composes plain YAML only: an alias, any explicit tag, or deeper nesting is refused where it stands."""

    def __init__(self, text: str, origin: str, error: type[OvdetError], document: str) -> None:
        super().__init__(text)
        self.origin = origin
        self.error = error
        self.document = document
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        where = f"{self.origin}:{event.start_mark.line + 1}"
        if isinstance(event, yaml.AliasEvent):
            raise self.error(
                f"{where}: alias *{event.anchor[:40]} is not allowed in {self.document}: write the value out"
            )
        if event.tag is not None:
            tag = event.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.error(
                f"{where}: tag {_shown(tag)} is not allowed in {self.document}: remove it (quote a value to make it "
                f"text)"
            )
        if self.depth >= MAX_DEPTH:
            raise self.error(f"{where}: nested deeper than {MAX_DEPTH} levels; check the indentation")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def compose_plain_yaml(text: str, origin: str, error: type[OvdetError], document: str) -> yaml.Node | None:
    """The node tree of plain YAML ``text`` (see the module's description); every failure is one ``error`` line."""
    try:
        loader = _PlainLoader(text, origin, error, document)  # its reader checks every character first
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join("; ".join(filter(None, (exc.context, exc.problem))).split())
        raise error(f"{origin}{line}: not valid YAML ({problem}): fix the syntax") from None
    except yaml.YAMLError as exc:  # the reader's: a character YAML does not allow
        position = getattr(exc, "position", 0)
        line = text.count("\n", 0, position) + 1
        reason = getattr(exc, "reason", "unreadable text")
        raise error(f"{origin}:{line}: not valid YAML ({reason}): remove the control character") from None


def plain_value(node: yaml.ScalarNode) -> Any:
    """A plain value as YAML reads it (the node carries no tag and no alias: nothing can run)."""
    try:
        return yaml.SafeLoader("").construct_object(node)
    except (ValueError, yaml.YAMLError):  # a value that looks like a date but is none, e.g. 2024-13-45
        return node.value
