"""The one table of output kinds, and the one place outside :mod:`ovdet.io` where outputs are opened.

An :class:`OutputSpec` names a kind of this table and where it goes; :func:`open_outputs` opens a run's specs in
the table's order (the crops before the alerts that save into them), each told the vocabulary if it names or
colours classes, and closes what it opened if one fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..analytics.stream import Analytics
from ..io.alerts import AlertsSink, WebhookSender
from ..io.crops import CropWriter
from ..io.parquet import ParquetSink
from ..io.pipeline import Sink
from ..io.sinks import AnnotatedImageWriter, CocoSink, CsvSink, EventsSink, JsonlSink
from ..io.summary import RunSummary
from ..io.video import VIDEO_OUTPUT_SUFFIXES, AnnotatedVideoSink
from ..prompts.vocabulary import Vocabulary
from ..vision.tracking import lost_track_frames

__all__ = [
    "JSONL_SUFFIXES",
    "OUTPUT_KINDS",
    "OutputKind",
    "OutputSpec",
    "analytics_outputs",
    "open_outputs",
    "outputs_need_tracks",
    "tell_vocabulary",
]

JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class OutputSpec:
    """One output of a run.

    Attributes:
        kind: A key of :data:`OUTPUT_KINDS`.
        path: The file or folder; ``None`` for a summary kept only to print, or alerts sent only to a webhook.
        webhook: For ``"alerts"``: also POST each alert to this URL.
    """

    kind: str
    path: str | os.PathLike[str] | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class _Opening:
    """What an opener may need besides its spec."""

    fps: Fraction | None
    analytics: Analytics | None
    opened: Sequence[Sink]


@dataclass(frozen=True)
class OutputKind:
    """How to open a kind of output, and what it asks of the run.

    Attributes:
        open: Builds the sink from its spec.
        suffixes: The file names it takes (``ovdet detect`` refuses others).
        batch_suffix: What ``ovdet batch`` appends to a source's mirrored path to name it.
        folder: It writes a folder of files.
        tracks: It follows tracks, so the run tracks.
        analytics: It reports the zones and rules, so it needs the run's analytics.
    """

    open: Callable[[OutputSpec, _Opening], Sink]
    suffixes: tuple[str, ...]
    batch_suffix: str
    folder: bool = False
    tracks: bool = False
    analytics: bool = False


def _crops(spec: OutputSpec, opening: _Opening) -> CropWriter:
    return CropWriter(spec.path, lost_track_frames(opening.fps))


def _alerts(spec: OutputSpec, opening: _Opening) -> AlertsSink:
    crops = next((sink for sink in opening.opened if isinstance(sink, CropWriter)), None)
    return AlertsSink(spec.path, WebhookSender(spec.webhook) if spec.webhook else None, crops)


def _summary(spec: OutputSpec, opening: _Opening) -> RunSummary:
    dwell_totals = opening.analytics.dwell_totals if opening.analytics is not None else lambda: {}
    return RunSummary(spec.path, dwell_totals)


OUTPUT_KINDS: dict[str, OutputKind] = {
    "jsonl": OutputKind(lambda spec, _: JsonlSink(spec.path), JSONL_SUFFIXES, ".jsonl"),
    "csv": OutputKind(lambda spec, _: CsvSink(spec.path), (".csv",), ".csv"),
    "video": OutputKind(
        lambda spec, opening: AnnotatedVideoSink(spec.path, opening.fps),
        tuple(sorted(VIDEO_OUTPUT_SUFFIXES)),
        ".annotated.mp4",
    ),
    "coco": OutputKind(lambda spec, _: CocoSink(spec.path), (".json",), ".coco.json"),
    "events": OutputKind(
        lambda spec, opening: EventsSink(spec.path, lost_track_frames(opening.fps)),
        JSONL_SUFFIXES,
        ".events.jsonl",
        tracks=True,
    ),
    "annotated": OutputKind(lambda spec, _: AnnotatedImageWriter(spec.path), (), ".annotated", folder=True),
    "crops": OutputKind(_crops, (), ".crops", folder=True, tracks=True),
    "alerts": OutputKind(_alerts, JSONL_SUFFIXES, ".alerts.jsonl", analytics=True),
    "summary": OutputKind(_summary, (".json",), ".summary.json", analytics=True),
    "parquet": OutputKind(lambda spec, _: ParquetSink(spec.path), (".parquet",), ".parquet"),
}


def analytics_outputs(
    analytics: Analytics | None,
    *,
    crops: str | os.PathLike[str] | None = None,
    alerts: str | os.PathLike[str] | None = None,
    webhook: str | None = None,
    summary: str | os.PathLike[str] | None = None,
) -> list[OutputSpec]:
    """The outputs of the zones and rules: the crops; the alerts whenever there are rules (their crops are saved
    even without an alerts file); the run summary, kept to print even without a file. None without analytics."""
    if analytics is None:
        return []
    specs = [OutputSpec("crops", crops)] if crops else []
    if analytics.engine.rules:
        specs.append(OutputSpec("alerts", alerts, webhook))
    return [*specs, OutputSpec("summary", summary)]


def outputs_need_tracks(specs: Sequence[OutputSpec]) -> bool:
    return any(OUTPUT_KINDS[spec.kind].tracks for spec in specs)


def open_outputs(
    specs: Sequence[OutputSpec],
    fps: Fraction | None,
    analytics: Analytics | None = None,
    vocabulary: Vocabulary | None = None,
) -> list[Any]:
    """The sinks of ``specs`` in the table's order, told ``vocabulary``; the caller closes them."""
    order = list(OUTPUT_KINDS)
    sinks: list[Any] = []
    try:
        for spec in sorted(specs, key=lambda spec: order.index(spec.kind)):
            sinks.append(OUTPUT_KINDS[spec.kind].open(spec, _Opening(fps, analytics, sinks)))
            if vocabulary is not None:
                tell_vocabulary(sinks[-1:], vocabulary)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def tell_vocabulary(sinks: Sequence[Any], vocabulary: Vocabulary) -> None:
    """Tell the sinks that name or colour the classes what the classes are."""
    for sink in sinks:
        if hasattr(sink, "use_vocabulary"):
            sink.use_vocabulary(vocabulary)
