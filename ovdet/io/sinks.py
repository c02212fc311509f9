"""Result sinks: they take a frame and its ``supervision.Detections``, never a model.

Every sink leaves a valid file if the run stops half-way: JSONL and CSV are flushed frame by frame, COCO JSON is
written to a temporary file and renamed, events are flushed line by line.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cv2
import numpy as np
import supervision as sv

from ..errors import OutputError
from .sources import Frame

if TYPE_CHECKING:
    from ..vocabulary import Vocabulary

__all__ = [
    "AnnotatedImageWriter",
    "Annotator",
    "CocoSink",
    "CsvSink",
    "EventsSink",
    "JsonlSink",
    "check_writable",
    "detection_rows",
    "frame_record",
    "labels_for",
]

CSV_COLUMNS = (
    "source", "frame", "timestamp", "x1", "y1", "x2", "y2", "confidence", "class_id", "class_name", "track_id",
)  # fmt: skip


def detection_rows(detections: sv.Detections) -> list[dict[str, Any]]:
    """One plain dict per detection: ``xyxy``, ``confidence``, ``class_id``, ``class_name``, ``track_id``."""
    names = detections.data.get("class_name", np.array([""] * len(detections)))
    track_ids = detections.tracker_id if detections.tracker_id is not None else [-1] * len(detections)
    return [
        {
            "xyxy": [round(float(v), 2) for v in box],
            "confidence": round(float(confidence), 5),
            "class_id": int(class_id),
            "class_name": str(name),
            "track_id": int(track_id) if track_id >= 0 else None,
        }
        for box, confidence, class_id, name, track_id in zip(
            detections.xyxy, detections.confidence, detections.class_id, names, track_ids
        )
    ]


def frame_record(frame: Frame, detections: sv.Detections) -> dict[str, Any]:
    """The JSONL schema: one object per image or frame.

    Example:
        >>> frame = Frame(np.zeros((3, 4, 3), np.uint8), 0, None, "a.jpg")
        >>> frame_record(frame, sv.Detections.empty())
        {'source': 'a.jpg', 'frame': 0, 'timestamp': None, 'width': 4, 'height': 3, 'detections': []}
    """
    return {
        "source": frame.source,
        "frame": frame.index,
        "timestamp": None if frame.timestamp is None else round(frame.timestamp, 6),
        "width": frame.width,
        "height": frame.height,
        "detections": detection_rows(detections),
    }


def labels_for(detections: sv.Detections) -> list[str]:
    """Box labels: ``#id name 0.87`` (the id only for tracked boxes)."""
    rows = detection_rows(detections)
    return [
        ("" if row["track_id"] is None else f"#{row['track_id']} ") + f"{row['class_name']} {row['confidence']:.2f}"
        for row in rows
    ]


def check_writable(path: str | os.PathLike[str], *, directory: bool = False) -> Path:
    """Fail before any work starts if an output cannot be created: create its folder, probe a write."""
    path = Path(path)
    folder = path if directory else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ovdet-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write output {path} ({exc.strerror or exc}): choose a writable location") from exc
    if not directory and path.is_dir():
        raise OutputError(f"output {path} is a folder: give a file name such as {path / 'detections.jsonl'}")
    return path


class _LineFile:
    """A text output opened at once (so a bad path fails before work) and flushed after every frame."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_writable(path)
        self._handle: TextIO = open(self.path, "w", encoding="utf-8", newline="")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonlSink(_LineFile):
    """One JSON object per frame and line (:func:`frame_record`).

    Example:
        >>> with JsonlSink("out.jsonl") as sink:  # doctest: +SKIP
        ...     sink.write(frame, detections)
    """

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        self._handle.write(json.dumps(frame_record(frame, detections), ensure_ascii=False) + "\n")
        self._handle.flush()


class CsvSink(_LineFile):
    """One row per detection: source, frame, timestamp, x1, y1, x2, y2, confidence, class_id, class_name, track_id."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._writer = csv.writer(self._handle)
        self._writer.writerow(CSV_COLUMNS)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        timestamp = "" if frame.timestamp is None else round(frame.timestamp, 6)
        for row in detection_rows(detections):
            track_id = "" if row["track_id"] is None else row["track_id"]
            self._writer.writerow(
                [frame.source, frame.index, timestamp, *row["xyxy"], row["confidence"], row["class_id"],
                 row["class_name"], track_id]
            )  # fmt: skip
        self._handle.flush()


