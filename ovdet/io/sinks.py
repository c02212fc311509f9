"""Result sinks: they take ``supervision.Detections`` plus frame metadata, never a model.

Every sink leaves a valid file if the run stops half-way: JSONL is flushed line by line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
import supervision as sv

from ..errors import OutputError

__all__ = ["AnnotatedImageWriter", "JsonlSink", "check_writable", "detection_record"]


def detection_record(
    source: str,
    frame: int,
    timestamp: float | None,
    width: int,
    height: int,
    detections: sv.Detections,
) -> dict[str, Any]:
    """The JSONL schema: one object per image or frame.

    Example:
        >>> detection_record("a.jpg", 0, None, 4, 3, sv.Detections.empty())["detections"]
        []
    """
    names = detections.data.get("class_name", np.array([""] * len(detections)))
    track_ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
    rows = [
        {
            "xyxy": [round(float(v), 2) for v in box],
            "confidence": round(float(confidence), 5),
            "class_id": int(class_id),
            "class_name": str(name),
            "track_id": None if track_id is None else int(track_id),
        }
        for box, confidence, class_id, name, track_id in zip(
            detections.xyxy, detections.confidence, detections.class_id, names, track_ids
        )
    ]
    return {
        "source": source,
        "frame": frame,
        "timestamp": None if timestamp is None else round(float(timestamp), 6),
        "width": width,
        "height": height,
        "detections": rows,
    }


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


class JsonlSink:
    """Writes one JSON object per line and flushes it, so an interrupted run leaves only complete lines.

    Example:
        >>> with JsonlSink("out.jsonl") as sink:  # doctest: +SKIP
        ...     sink.write(detection_record("a.jpg", 0, None, 640, 480, detections))
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_writable(path)
        self._handle: TextIO = open(self.path, "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AnnotatedImageWriter:
    """Draws boxes and labels with supervision's annotators and saves one image per input."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = check_writable(folder, directory=True)
        self._boxes = sv.BoxAnnotator()
        self._labels = sv.LabelAnnotator()

    def write(self, image: np.ndarray, detections: sv.Detections, name: str) -> Path:
        canvas = self.draw(image, detections)
        target = self.folder / name
        if not cv2.imwrite(str(target), canvas):
            raise OutputError(f"could not write annotated image {target}: check the folder and the file extension")
        return target

    def draw(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        labels = [
            f"{name} {confidence:.2f}"
            for name, confidence in zip(detections.data.get("class_name", []), detections.confidence)
        ]
        canvas = self._boxes.annotate(image.copy(), detections)
        return self._labels.annotate(canvas, detections, labels=labels)
