"""Multi-object tracking with a maintained tracker (ByteTrack from the ``trackers`` package)."""

from __future__ import annotations

import math

import numpy as np
import supervision as sv

from ..core.errors import MissingDependencyError

__all__ = ["Tracker", "lost_track_frames", "lost_track_seconds"]

LOST_TRACK_SECONDS = 1.0
_TRACKER_REFERENCE_FPS = 30.0  # ``trackers`` counts its lost-track buffer in frames of a 30 frames/s video


def lost_track_seconds(fps: float | None) -> float:
    """How long an unseen track is kept: one second, and never less than two frame periods.

    At 1 frame/s a single missed frame must not end a track, or slow cameras would never confirm one.

    Example:
        >>> lost_track_seconds(30), lost_track_seconds(1)
        (1.0, 2.0)
    """
    return max(LOST_TRACK_SECONDS, 2.0 / float(fps)) if fps else LOST_TRACK_SECONDS


def lost_track_frames(fps: float | None) -> int:
    """:func:`lost_track_seconds` in frames at ``fps`` (30 where unknown), at least one.

    Example:
        >>> lost_track_frames(30), lost_track_frames(1), lost_track_frames(None)
        (30, 2, 30)
    """
    rate = float(fps) if fps else _TRACKER_REFERENCE_FPS
    return max(1, math.ceil(lost_track_seconds(fps) * rate - 1e-9))


class Tracker:
    """Gives detections ids that stay stable across frames; ``tracker_id`` is -1 until a track is confirmed.

    Args:
        fps: Frame rate of the frames it will see (after any stride), for how long a lost track is kept.
        threshold: Confidence from which a detection may start or continue a track. Open-vocabulary scores run
            lower than a closed-set detector's, so this follows the detection threshold (``conf``) rather than
            ByteTrack's 0.6/0.7 defaults; at the default conf of 0.25 it equals Ultralytics' bytetrack.yaml.

    Example:
        >>> tracker = Tracker(fps=30)
        >>> tracker.update(sv.Detections.empty(), timestamp=0.0).tracker_id
        array([], dtype=int64)
    """

    def __init__(self, fps: float | None = None, threshold: float = 0.25) -> None:
        try:
            from trackers import ByteTrackTracker
        except ImportError as exc:  # a core dependency, so no extra brings it: the installation is incomplete
            raise MissingDependencyError(
                "trackers is not installed, and --track needs it: reinstall ovdet (pip install . in its folder) or "
                "pip install 'trackers==2.6.*'"
            ) from exc
        self._factory = ByteTrackTracker
        self.frame_rate = float(fps) if fps else _TRACKER_REFERENCE_FPS
        self.threshold = threshold
        self.lost_track_frames = lost_track_frames(fps)
        self._next_id = 0
        self._offset = 0
        self._tracker = self._new_tracker()

    def _new_tracker(self):
        return self._factory(
            lost_track_buffer=math.ceil(lost_track_seconds(self.frame_rate) * _TRACKER_REFERENCE_FPS - 1e-9),
            frame_rate=self.frame_rate,
            track_activation_threshold=self.threshold,
            high_conf_det_threshold=self.threshold,
            minimum_consecutive_frames=1,
        )

    def reset(self) -> None:
        """Start over (e.g. after the vocabulary changed); new ids continue after the old ones, never reused."""
        self._tracker = self._new_tracker()
        self._offset = self._next_id

    def update(self, detections: sv.Detections, timestamp: float | None = None) -> sv.Detections:
        """Assign track ids; detections keep their confidence, class and data, also when there are none."""
        tracked = self._tracker.update(detections, timestamp=timestamp)
        if len(tracked) == 0:  # ByteTrack answers an empty frame with an empty Detections that lost ``data``
            tracked = detections[np.zeros(0, dtype=int)]
            tracked.tracker_id = np.zeros(0, dtype=int)
        ids = np.asarray(tracked.tracker_id, dtype=int)
        ids = np.where(ids >= 0, ids + self._offset, -1)
        if ids.size and ids.max() >= self._next_id:
            self._next_id = int(ids.max()) + 1
        tracked.tracker_id = ids
        return tracked
