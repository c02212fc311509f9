"""Track events: one record per track when it ends — what a team watching for a new object type reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from .sources import Frame

__all__ = ["TrackEvents"]


@dataclass
class _Track:
    track_id: int
    first_frame: int
    first_timestamp: float | None
    last_frame: int = 0
    last_timestamp: float | None = None
    last_seen_step: int = 0
    frames_seen: int = 0
    best_confidence: float = -1.0
    best_box: list[float] = field(default_factory=list)
    names: Counter[str] = field(default_factory=Counter)

    def record(self, source: str) -> dict[str, Any]:
        return {
            "source": source,
            "track_id": self.track_id,
            "class_name": self.names.most_common(1)[0][0],
            "first_seen": {"frame": self.first_frame, "timestamp": _seconds(self.first_timestamp)},
            "last_seen": {"frame": self.last_frame, "timestamp": _seconds(self.last_timestamp)},
            "frames_seen": self.frames_seen,
            "best_confidence": round(self.best_confidence, 5),
            "best_box": [round(v, 2) for v in self.best_box],
        }


class TrackEvents:
    """Follows tracked detections and reports each track once it has been gone for ``end_after`` frames.

    Args:
        end_after: Processed frames without the track after which it counts as ended (the tracker's buffer).

    Example:
        >>> events = TrackEvents(end_after=30)
        >>> list(events.finish())
        []
    """

    def __init__(self, end_after: int) -> None:
        self.end_after = end_after
        self._open: dict[int, _Track] = {}
        self._step = 0
        self._source = ""

    def update(self, frame: Frame, detections: sv.Detections) -> Iterator[dict[str, Any]]:
        """Take one frame's tracked detections; yield the records of tracks that ended."""
        self._step += 1
        self._source = frame.source
        ids = detections.tracker_id if detections.tracker_id is not None else np.full(len(detections), -1)
        names = detections.data.get("class_name", np.array([""] * len(detections)))
        for track_id, box, confidence, name in zip(ids, detections.xyxy, detections.confidence, names):
            if track_id >= 0:
                self._see(int(track_id), frame, box, float(confidence), str(name))
        ended = [t for t in self._open.values() if self._step - t.last_seen_step > self.end_after]
        for track in ended:
            del self._open[track.track_id]
            yield track.record(self._source)

    def finish(self) -> Iterator[dict[str, Any]]:
        """Yield the records of tracks still open at the end, oldest first."""
        for track in sorted(self._open.values(), key=lambda t: (t.first_frame, t.track_id)):
            yield track.record(self._source)
        self._open.clear()

    def _see(self, track_id: int, frame: Frame, box: np.ndarray, confidence: float, name: str) -> None:
        track = self._open.get(track_id)
        if track is None:
            track = self._open[track_id] = _Track(track_id, frame.index, frame.timestamp)
        track.last_frame, track.last_timestamp, track.last_seen_step = frame.index, frame.timestamp, self._step
        track.frames_seen += 1
        track.names[name] += 1
        if confidence > track.best_confidence:
            track.best_confidence, track.best_box = confidence, [float(v) for v in box]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
