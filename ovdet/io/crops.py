"""Crops to review (``--save-crops DIR``): the best view of each finished track, and the view behind each alert.

A track's crop is its most confident box, written once the track has been gone for ``end_after`` frames (the
tracker's lost-track buffer) or at the end of the run: ``track-000012_infusion-pump.jpg``. An alert's crop is
written when it fires: ``alert-00003_track-000012_infusion-pump.jpg``. Each JPEG is written whole or not at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from ..core.errors import OutputError
from ..core.files import check_writable, write_atomically
from .sources import Frame

__all__ = ["CropWriter", "crop_name"]

_UNSAFE = re.compile(r"[^\w.-]+")


def crop_name(track_id: int | None, class_name: str) -> str:
    """A file name stem for a crop, safe on every file system.

    Example:
        >>> crop_name(12, "infusion pump"), crop_name(None, "a/b")
        ('track-000012_infusion-pump', 'untracked_a-b')
    """
    track = "untracked" if track_id is None else f"track-{track_id:06d}"
    safe = _UNSAFE.sub("-", class_name).strip("-").encode()[:120].decode(errors="ignore")  # file names: 255 bytes
    return f"{track}_{safe or 'object'}"


@dataclass
class _Best:
    class_name: str
    confidence: float
    crop: np.ndarray
    last_seen_step: int


class CropWriter:
    """Keeps each open track's most confident crop and writes it when the track ends; writes alert crops at once.

    Args:
        folder: Where crops go (created).
        end_after: Processed frames without a track after which it counts as finished.
    """

    def __init__(self, folder: str | os.PathLike[str], end_after: int) -> None:
        self.folder = check_writable(folder, directory=True)
        self.end_after = end_after
        self.written = 0
        self._open: dict[int, _Best] = {}
        self._step = 0

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        self._step += 1
        if detections.tracker_id is not None:
            names = detections.data.get("class_name", np.array([""] * len(detections)))
            for track_id, box, confidence, name in zip(
                detections.tracker_id, detections.xyxy, detections.confidence, names
            ):
                if track_id >= 0:
                    self._see(int(track_id), frame.image, box, float(confidence), str(name))
        for track_id in [t for t, best in self._open.items() if self._step - best.last_seen_step > self.end_after]:
            self._save_track(track_id)

    def _see(self, track_id: int, image: np.ndarray, box: np.ndarray, confidence: float, name: str) -> None:
        best = self._open.get(track_id)
        if best is None or confidence > best.confidence:
            self._open[track_id] = _Best(name, confidence, _cut(image, box), self._step)
        else:
            best.last_seen_step = self._step

    def _save_track(self, track_id: int) -> None:
        best = self._open.pop(track_id)
        self._save(f"{crop_name(track_id, best.class_name)}.jpg", best.crop)

    def save_alert(self, frame: Frame, alert, number: int) -> str:
        """Write the crop of ``alert`` (an :class:`~ovdet.analytics.rules.Alert`); returns its path."""
        name = f"alert-{number:05d}_{crop_name(alert.track_id, alert.class_name)}.jpg"
        return str(self._save(name, _cut(frame.image, np.asarray(alert.box))))

    def _save(self, name: str, crop: np.ndarray) -> Path:
        target = self.folder / name
        encoded, data = cv2.imencode(".jpg", crop)
        if not encoded:
            raise OutputError(f"could not encode crop {target}: the box may be empty")
        write_atomically([(target, data.tobytes())], sync=False)
        self.written += 1
        return target

    def close(self) -> None:
        """Write the crops of the tracks still open."""
        for track_id in sorted(self._open):
            self._save_track(track_id)


def _cut(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's pixels (at least one), copied so the frame can be released."""
    height, width = image.shape[:2]
    x1, y1 = (int(np.clip(np.floor(v), 0, limit - 1)) for v, limit in zip(box[:2], (width, height)))
    x2, y2 = (int(np.clip(np.ceil(v), 1, limit)) for v, limit in zip(box[2:], (width, height)))
    return image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)].copy()
