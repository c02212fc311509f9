"""Vocabularies a team can own: classes with synonyms, prompt templates, per-class thresholds and colours,
decoys, and a background entry — from a YAML file, an inline ``--classes`` string, or a precomputed ``.npz``.

Each class is one embedding: the mean of its phrasings × templates (each L2-normalised), normalised again.
Decoys and the background entry get embeddings of their own so they compete for boxes, and are then dropped
from every output.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .embeddings import Embeddings, normalize
from .errors import VocabularyError

__all__ = [
    "BACKGROUND_PROMPT",
    "Vocabulary",
    "VocabularyClass",
    "VocabularyWatcher",
    "load_vocabulary",
    "parse_class_list",
    "parse_classes",
    "validate_class_names",
    "vocabulary_of",
]

log = logging.getLogger(__name__)

BACKGROUND_PROMPT = " "  # the YOLO-World authors pad few-class vocabularies with an empty prompt
_FILE_KEYS = {"classes", "templates", "decoys", "background"}
_CLASS_KEYS = {"prompts", "conf", "color"}
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


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

    def embed(self, encode: Callable[[Sequence[str]], np.ndarray], space: str) -> Embeddings:
        """Embeddings for every row, each the normalised mean of its normalised prompt embeddings.

        Args:
            encode: Prompts → ``(N, D)`` L2-normalised rows (e.g. a detector's cached ``encode_prompts``).
            space: The embedding space ``encode`` produces.
        """
        rows = self.row_prompts()
        unique = list(dict.fromkeys(prompt for row in rows for prompt in row))
        vectors = dict(zip(unique, normalize(encode(unique))))
        means = np.stack([np.mean([vectors[p] for p in row], axis=0) for row in rows])
        names = self.names + tuple(f"decoy:{d}" for d in self.decoys) + tuple("background" for _ in self.background)
        return Embeddings(names, normalize(means), space, {"vocabulary": self.to_dict()})

    def thresholds(self, default: float) -> np.ndarray:
        """Per-class confidence thresholds, ``default`` where a class sets none."""
        return np.array([default if c.conf is None else c.conf for c in self.classes], dtype=np.float32)

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
        return data

    def save(self, path: str | os.PathLike[str], comment: str = "") -> Path:
        """Write the vocabulary as YAML, with ``comment`` lines on top, atomically: an ``ovdet detect`` watching
        the file never reads half of it.

        Example:
            >>> parse_classes("pump=IV pump@0.3").save("vocab.yaml", "tuned by ovdet eval")  # doctest: +SKIP
        """
        path = Path(path)
        header = "".join(f"# {line}\n" for line in comment.splitlines())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), "utf-8")
        os.replace(temporary, path)
        return path


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


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary | Embeddings:
    """Read a vocabulary file: ``.yaml``/``.yml`` → :class:`Vocabulary`; ``.npz`` → :class:`Embeddings` (from
    ``ovdet embed``, needs no text model)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return Embeddings.load(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise VocabularyError(f"vocabulary {path} must be a .yaml (or .yml) file or an .npz from `ovdet embed`")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VocabularyError(f"vocabulary {path} cannot be read ({exc.strerror or exc}): check the path") from exc
    return _VocabularyFile(path, text).parse()


def vocabulary_of(embeddings: Embeddings) -> Vocabulary:
    """The vocabulary stored in an ``.npz`` by ``ovdet embed``; plain embeddings are one class per row."""
    stored = embeddings.meta.get("vocabulary")
    if stored is None:
        return Vocabulary.from_names(embeddings.names)
    vocabulary = _VocabularyFile(Path("<npz>"), yaml.safe_dump(stored, sort_keys=False)).parse()
    if embeddings.names[: len(vocabulary.classes)] != vocabulary.names:
        raise VocabularyError("the .npz's class rows do not match the vocabulary stored in it: re-run ovdet embed")
    return vocabulary


class VocabularyWatcher:
    """Notices edits to a vocabulary file between frames (by modification time and size).

    A file that fails to parse is reported and ignored: the running vocabulary stays.

    Example:
        >>> watcher = VocabularyWatcher("vocab.yaml")  # doctest: +SKIP
        >>> if (vocabulary := watcher.poll()) is not None:  # doctest: +SKIP
        ...     detector.set_classes(vocabulary)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def poll(self) -> Vocabulary | Embeddings | None:
        """The new vocabulary if the file changed since the last poll, else ``None``."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            vocabulary = load_vocabulary(self.path)
        except VocabularyError as exc:
            log.warning("ignoring the edited vocabulary, keeping the current one: %s", exc)
            return None
        log.warning("vocabulary %s changed: now %s", self.path, ", ".join(_names_of(vocabulary)))
        return vocabulary


def _names_of(vocabulary: Vocabulary | Embeddings) -> tuple[str, ...]:
    return vocabulary.names if isinstance(vocabulary, Vocabulary) else vocabulary_of(vocabulary).names


def _split_threshold(item: str, where: str) -> tuple[str, float | None]:
    if "@" not in item:
        return item, None
    item, _, raw = item.rpartition("@")
    try:
        conf = float(raw)
    except ValueError:
        raise VocabularyError(f"{where}: threshold {raw!r} after @ is not a number; write e.g. person@0.3") from None
    return item, _check_conf(conf, where)


def _check_conf(conf: Any, where: str) -> float:
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
        raise VocabularyError(f"{where}: conf {conf!r} is outside [0, 1]; use a threshold such as 0.3")
    return float(conf)


def _check_vocabulary(vocabulary: Vocabulary) -> None:
    where = vocabulary.origin
    validate_class_names(vocabulary.names)
    for c in vocabulary.classes:
        if not c.prompts or any(not p.strip() for p in c.prompts):
            raise VocabularyError(f"{where}: class {c.name!r} has an empty phrasing; give it at least one word")
    for template in vocabulary.templates:
        if template.count("{}") != 1:
            raise VocabularyError(
                f"{where}: template {template!r} must contain {{}} exactly once, e.g. 'a photo of a {{}}'"
            )
    names = {n.casefold() for n in vocabulary.names}
    for decoy in vocabulary.decoys:
        if not decoy:
            raise VocabularyError(f"{where}: a decoy is blank; remove it or write the look-alike it stands for")
        if decoy.casefold() in names:
            raise VocabularyError(
                f"{where}: decoy {decoy!r} is also a class; a decoy must be a look-alike, not a class"
            )


class _VocabularyFile:
    """Reads the YAML node tree, so every error can name the file and line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def parse(self) -> Vocabulary:
        try:
            root = yaml.compose(self.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise VocabularyError(f"{self.path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        if root is None:
            raise VocabularyError(f"{self.path}: the file is empty; see the vocabulary example in the README")
        top = self._mapping(root, "the file", _FILE_KEYS)
        if "classes" not in top:
            raise VocabularyError(
                f"{self.path}:{root.start_mark.line + 1}: no 'classes' key; list the classes to detect"
            )
        classes = tuple(self._class(key, node) for key, node in self._items(top["classes"], "classes"))
        if not classes:
            raise VocabularyError(f"{self._at(top['classes'])}: 'classes' is empty; list at least one class")
        templates = tuple(self._strings(top["templates"], "templates")) if "templates" in top else ("{}",)
        decoys = tuple(self._strings(top["decoys"], "decoys")) if "decoys" in top else ()
        background = self._background(top.get("background"))
        return Vocabulary(classes, templates, decoys, background, origin=str(self.path))

    def _at(self, node: yaml.Node) -> str:
        return f"{self.path}:{node.start_mark.line + 1}"

    def _mapping(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise VocabularyError(f"{self._at(node)}: {what} must be a mapping of keys to values")
        items = dict(self._items(node, what))
        unknown = sorted(set(items) - allowed)
        if unknown:
            raise VocabularyError(
                f"{self._at(node)}: unknown key(s) {', '.join(unknown)} in {what}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        return items

    def _items(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise VocabularyError(f"{self._at(node)}: {what} must be a mapping (name: phrasings)")
        seen: dict[str, int] = {}
        items = []
        for key, value in node.value:
            name = " ".join(str(key.value).split())
            if name.casefold() in seen:
                raise VocabularyError(
                    f"{self._at(key)}: duplicate {what} entry {name!r} (first on line {seen[name.casefold()]}); "
                    f"list it once"
                )
            seen[name.casefold()] = key.start_mark.line + 1
            items.append((name, value))
        return items

    def _class(self, name: str, node: yaml.Node) -> VocabularyClass:
        where = f"{self._at(node)}: class {name!r}"
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return VocabularyClass(name, (name,))
        if isinstance(node, (yaml.ScalarNode, yaml.SequenceNode)):
            return VocabularyClass(name, self._phrasings(node, where))
        fields = self._mapping(node, f"class {name!r}", _CLASS_KEYS)
        prompts = self._phrasings(fields["prompts"], where) if "prompts" in fields else (name,)
        conf = _check_conf(yaml.safe_load(yaml.serialize(fields["conf"])), where) if "conf" in fields else None
        color = self._color(fields["color"], where) if "color" in fields else None
        return VocabularyClass(name, prompts, conf, color)

    def _phrasings(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        phrasings = tuple(self._strings(node, "phrasings"))
        if not phrasings:
            raise VocabularyError(f"{where} has no phrasings; give at least one, or leave the value empty")
        return phrasings

    def _strings(self, node: yaml.Node, what: str) -> list[str]:
        values = node.value if isinstance(node, yaml.SequenceNode) else [node]
        strings = []
        for value in values:
            if not isinstance(value, yaml.ScalarNode):
                raise VocabularyError(f"{self._at(value)}: each of {what} must be text")
            text = " ".join(str(value.value).split())
            if not text:
                raise VocabularyError(f"{self._at(value)}: an entry of {what} is empty; remove it or write it out")
            strings.append(text)
        return strings

    def _color(self, node: yaml.Node, where: str) -> str:
        value = str(node.value)
        if not isinstance(node, yaml.ScalarNode) or not _COLOR.match(value):
            raise VocabularyError(f"{where}: color {value!r} must be a hex colour like '#ff8800' (quoted)")
        return value.lower()

    def _background(self, node: yaml.Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        value = yaml.safe_load(yaml.serialize(node))
        if value is True:
            return (BACKGROUND_PROMPT,)
        if value is False:
            return ()
        raise VocabularyError(f"{self._at(node)}: background must be true or false")
