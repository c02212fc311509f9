"""The run summary (``--summary FILE.json``, and printed): per class, the frames it was seen in, its tracks, the time
it spent in each zone, the alerts it fired, and when it was first and last seen."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from ..core.files import check_writable, write_json_atomically
from .sources import Frame

__all__ = ["RunSummary"]


@dataclass
class _ClassSummary:
    first_seen: dict[str, Any]
    last_seen: dict[str, Any] = field(default_factory=dict)
    frames_seen: int = 0
    detections: int = 0
    tracks: set[int] = field(default_factory=set)
    alerts: int = 0


class RunSummary:
    """Follows every frame's detections and alerts; writes the summary as JSON when closed.

    Args:
        path: ``--summary`` file, or ``None`` to only keep it for printing.
        dwell_totals: Returns zone → class → seconds spent inside (the rule engine's stays), read at the end.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, dwell_totals: Callable[[], dict[str, dict[str, float]]]
    ) -> None:
        self.path = check_writable(path) if path is not None else None
        self.dwell_totals = dwell_totals
        self.source = ""
        self.frames = 0
        self.classes: dict[str, _ClassSummary] = {}
        self.alerts: Counter[str] = Counter()

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        self.source = frame.source
        self.frames += 1
        seen = {"frame": frame.index, "timestamp": None if frame.timestamp is None else round(frame.timestamp, 6)}
        names = [str(name) for name in detections.data.get("class_name", ())]
        ids = detections.tracker_id if detections.tracker_id is not None else np.full(len(names), -1)
        for name in set(names):
            entry = self.classes.setdefault(name, _ClassSummary(first_seen=seen))
            entry.frames_seen += 1
            entry.last_seen = seen
        for name, track_id in zip(names, ids):
            self.classes[name].detections += 1
            if track_id >= 0:
                self.classes[name].tracks.add(int(track_id))
        for alert in detections.metadata.get("alerts", ()):
            self.alerts[alert.rule] += 1
            if alert.class_name in self.classes:
                self.classes[alert.class_name].alerts += 1

    def document(self) -> dict[str, Any]:
        """The summary as one JSON document."""
        dwell = self.dwell_totals()
        classes = {
            name: {
                "frames_seen": entry.frames_seen,
                "detections": entry.detections,
                "tracks": len(entry.tracks),
                "dwell_seconds": {zone: round(t[name], 3) for zone, t in dwell.items() if name in t},
                "alerts": entry.alerts,
                "first_seen": entry.first_seen,
                "last_seen": entry.last_seen,
            }
            for name, entry in sorted(self.classes.items())
        }
        return {"source": self.source, "frames": self.frames, "classes": classes, "alerts": dict(self.alerts)}

    def lines(self) -> list[str]:
        """The printed summary: a line per class, then the alerts per rule."""
        lines = []
        for name, entry in self.document()["classes"].items():
            dwell = "".join(f", {seconds:.1f} s in {zone}" for zone, seconds in entry["dwell_seconds"].items())
            first, last = entry["first_seen"], entry["last_seen"]
            lines.append(
                f"{name}: seen in {entry['frames_seen']} frame(s), {entry['tracks']} track(s){dwell}, "
                f"{entry['alerts']} alert(s), frames {first['frame']}–{last['frame']}"
            )
        if self.alerts:
            lines.append("alerts: " + ", ".join(f"{rule}: {count}" for rule, count in self.alerts.most_common()))
        return lines

    def close(self) -> None:
        if self.path is not None:
            write_json_atomically([(Path(self.path), self.document())])
