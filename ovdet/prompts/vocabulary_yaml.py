"""Reading a vocabulary YAML file: every failure is one :class:`VocabularyError` line naming the file, the line
and the fix.

Only plain YAML is read, so a vocabulary can come from anyone: no tags (``!!python/...`` and every other), no
aliases (``*name``: no "billion laughs"), at most :data:`MAX_VOCABULARY_BYTES` of UTF-8, nested at most
:data:`MAX_DEPTH` levels. Nothing is ever constructed from a tag, so nothing in the file can run.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..core.errors import ConfigError, VocabularyError
from ..core.plain_yaml import MAX_DEPTH, NodeReader, compose_plain_yaml, plain_value, read_plain_text
from ..core.precision import check_precision
from .vocabulary import BACKGROUND_PROMPT, Vocabulary, VocabularyClass, check_conf, check_template
from .vocabulary import shown as _shown

__all__ = ["MAX_DEPTH", "MAX_VOCABULARY_BYTES", "parse_vocabulary_yaml", "read_vocabulary_yaml"]

MAX_VOCABULARY_BYTES = 1 << 20  # 1 MiB: tens of thousands of classes
_FILE_KEYS = ("background", "calibration", "calibration_digest", "classes", "decoys", "precision", "templates")
_PRECISION_KEYS = ("precision", "calibration", "calibration_digest")
_CLASS_KEYS = ("color", "conf", "prompts")
_TEXT, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_EXAMPLES = {
    "precision": "'precision: int8'",
    "calibration": "'calibration: scenes/'",
    "calibration_digest": "the 64 hex digits ovdet eval writes",
}


def read_vocabulary_yaml(path: Path) -> Vocabulary:
    """Read and check ``path`` (see the module's description of what is refused)."""
    return parse_vocabulary_yaml(read_plain_text(path, MAX_VOCABULARY_BYTES, VocabularyError, "vocabulary"), str(path))


def parse_vocabulary_yaml(text: str, origin: str) -> Vocabulary:
    """Check YAML ``text`` as a vocabulary; errors are reported as ``origin:line``."""
    return _VocabularyFile(origin, text).parse()


class _VocabularyFile(NodeReader):
    """Reads the YAML node tree, so every error can name the file and line."""

    def __init__(self, origin: str, text: str) -> None:
        super().__init__(origin, VocabularyError)
        self.text = text

    def parse(self) -> Vocabulary:
        root = compose_plain_yaml(self.text, self.origin, VocabularyError, "a vocabulary")
        if root is None:
            raise VocabularyError(f"{self.origin}: the file is empty; see the vocabulary example in the README")
        top = self._mapping(root, "the file", _FILE_KEYS)
        if "classes" not in top:
            raise VocabularyError(f"{self._at(root)}: no 'classes' key; list the classes to detect")
        classes = tuple(self._class(key, node) for key, _, node in self._items(top["classes"], "classes"))
        if not classes:
            raise VocabularyError(f"{self._at(top['classes'])}: 'classes' is empty; list at least one class")
        templates = tuple(self._templates(top["templates"])) if "templates" in top else ("{}",)
        decoys = tuple(self._decoys(top["decoys"], classes)) if "decoys" in top else ()
        background = self._background(top.get("background"))
        precision = self._precision(top)
        return Vocabulary(classes, templates, decoys, background, origin=self.origin, **precision)

    def _precision(self, top: dict[str, yaml.Node]) -> dict[str, str]:
        """The precision ``ovdet eval`` recorded, checked here so that every mistake names its line."""
        values = {key: self._scalar_text(top[key], key) for key in _PRECISION_KEYS if key in top}
        if "precision" in values:
            try:
                values["precision"] = check_precision(values["precision"])
            except ConfigError as exc:
                raise VocabularyError(f"{self._at(top['precision'])}: {exc}") from exc
        if values.get("precision") == "int8" and "calibration" not in values:
            raise VocabularyError(
                f"{self._at(top['precision'])}: precision int8 needs 'calibration: VIDEO_OR_FOLDER', the scenes its "
                f"INT8 ranges were calibrated on"
            )
        for key in ("calibration", "calibration_digest"):
            if key in values and values.get("precision") != "int8":
                raise VocabularyError(
                    f"{self._at(top[key])}: {key} belongs to precision int8: add 'precision: int8', or remove it"
                )
        digest = values.get("calibration_digest")
        if digest is not None and not _DIGEST.fullmatch(digest):
            raise VocabularyError(
                f"{self._at(top['calibration_digest'])}: calibration_digest must be the 64 hex digits ovdet eval "
                f"writes; remove the line to skip the check"
            )
        return values

    def _scalar_text(self, node: yaml.Node, key: str) -> str:
        text = " ".join(node.value.split()) if isinstance(node, yaml.ScalarNode) and node.tag == _TEXT else ""
        if not text:
            raise VocabularyError(f"{self._at(node)}: {key} must be text, e.g. {_EXAMPLES[key]}")
        return text

    def _class(self, name: str, node: yaml.Node) -> VocabularyClass:
        where = f"{self._at(node)}: class {_shown(name)}"
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return VocabularyClass(name, (name,))
        if isinstance(node, (yaml.ScalarNode, yaml.SequenceNode)):
            return VocabularyClass(name, self._phrasings(node, where))
        fields = self._mapping(node, f"class {_shown(name)}", _CLASS_KEYS)
        prompts = self._phrasings(fields["prompts"], where) if "prompts" in fields else (name,)
        conf = self._conf(fields["conf"], name) if "conf" in fields else None
        color = self._color(fields["color"], name) if "color" in fields else None
        return VocabularyClass(name, prompts, conf, color)

    def _phrasings(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        phrasings = tuple(self._strings(node, "phrasings"))
        if not phrasings:
            raise VocabularyError(f"{where} has no phrasings; give at least one, or leave the value empty")
        return phrasings

    def _templates(self, node: yaml.Node) -> list[str]:
        for text, value in self._texts(node, "templates"):
            check_template(text, self._at(value))
        return self._strings(node, "templates")

    def _decoys(self, node: yaml.Node, classes: tuple[VocabularyClass, ...]) -> list[str]:
        names = {c.name.casefold() for c in classes}
        for text, value in self._texts(node, "decoys"):
            if text.casefold() in names:
                raise VocabularyError(
                    f"{self._at(value)}: decoy {_shown(text)} is also a class; a decoy must be a look-alike, "
                    f"not a class"
                )
        return self._strings(node, "decoys")

    def _strings(self, node: yaml.Node, what: str) -> list[str]:
        return [text for text, _ in self._texts(node, what)]

    def _texts(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        values = node.value if isinstance(node, yaml.SequenceNode) else [node]
        strings = []
        for value in values:
            if not isinstance(value, yaml.ScalarNode):
                raise VocabularyError(f"{self._at(value)}: each of {what} must be text, not a list or mapping")
            text = " ".join(value.value.split())
            if not text:
                raise VocabularyError(f"{self._at(value)}: an entry of {what} is empty; remove it or write it out")
            if value.tag != _TEXT:
                raise VocabularyError(
                    f"{self._at(value)}: {_shown(text)} in {what} is not text; quote it if it is meant as words"
                )
            strings.append((text, value))
        return strings

    def _conf(self, node: yaml.Node, name: str) -> float:
        where = f"{self._at(node)}: class {_shown(name)}"
        if not isinstance(node, yaml.ScalarNode):
            raise VocabularyError(f"{where}: conf must be a number in [0, 1], not a list or mapping")
        return check_conf(plain_value(node), where)

    def _color(self, node: yaml.Node, name: str) -> str:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if value is None or not _COLOR.fullmatch(value):
            shown = _shown(value) if value is not None else "a list or mapping"
            raise VocabularyError(
                f"{self._at(node)}: class {_shown(name)}: color must be a hex colour like '#ff8800' (quoted), "
                f"not {shown}"
            )
        return value.lower()

    def _background(self, node: yaml.Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        value = plain_value(node) if isinstance(node, yaml.ScalarNode) else None
        if value is True:
            return (BACKGROUND_PROMPT,)
        if value is False:
            return ()
        raise VocabularyError(f"{self._at(node)}: background must be true or false")
