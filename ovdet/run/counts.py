"""A run's counts (frames, detections per class) and times, and the lines ``ovdet detect`` prints from them: what
was found, the processing rate with start-up shown apart, and where the results are."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RunCounts", "frame_unit"]


def frame_unit(source) -> str:
    """``"image"`` for still images, ``"frame"`` for videos, webcams and streams."""
    return "image" if source.fps is None and not source.live else "frame"


class RunCounts:
    """Counts frames and detections; times start-up (model, conversion, classes) apart from processing.

    Example:
        >>> counts = RunCounts()
        >>> counts.ready()  # the model is loaded, the classes are set and the outputs are open
        >>> counts.add(detections)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.frames = 0
        self.detections = 0
        self.counts: Counter[str] = Counter()
        self._started = self._ready = time.perf_counter()

    def ready(self) -> None:
        """Start-up ends here; processing starts."""
        self._ready = time.perf_counter()

    def add(self, detections) -> None:
        self.frames += 1
        self.detections += len(detections)
        self.counts.update(str(name) for name in detections.data.get("class_name", ()))

    def lines(self, name: str, unit: str, outputs: Sequence[str], folder: Path | None) -> list[str]:
        """What to print: found, rate, and the results folder or each output (or that nothing was saved)."""
        processing = time.perf_counter() - self._ready
        found = ", ".join(f"{label}: {count}" for label, count in self.counts.most_common()) or "nothing found"
        rate = self.frames / processing if processing > 0 else 0.0
        units = f"{unit}(s)"
        lines = [
            f"{name}: {self.frames} {units}, {self.detections} detection(s) ({found})",
            f"{self.frames} {units} in {processing:.1f} s, {rate:.1f} {unit}s/s; "
            f"start-up {self._ready - self._started:.1f} s",
        ]
        if folder is not None:
            lines.append(f"results saved to {folder}")
        elif outputs:
            lines += [f"→ {target}" for target in outputs]
        else:
            lines.append("nothing saved (--no-save)")
        return lines