class EventsSink(_LineFile):
    """One JSON line per track when it ends (see :class:`ovdet.events.TrackEvents`), and for open tracks at close."""

    def __init__(self, path: str | os.PathLike[str], end_after: int) -> None:
        from ..events import TrackEvents

        super().__init__(path)
        self._events = TrackEvents(end_after)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        for record in self._events.update(frame, detections):
            self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            for record in self._events.finish():
                self._write(record)
        super().close()


class CocoSink:
    """COCO detection results (a JSON list that ``pycocotools.COCO.loadRes`` accepts), written atomically.

    Beside it, ``<name>.categories.json`` holds the vocabulary as COCO categories and the frame behind each
    ``image_id``. ``category_id`` is the class's 1-based position in the categories (``class_id + 1`` unless the
    vocabulary changes mid-run); boxes are ``[x, y, width, height]`` in pixels.
    """

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str] = ()) -> None:
        self.path = check_writable(path)
        self.meta_path = self.path.with_name(f"{self.path.stem}.categories.json")
        self.class_names: list[str] = []
        self._ids: dict[str, int] = {}
        self._add_categories(class_names)

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Categories follow the vocabulary; a class keeps its id when the vocabulary changes mid-run."""
        self._add_categories(vocabulary.names)

    def _add_categories(self, names: Sequence[str]) -> None:
        for name in names:
            if name not in self._ids:
                self.class_names.append(name)
                self._ids[name] = len(self.class_names)
        self._results: list[dict[str, Any]] = []
        self._images: list[dict[str, Any]] = []

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        image_id = len(self._images) + 1
        self._images.append(
            {"id": image_id, "source": frame.source, "frame": frame.index, "timestamp": frame.timestamp,
             "width": frame.width, "height": frame.height}
        )  # fmt: skip
        for row in detection_rows(detections):
            x1, y1, x2, y2 = row["xyxy"]
            self._results.append(
                {"image_id": image_id, "category_id": self._ids[row["class_name"]],
                 "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], "score": row["confidence"],
                 "track_id": row["track_id"]}
            )  # fmt: skip

    def close(self) -> None:
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(self.class_names)]
        _write_json_atomically(self.meta_path, {"categories": categories, "images": self._images})
        _write_json_atomically(self.path, self._results)


class Annotator:
    """supervision's box and label annotators, coloured by class (a vocabulary's own colours where it sets them)."""

    def __init__(self) -> None:
        self.use_vocabulary(None)

    def use_vocabulary(self, vocabulary: Vocabulary | None) -> None:
        palette = sv.ColorPalette.DEFAULT
        if vocabulary is not None and any(vocabulary.colors()):
            colors = [
                sv.Color.from_hex(color) if color else palette.by_idx(i) for i, color in enumerate(vocabulary.colors())
            ]
            palette = sv.ColorPalette(colors)
        self._boxes = sv.BoxAnnotator(color=palette)
        self._labels = sv.LabelAnnotator(color=palette)

    def draw(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        """A copy of ``image`` with boxes and ``#id name confidence`` labels drawn."""
        canvas = self._boxes.annotate(image.copy(), detections)
        return self._labels.annotate(canvas, detections, labels=labels_for(detections))


class AnnotatedImageWriter:
    """Draws boxes and labels with supervision's annotators and saves one image per input, named after it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = check_writable(folder, directory=True)
        self.annotator = Annotator()
        self._used: set[str] = set()

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Draw classes in the vocabulary's colours."""
        self.annotator.use_vocabulary(vocabulary)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        target = self.folder / self._name_for(frame)
        if not cv2.imwrite(str(target), self.annotator.draw(frame.image, detections)):
            raise OutputError(f"could not write annotated image {target}: check the folder and the file extension")

    def _name_for(self, frame: Frame) -> str:
        path = Path(frame.source)
        stem, suffix = path.stem, path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".jpg"
        if frame.timestamp is not None:
            stem = f"{stem}_{frame.index:06d}"
        name, number = f"{stem}{suffix}", 1
        while name in self._used:
            name, number = f"{stem}_{number}{suffix}", number + 1
        self._used.add(name)
        return name

    def close(self) -> None:
        """Nothing to finalise: every image is complete once written."""


def draw(image: np.ndarray, detections: sv.Detections, boxes: sv.BoxAnnotator, labels: sv.LabelAnnotator) -> np.ndarray:
    """A copy of ``image`` with boxes and ``#id name confidence`` labels drawn."""
    canvas = boxes.annotate(image.copy(), detections)
    return labels.annotate(canvas, detections, labels=labels_for(detections))


def _write_json_atomically(path: Path, payload: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False)
    os.replace(temporary, path)
