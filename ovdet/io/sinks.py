"""Result sinks: they take a frame and its ``supervision.Detections``, never a model.

Every sink leaves a valid file if the run stops half-way: JSONL and CSV are flushed frame by frame, COCO JSON is
written to a temporary file and renamed, events are flushed line by line.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import supervision as sv

from ..core.errors import OutputError
from ..core.files import AppendFile, check_writable, write_atomically, write_json_atomically
from .masks import mask_to_rings, masks_to_rle
from .sources import Frame

if TYPE_CHECKING:
    from ..prompts.vocabulary import Vocabulary

__all__ = [
    "AnnotatedImageWriter",
    "Annotator",
    "CocoSink",
    "CsvSink",
    "EventsSink",
    "JsonlSink",
    "check_writable",
    "coco_categories_path",
    "detection_rows",
    "frame_record",
    "labels_for",
    "spreadsheet_safe",
]

CSV_COLUMNS = (
    "source", "frame", "timestamp", "x1", "y1", "x2", "y2", "confidence", "class_id", "class_name", "track_id",
)  # fmt: skip


def detection_rows(detections: sv.Detections) -> list[dict[str, Any]]:
    """One plain dict per detection: ``xyxy``, ``confidence``, ``class_id``, ``class_name``, ``track_id``, and
    ``zones`` when zones are in use (see :mod:`ovdet.analytics.stream`)."""
    names = detections.data.get("class_name", np.array([""] * len(detections)))
    track_ids = detections.tracker_id if detections.tracker_id is not None else [-1] * len(detections)
    rows = [
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
    if "zones" in detections.data:
        for row, zones in zip(rows, detections.data["zones"]):
            row["zones"] = list(zones)
    return rows


def frame_record(frame: Frame, detections: sv.Detections) -> dict[str, Any]:
    """The JSONL schema: one object per image or frame; with zones, also ``zones`` (zone → class → count in this
    frame) and ``lines`` (line → ``{"in": n, "out": m}`` crossings so far). Detections with masks carry a
    ``polygon``: the mask's boundary rings (see :mod:`ovdet.io.masks`).

    Example:
        >>> frame = Frame(np.zeros((3, 4, 3), np.uint8), 0, None, "a.jpg")
        >>> frame_record(frame, sv.Detections.empty())
        {'source': 'a.jpg', 'frame': 0, 'timestamp': None, 'width': 4, 'height': 3, 'detections': []}
    """
    record = {
        "source": frame.source,
        "frame": frame.index,
        "timestamp": None if frame.timestamp is None else round(frame.timestamp, 6),
        "width": frame.width,
        "height": frame.height,
        "detections": detection_rows(detections),
    }
    if detections.mask is not None:
        for row, mask in zip(record["detections"], detections.mask):
            row["polygon"] = mask_to_rings(mask)
    for key, counts in (("zones", "zone_counts"), ("lines", "line_counts")):
        if counts in detections.metadata:
            record[key] = detections.metadata[counts]
    return record


def labels_for(detections: sv.Detections) -> list[str]:
    """Box labels: ``#id name 0.87`` (the id only for tracked boxes)."""
    rows = detection_rows(detections)
    return [
        ("" if row["track_id"] is None else f"#{row['track_id']} ") + f"{row['class_name']} {row['confidence']:.2f}"
        for row in rows
    ]


