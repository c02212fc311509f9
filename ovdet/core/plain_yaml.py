"""Plain YAML for files anyone may hand over (vocabularies, zones): no tags (``!!python/...`` and every other), no
aliases (``*name``: no "billion laughs"), nested at most :data:`MAX_DEPTH` levels. Nothing is ever constructed
from a tag, so nothing in the file can run; every failure is one line naming the file and the line.
"""

from __future__ import annotations

import difflib
import reprlib
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import OvdetError

__all__ = ["MAX_DEPTH", "NodeReader", "compose_plain_yaml", "decode_plain_text", "plain_value", "read_plain_text"]

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


def read_plain_text(path: Path, limit: int, error: type[OvdetError], document: str) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; ``document`` names it in errors ("vocabulary")."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a folder, or a pipe that would block the read
            raise error(f"{document} {path} is not a regular file: pass a .yaml file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{document} {path} cannot be read ({exc.strerror or exc}): check the path") from exc
    if len(data) > limit:
        raise error(
            f"{document} {path} is over {_size(limit)}, the most a {document} may hold: check that this is the "
            f"right file"
        )
    return decode_plain_text(data, str(path), error)


def decode_plain_text(data: bytes, origin: str, error: type[OvdetError], fix: str = "save the file as UTF-8") -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped); otherwise one ``error`` line naming ``origin``'s line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{origin}:{line}: byte {data[exc.start]:#04x} is not UTF-8: {fix}") from None


def _size(limit: int) -> str:
    """``1 MiB``, ``128 KiB``: a byte limit as the message shows it."""
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit >> 10} KiB"


class NodeReader:
    """Reads a plain-YAML node tree: named entries and known keys, every error one ``error`` line at file:line."""

    def __init__(self, origin: str, error: type[OvdetError]) -> None:
        self.origin = origin
        self.error = error

    def _at(self, node: yaml.Node) -> str:
        return f"{self.origin}:{node.start_mark.line + 1}"

    def _items(self, node: yaml.Node | None, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """``(name, key node, value node)`` of a mapping; names are text with blanks collapsed, unique by case."""
        if node is None:
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{self._at(node)}: {what} must be a mapping of names to values")
        seen: dict[str, int] = {}
        items = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.error(f"{self._at(key)}: a key in {what} is a list or mapping; write it as text")
            name = " ".join(key.value.split())
            if not name:
                raise self.error(f"{self._at(key)}: a key in {what} is blank; write its name")
            if name.casefold() in seen:
                raise self.error(
                    f"{self._at(key)}: duplicate {what} entry {_shown(name)} (first on line "
                    f"{seen[name.casefold()]}); list it once"
                )
            seen[name.casefold()] = key.start_mark.line + 1
            items.append((name, key, value))
        return items

    def _mapping(self, node: yaml.Node, what: str, allowed: Iterable[str]) -> dict[str, yaml.Node]:
        """The entries of a mapping whose keys must be among ``allowed`` (a misspelt one gets a suggestion)."""
        allowed = tuple(allowed)
        items = self._items(node, what)
        for name, key, _ in items:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(
                    f"{self._at(key)}: unknown key {_shown(name)} in {what}; {hint}allowed: {', '.join(allowed)}"
                )
        return {name: value for name, _, value in items}
