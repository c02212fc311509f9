"""Multi-object tracking with a maintained tracker (ByteTrack from the ``trackers`` package)."""

from __future__ import annotations

import numpy as np
import supervision as sv

from .errors import missing_dependency

__all__ = ["Tracker"]

LOST_TRACK_SECONDS = 1.0


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
        except ImportError as exc:
            raise missing_dependency("trackers", "track", "--track") from exc
        self._factory = ByteTrackTracker
        self.frame_rate = float(fps) if fps else 30.0
        self.threshold = threshold
        self.lost_track_frames = max(1, round(LOST_TRACK_SECONDS * self.frame_rate))
        self._next_id = 0
        self._offset = 0
        self._tracker = self._new_tracker()

    def _new_tracker(self):
        return self._factory(
            lost_track_buffer=self.lost_track_frames,
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
        """Assign track ids; detections keep their confidence, class and data."""
        tracked = self._tracker.update(detections, timestamp=timestamp)
        ids = np.asarray(tracked.tracker_id, dtype=int)
        ids = np.where(ids >= 0, ids + self._offset, -1)
        if ids.size and ids.max() >= self._next_id:
            self._next_id = int(ids.max()) + 1
        tracked.tracker_id = ids
        return tracked
