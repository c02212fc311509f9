"""The one exception hierarchy of ovdet.

Every message is a single line that says what was wrong, where, and how to fix it; the CLI prints it as is.
"""

from __future__ import annotations

import re

__all__ = [
    "ClusterError",
    "ConfigError",
    "EmbeddingSpaceError",
    "MissingDependencyError",
    "ModelError",
    "OutputError",
    "OvdetError",
    "SourceError",
    "UsageError",
    "VocabularyError",
    "WeightsError",
    "ZonesError",
    "printable",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class OvdetError(Exception):
    """Base class of every error ovdet raises on purpose."""


class ConfigError(OvdetError, ValueError):
    """An inference setting is out of range or of the wrong type."""


class VocabularyError(OvdetError, ValueError):
    """Class names or prompts are empty, blank, duplicated or otherwise unusable."""


class ZonesError(OvdetError, ValueError):
    """A zones or rules file is malformed, or names a class, zone or line that does not exist."""


class EmbeddingSpaceError(OvdetError, ValueError):
    """Embeddings come from another embedding space than the detector's head was trained on."""


class WeightsError(OvdetError):
    """A weights file is missing, corrupt, of the wrong architecture, or fails its SHA-256 check."""


class ModelError(OvdetError):
    """The model cannot be used as asked (for example, detecting before any class was set)."""


class SourceError(OvdetError):
    """An input image, folder or video is missing or cannot be decoded."""


class OutputError(OvdetError):
    """An output file cannot be written."""


class UsageError(OvdetError, ValueError):
    """The command line contradicts itself, e.g. an output that would overwrite an input; exit code 2."""


class MissingDependencyError(OvdetError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ClusterError(OvdetError):
    """A Ray cluster could not be reached or could not start the workers."""


def missing_dependency(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the error for an optional package that is not installed.

    Example:
        >>> raise missing_dependency("torch", "torch", "running .pt weights")
    """
    return MissingDependencyError(
        f"{package} is not installed, and {purpose} needs it: install ovdet's {extra} extra "
        f"(pip install '.[{extra}]' in ovdet's folder)"
    )


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control characters (escape sequences, newlines, bells) shown as
    ``\\x1b``, ``\\n``…, so that a file name from the input cannot move the cursor, retitle the window or add lines.

    Example:
        >>> printable("\\x1b]0;pwned\\x07a.txt")
        '\\\\x1b]0;pwned\\\\x07a.txt'
    """
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
