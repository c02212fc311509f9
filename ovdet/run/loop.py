"""The run: frames and their detections through the analytics into every output, with progress, the counts, and a
clean end on a signal or an error (every output closed valid)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from threading import Event
from typing import Any

import supervision as sv
from tqdm.auto import tqdm

from ..analytics.stream import Analytics
from ..core.errors import SourceError
from ..core.profiling import Profiler
from ..io.sources import Frame, FrameSource
from ..prompts.vocabulary import Vocabulary
from .counts import RunCounts, frame_unit
from .outputs import OutputSpec, open_outputs, outputs_need_tracks, tell_vocabulary
from .signals import StopRequest
from .writer import SinkWriter

__all__ = ["Frames", "Run"]

Frames = Callable[[Event, bool], Iterator[tuple[Frame, sv.Detections]]]
"""``frames(stop, track)``: the stream of a source's frames and detections (tracked when ``track``), that ends
once ``stop`` is set — e.g. ``lambda stop, track: detector.stream(source, track=track, stop=stop)``."""


class Run:
    """One source's frames into its outputs.

    Args:
        source: The frames' source (its frame rate, its size for the zones, its length for the progress bar).
        outputs: What to write.
        analytics: Zones and rules applied to every frame before the outputs see it, or ``None``.
        track: Track even where no output or rule needs it.
        stop: Ends the run after the frame in flight (a signal, or a worker told to stop).
        counts: Counts and times; pass one started when the command started to time its start-up.
        progress: Show a progress bar.
        profiler: Times the writing.

    The run owns the source: zones that do not fit its frames are refused here, before any output is opened, and
    the source is closed if the run cannot start.

    Example:
        >>> run = Run(source, [OutputSpec("jsonl", "out.jsonl")])  # doctest: +SKIP
        >>> run.execute(lambda stop, track: detector.stream(source, track=track, stop=stop), detector.vocabulary)
    """

    def __init__(
        self,
        source: FrameSource,
        outputs: Sequence[OutputSpec],
        *,
        analytics: Analytics | None = None,
        track: bool = False,
        stop: StopRequest | None = None,
        counts: RunCounts | None = None,
        progress: bool = False,
        profiler: Profiler | None = None,
    ) -> None:
        self.source = source
        self.outputs = list(outputs)
        self.analytics = analytics
        self.track = track or outputs_need_tracks(self.outputs) or (analytics is not None and analytics.needs_tracks)
        self.stop = stop or StopRequest()
        self.counts = counts or RunCounts()
        self.progress = progress
        self.profiler = profiler
        self.sinks: list[Any] = []
        if analytics is not None:
            self._refuse_unfit_zones(analytics)
            analytics.follow_tracks_of(source)

    def _refuse_unfit_zones(self, analytics: Analytics) -> None:
        try:
            analytics.check_source(self.source)
        except BaseException:
            self.source.close()
            raise

    @property
    def stopped(self) -> bool:
        return self.stop.event.is_set()

    def execute(self, frames: Frames, vocabulary: Vocabulary | None = None) -> RunCounts:
        """Open the outputs, run every frame through them, close them; a source that yields no frame (and was not
        stopped) is a :class:`SourceError` once the outputs are closed. Outputs that can only be whole (a Parquet
        file) are abandoned when the run ends early."""
        try:
            self.sinks = open_outputs(self.outputs, self.source.frame_rate, self.analytics, vocabulary)
        except BaseException:
            self.source.close()
            raise
        writer = SinkWriter(self.sinks, profiler=self.profiler)
        finished = False
        try:
            self.counts.ready()
            with self._progress_bar() as bar:
                for frame, detections in frames(self.stop.event, self.track):
                    if self.analytics is not None:
                        self.analytics.update(frame, detections)
                    writer.put(frame, detections)
                    self.counts.add(detections)
                    bar.update()
            finished = not self.stopped
        finally:
            self.stop.closing()  # from here on no signal may cut the closing of the outputs short
            if not finished:
                for sink in self.sinks:
                    if hasattr(sink, "abandon"):
                        sink.abandon()
            writer.close()
        if self.counts.frames == 0 and not self.stopped:
            raise SourceError(f"no frame or image could be read from {self.source.name}")
        return self.counts

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """The classes changed mid-run: the outputs that name or colour them follow."""
        tell_vocabulary(self.sinks, vocabulary)

    def _progress_bar(self) -> tqdm:
        unit = frame_unit(self.source)
        return tqdm(total=self.source.total, unit=unit, disable=not self.progress, dynamic_ncols=True, leave=False)
