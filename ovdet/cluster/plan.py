"""What a batch run will do: its sources (videos, image folders, list files), and where each one's outputs go.

Outputs mirror each source's path below the folder the sources share: ``/archive/cam1/a.mp4`` and
``/archive/cam2/a.mp4`` write ``out/cam1/a.mp4.jsonl`` and ``out/cam2/a.mp4.jsonl``, and the Parquet dataset's
``out/detections/cam1/a.mp4.parquet``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import SourceError, UsageError
from ..core.files import check_name_length, file_digest
from ..io.images import IMAGE_SUFFIXES
from ..io.sinks import coco_categories_path
from ..io.sources import VIDEO_SUFFIXES
from ..run.outputs import OUTPUT_KINDS

__all__ = ["SourceTask", "check_collisions", "digest", "expand_sources", "plan_tasks", "stamp"]

DATASET_FOLDER = "detections"
MAX_LIST_BYTES = 16 << 20  # a list file of sources: 16 MiB is some 100,000 paths
MAX_LIST_DEPTH = 16  # lists naming lists
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class SourceTask:
    """One source and the files its run writes; what a worker is sent.

    Attributes:
        source: The video file or image folder, as given (it becomes the ``source`` field of every record).
        outputs: Output kind (a key of :data:`ovdet.run.outputs.OUTPUT_KINDS`) → file or folder.
        parquet: The source's file in the Parquet dataset.
    """

    source: str
    outputs: dict[str, str] = field(default_factory=dict)
    parquet: str = ""

    @property
    def files(self) -> list[str]:
        return [*self.outputs.values(), self.parquet]


def expand_sources(items: Iterable[str], skip: Path | None = None) -> list[str]:
    """Every source named by ``items``, each once, in order.

    An item is a video file, or a folder: each folder at or below it that holds images is one source (of its
    images), and each video below it is one; or ``@list.txt``: a file naming one source per line (blank lines and
    ``#`` comments skipped), at most :data:`MAX_LIST_BYTES` long; a list may name other lists, but not itself
    (directly or through others).
    Nothing under ``skip`` (the output folder) is taken.
    """
    found: dict[str, None] = {}
    for item in items:
        for source in _expand(item, skip, ()):
            found.setdefault(source, None)
    if not found:
        raise UsageError("no sources given: pass videos, image folders or @list.txt")
    return list(found)


def _expand(item: str, skip: Path | None, lists: tuple[tuple[str, tuple], ...]) -> list[str]:
    """``lists``: the list files being expanded, outermost first, as (name, identity)."""
    if item.startswith("@"):
        name = item[1:]
        chain = (*lists, (name, _identity(Path(name))))
        if chain[-1][1] in {identity for _, identity in lists}:
            names = " → ".join(entry for entry, _ in chain)
            raise UsageError(f"list file {name} names itself ({names}): remove the line that names a list already read")
        if len(chain) > MAX_LIST_DEPTH:
            raise UsageError(f"list file {name} is nested {len(chain)} lists deep (at most {MAX_LIST_DEPTH}): "
                             f"name the sources in fewer lists")  # fmt: skip
        return [source for line in _list_lines(name) for source in _expand(line, skip, chain)]
    path = Path(item)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise UsageError(f"{item} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}): pass videos or folders")
        return [item]
    if not path.is_dir():
        raise UsageError(f"source {item} does not exist: check the path")
    return _folder_sources(path, skip)


def _list_lines(name: str) -> list[str]:
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(f"list file {name} could not be read ({reason}): pass a text file, one source a line") from exc
    if len(data) > MAX_LIST_BYTES:
        raise UsageError(f"list file {name} is over {MAX_LIST_BYTES >> 20} MiB: pass a text file, one source a line, "
                         f"or split it into several @lists")  # fmt: skip
    if "\0" in text:
        raise UsageError(f"list file {name} holds NUL bytes, so it is not a text file: pass one source a line")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _folder_sources(folder: Path, skip: Path | None) -> list[str]:
    """Each folder at or below ``folder`` that holds images (one source each), and each video below it."""
    skipped = _identity(skip) if skip is not None else None
    if skipped is not None and _identity(folder) == skipped:
        raise UsageError(
            f"--output-dir {skip} is the source folder {folder}: the outputs would become sources of the next run; "
            f"choose a folder of their own (one inside {folder} is fine)"
        )
    sources = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _identity(Path(root) / d) != skipped)
        suffixes = [Path(name).suffix.lower() for name in sorted(files)]
        if any(suffix in IMAGE_SUFFIXES for suffix in suffixes):
            sources.append(root)
        sources += [os.path.join(root, name) for name in sorted(files) if Path(name).suffix.lower() in VIDEO_SUFFIXES]
    if not sources:
        raise UsageError(f"folder {folder} holds no images or videos: pass another folder")
    return sources


def plan_tasks(sources: Sequence[str], output_dir: Path, kinds: Sequence[str]) -> list[SourceTask]:
    """Each source's outputs under ``output_dir``, mirroring the sources' paths below the folder they share, each
    named by its kind's ``batch_suffix``."""
    resolved = [Path(os.path.abspath(source)) for source in sources]
    root = Path(os.path.commonpath([path.parent for path in resolved]))
    tasks = []
    for source, path in zip(sources, resolved):
        relative = path.relative_to(root)
        outputs = {kind: str(output_dir / f"{relative}{OUTPUT_KINDS[kind].batch_suffix}") for kind in kinds}
        tasks.append(SourceTask(source, outputs, str(output_dir / DATASET_FOLDER / f"{relative}.parquet")))
    return tasks


def check_collisions(tasks: Sequence[SourceTask], inputs: Sequence[str]) -> None:
    """Refuse before any work an output that is an input (a source, its images, the model, the vocabulary), that
    two sources would write (``a.mp4``'s events and the JSONL of an image folder named ``a.mp4.events``), or whose
    name is too long for a file system (a long source name with ``.annotated.mp4`` added)."""

    read = {_identity(Path(path)): path for path in inputs}
    for task in tasks:
        folder = Path(task.source)
        if folder.is_dir():
            read.update((_identity(image), str(image)) for image in folder.iterdir())
        else:
            read[_identity(folder)] = task.source
    written: dict[tuple, str] = {}
    for task in tasks:
        for output in task.files:
            check_name_length(output)
            if output == task.outputs.get("coco"):
                check_name_length(coco_categories_path(output))  # written beside it
            if (key := _identity(Path(output))) in read:
                raise UsageError(f"output {output} is the input {read[key]}: it would be overwritten; "
                                 f"choose another --output-dir")  # fmt: skip
            if key in written:
                raise UsageError(f"sources {written[key]} and {task.source} would both write {output}: "
                                 f"rename one of them")  # fmt: skip
            written[key] = task.source


def stamp(source: str) -> str:
    """A digest of a video's size and modification time (ns), or of every name, size and time in an image folder:
    cheap to take, and any change (a file renamed, added, removed, rewritten) means a re-hash."""
    path = Path(source)
    try:
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        stats = [(file.name, file.stat()) for file in files]
    except OSError as exc:
        raise SourceError(f"{source} could not be read ({exc.strerror or exc}): check that it exists") from exc
    combined = hashlib.sha256()
    for name, stat in stats:
        combined.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return combined.hexdigest()


def digest(source: str) -> str:
    """SHA-256 of a video file, or of an image folder's file names and contents."""
    path = Path(source)
    try:
        if path.is_file():
            return file_digest(path)
        combined = hashlib.sha256()
        for image in sorted(p for p in path.iterdir() if p.is_file()):
            combined.update(f"{image.name}\0{file_digest(image)}\n".encode("utf-8", "surrogateescape"))
        return combined.hexdigest()
    except OSError as exc:
        raise SourceError(f"{source} could not be read ({exc.strerror or exc}): check that it exists") from exc


def _identity(path: Path) -> tuple:
    """The file a path names: device and inode where it exists (links included), else its resolved path."""
    try:
        stat = path.stat()
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", stat.st_dev, stat.st_ino)
