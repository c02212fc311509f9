"""The manifest (``out/manifest.json``): what a batch run was asked to do, and what became of each source.

It records the run's settings (their fingerprint decides whether a re-run may continue in the same folder), and
per source its status (``done``, ``failed``, ``stopped``), digest, stamp (the names, sizes and times of its
files), error, outputs and counts. It is replaced atomically, so it is always a whole JSON document; a re-run skips
the sources it lists as done whose files are unchanged. A file of another shape (edited by hand) is refused in one
line naming it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.files import write_json_atomically
from .plan import MANIFEST_NAME, SourceTask, digest, stamp

__all__ = ["Manifest", "fingerprint"]

_RECORD_FIELDS = {"status": str, "outputs": list, "sha256": (str, type(None)), "error": (str, type(None))}

VERSION = 1
_SAVE_EVERY_S = 2.0  # a driver killed outright loses at most this much of the record; those sources run again


def fingerprint(settings: dict[str, Any]) -> str:
    """A short digest of the settings that decide a source's outputs."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class Manifest:
    """The record of one output folder's batch runs.

    Example:
        >>> manifest = Manifest.open(Path("out"), {"conf": 0.25}, overwrite=False)  # doctest: +SKIP
        >>> manifest.is_done(task)  # doctest: +SKIP
        False
    """

    def __init__(self, path: Path, settings: dict[str, Any], sources: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.settings = settings
        self.sources = sources
        self._saved = 0.0

    @classmethod
    def open(cls, output_dir: Path, settings: dict[str, Any], *, overwrite: bool) -> Manifest:
        """The folder's manifest; a manifest of other settings is refused unless ``overwrite`` starts afresh."""
        path = output_dir / MANIFEST_NAME
        if overwrite or not path.exists():
            return cls(path, settings, {})
        previous, sources = _read(path)
        if fingerprint(previous) != fingerprint(settings):
            changed = sorted(key for key in {*previous, *settings} if previous.get(key) != settings.get(key))
            raise UsageError(
                f"--output-dir {output_dir} holds outputs of other settings ({', '.join(changed)} differ): pass "
                f"--overwrite to start over, or choose another --output-dir"
            )
        return cls(path, settings, sources)

    def is_done(self, task: SourceTask) -> bool:
        """Whether ``task`` finished before with these settings, its source is unchanged and its outputs exist."""
        record = self.sources.get(task.source)
        if not record or record.get("status") != "done" or sorted(record.get("outputs", [])) != sorted(task.files):
            return False
        if not all(Path(output).is_file() for output in task.files):
            return False
        if record.get("stamp") == stamp(task.source):
            return True
        return record.get("sha256") == digest(task.source)  # touched or copied, but the same bytes

    def record(self, source: str, entry: dict[str, Any]) -> None:
        """Note a source's result; saved at most every couple of seconds (and by :meth:`save`)."""
        self.sources[source] = entry
        if time.monotonic() - self._saved >= _SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically([(self.path, {"version": VERSION, "settings": self.settings, "sources": self.sources})])
        self._saved = time.monotonic()

    def counts(self) -> dict[str, int]:
        """Sources per status."""
        counts: dict[str, int] = {}
        for record in self.sources.values():
            counts[record["status"]] = counts.get(record["status"], 0) + 1
        return counts


def _read(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The settings and source records of a manifest file, each checked for the shape ovdet writes."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _not_a_manifest(path, exc.strerror or type(exc).__name__) from exc
    except UnicodeDecodeError as exc:
        raise _not_a_manifest(path, "not UTF-8 text") from exc
    except ValueError as exc:
        raise _not_a_manifest(path, "not valid JSON") from exc
    except RecursionError:
        raise _not_a_manifest(path, "JSON nested too deep") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("settings"), dict):
        raise _not_a_manifest(path, "no 'settings' object")
    sources = stored.get("sources")
    if not isinstance(sources, dict):
        raise _not_a_manifest(path, "no 'sources' object")
    for source, record in sources.items():
        problem = _record_problem(record)
        if problem:
            raise _not_a_manifest(path, f"source {source!r}: {problem}")
    return stored["settings"], sources


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not an object"
    for name, kind in _RECORD_FIELDS.items():
        if (name in record or name == "status") and not isinstance(record.get(name), kind):
            return f"{name} is {type(record.get(name)).__name__}"
    if not all(isinstance(output, str) for output in record.get("outputs", [])):
        return "outputs are not all paths"
    return None


def _not_a_manifest(path: Path, reason: str) -> UsageError:
    return UsageError(f"{path} is not an ovdet batch manifest ({reason}): delete it or pass --overwrite to start "
                      f"over, or choose another --output-dir")  # fmt: skip