class _LineFile:
    """A text output opened at once (so a bad path fails before work); each frame's lines land whole or not at all."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = AppendFile(path)
        self.path = self._file.path

    def close(self) -> None:
        self._file.close()

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
        self._file.append(json.dumps(frame_record(frame, detections), ensure_ascii=False) + "\n")


class CsvSink(_LineFile):
    """One row per detection: source, frame, timestamp, x1, y1, x2, y2, confidence, class_id, class_name, track_id.

    Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return) are written with a leading apostrophe; see :func:`spreadsheet_safe`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._file.append(_csv_text([CSV_COLUMNS]))

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        timestamp = "" if frame.timestamp is None else round(frame.timestamp, 6)
        source = spreadsheet_safe(frame.source)
        rows = [
            [source, frame.index, timestamp, *row["xyxy"], row["confidence"], row["class_id"],
             spreadsheet_safe(row["class_name"]), "" if row["track_id"] is None else row["track_id"]]
            for row in detection_rows(detections)
        ]  # fmt: skip
        if rows:
            self._file.append(_csv_text(rows))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text``, with an apostrophe in front if a spreadsheet would read it as a formula (OWASP's advice).

    Example:
        >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("person")
        ("'=HYPERLINK(1)", 'person')
    """
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class EventsSink(_LineFile):
    """One JSON line per track when it ends (see :class:`ovdet.io.track_events.TrackEvents`), and for open tracks
    at close."""

    def __init__(self, path: str | os.PathLike[str], end_after: int) -> None:
        from .track_events import TrackEvents

        super().__init__(path)
        self._events = TrackEvents(end_after)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        for record in self._events.update(frame, detections):
            self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        self._file.append(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        try:
            if not self._file.closed:
                for record in self._events.finish():
                    self._write(record)
        finally:
            super().close()


def coco_categories_path(path: str | os.PathLike[str]) -> Path:
    """Where :class:`CocoSink` puts the categories and images beside its results: ``<stem>.categories.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.categories.json")


class CocoSink:
    """COCO detection results (a JSON list that ``pycocotools.COCO.loadRes`` accepts), written atomically.

    Beside it, ``<name>.categories.json`` holds the vocabulary as COCO categories and the frame behind each
    ``image_id``. ``category_id`` is the class's 1-based position in the categories (``class_id + 1`` unless the
    vocabulary changes mid-run); boxes are ``[x, y, width, height]`` in pixels. Detections with masks add
    ``segmentation`` (COCO run-length encoding, ``counts`` as text) and ``area`` (the mask's pixels).
    """

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str] = ()) -> None:
        self.path = check_writable(path)
        self.meta_path = coco_categories_path(self.path)
        self.class_names: list[str] = []
        self._ids: dict[str, int] = {}
        self._results: list[dict[str, Any]] = []
        self._images: list[dict[str, Any]] = []
        self._add_categories(class_names)

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Categories follow the vocabulary; a class keeps its id when the vocabulary changes mid-run."""
        self._add_categories(vocabulary.names)

    def _add_categories(self, names: Sequence[str]) -> None:
        for name in names:
            if name not in self._ids:
                self.class_names.append(name)
                self._ids[name] = len(self.class_names)

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        image_id = len(self._images) + 1
        self._images.append(
            {"id": image_id, "source": frame.source, "frame": frame.index, "timestamp": frame.timestamp,
             "width": frame.width, "height": frame.height}
        )  # fmt: skip
        segmentations = masks_to_rle(detections.mask) if detections.mask is not None else []
        for index, row in enumerate(detection_rows(detections)):
            x1, y1, x2, y2 = row["xyxy"]
            result = {"image_id": image_id, "category_id": self._ids[row["class_name"]],
                      "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], "score": row["confidence"],
                      "track_id": row["track_id"]}  # fmt: skip
            if segmentations:
                result["segmentation"] = segmentations[index]
                result["area"] = int(np.count_nonzero(detections.mask[index]))
            self._results.append(result)

    def close(self) -> None:
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(self.class_names)]
        write_json_atomically(
            [(self.path, self._results), (self.meta_path, {"categories": categories, "images": self._images})]
        )


class Annotator:
    """supervision's mask, box and label annotators, coloured by class (a vocabulary's own colours where it sets
    them)."""

    def __init__(self) -> None:
        self.use_vocabulary(None)

    def use_vocabulary(self, vocabulary: Vocabulary | None) -> None:
        palette = sv.ColorPalette.DEFAULT
        if vocabulary is not None and any(vocabulary.colors()):
            colors = [
                sv.Color.from_hex(color) if color else palette.by_idx(i) for i, color in enumerate(vocabulary.colors())
            ]
            palette = sv.ColorPalette(colors)
        self._masks = sv.MaskAnnotator(color=palette)
        self._boxes = sv.BoxAnnotator(color=palette)
        self._labels = sv.LabelAnnotator(color=palette)

    def draw(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        """A copy of ``image`` with masks (where the detections have them), boxes and ``#id name confidence``
        labels drawn, over the zones, lines and their counts where the frame carries them
        (``detections.metadata["overlay"]``, see :mod:`ovdet.analytics.stream`)."""
        canvas = image.copy()
        if "overlay" in detections.metadata:
            canvas = detections.metadata["overlay"](canvas)
        if detections.mask is not None:
            canvas = self._masks.annotate(canvas, detections)
        canvas = self._boxes.annotate(canvas, detections)
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
        encoded, data = cv2.imencode(target.suffix, self.annotator.draw(frame.image, detections))
        if not encoded:
            raise OutputError(f"could not encode annotated image {target}: check the file extension")
        write_atomically([(target, data.tobytes())], sync=False)  # one per frame: no disk flush each time

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
