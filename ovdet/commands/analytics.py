"""``ovdet detect``'s zones, rules, alerts, crops and run summary: their flags, paths, sinks and printed lines."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import UsageError

JSONL_SUFFIXES = [".jsonl", ".ndjson"]


def add_arguments(detect: argparse.ArgumentParser) -> None:
    """Register ``--zones``, ``--alerts``, ``--webhook``, ``--save-crops`` and ``--summary``."""
    detect.add_argument(
        "--zones", metavar="FILE", help="zones, lines and alert rules (.yaml); adds zones and counts to the JSONL"
    )
    detect.add_argument("--alerts", metavar="FILE.jsonl", help="a line per alert fired by the rules in --zones")
    detect.add_argument("--webhook", metavar="URL", help="also POST each alert as JSON to URL (retried, never blocks)")
    detect.add_argument(
        "--save-crops", metavar="DIR", help="best crop of each finished track and of each alert (implies --track)"
    )
    detect.add_argument("--summary", metavar="FILE.json", help="per class: frames, tracks, dwell per zone, alerts")


def targets(args: argparse.Namespace) -> tuple[list, list]:
    """(inputs, outputs) of these flags, for ``_check_paths``; refuses wrong file types and a bad webhook URL."""
    from ..io.alerts import check_webhook_url
    from ..io.targets import Target, check_suffix

    if args.alerts:
        check_suffix("--alerts", args.alerts, JSONL_SUFFIXES)
    if args.summary:
        check_suffix("--summary", args.summary, [".json"])
    if args.webhook is not None:  # an empty URL too
        check_webhook_url(args.webhook)
    inputs = [Target("--zones", Path(args.zones))] if args.zones else []
    outputs = [
        Target(role, Path(path)) for role, path in (("--alerts", args.alerts), ("--summary", args.summary)) if path
    ]
    if args.save_crops:
        outputs.append(Target("--save-crops", Path(args.save_crops), folder=True))
    return inputs, outputs


class AnalyticsRun:
    """The zones file read and checked before any work, then applied frame by frame in the CLI's loop."""

    def __init__(self, args: argparse.Namespace, class_names: tuple[str, ...]) -> None:
        from ..analytics.stream import Analytics
        from ..analytics.zones_yaml import check_rule_classes, read_zones_yaml

        self.args = args
        self.enabled = any((args.zones, args.alerts, args.webhook, args.save_crops, args.summary))
        zones = read_zones_yaml(args.zones) if args.zones else None
        rules = zones.rules if zones is not None else ()
        if (args.alerts or args.webhook) and not rules:
            flag = "--alerts" if args.alerts else "--webhook"
            raise UsageError(
                f"{flag} needs rules to fire alerts: add a 'rules:' section to a --zones file (see README)"
            )
        check_rule_classes(rules, class_names, args.zones or "")
        self.analytics = Analytics(zones)
        self.summary = None

    def check_source(self, source) -> None:
        """Zones that do not fit the source's frames are refused before any output is opened."""
        if self.enabled:
            self.analytics.check_source(source)

    @property
    def needs_tracks(self) -> bool:
        return self.enabled and (bool(self.args.save_crops) or self.analytics.needs_tracks)

    def open_sinks(self, source) -> list:
        """The sinks of these flags; the caller closes them."""
        from ..io.alerts import AlertsSink, WebhookSender
        from ..io.crops import CropWriter
        from ..io.summary import RunSummary
        from ..vision.tracking import lost_track_frames

        if not self.enabled:
            return []
        self.analytics.follow_tracks_of(source)
        fps = source.fps / getattr(source, "vid_stride", 1) if source.fps else None
        args, sinks = self.args, []
        try:
            crops = CropWriter(args.save_crops, lost_track_frames(fps)) if args.save_crops else None
            if crops is not None:
                sinks.append(crops)
            if self.analytics.engine.rules:
                webhook = WebhookSender(args.webhook) if args.webhook else None
                sinks.append(AlertsSink(args.alerts, webhook, crops))
            self.summary = RunSummary(args.summary, self.analytics.dwell_totals)
            sinks.append(self.summary)
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        return sinks

    def update(self, frame, detections) -> None:
        if self.enabled:
            self.analytics.update(frame, detections)

    def show(self) -> None:
        if self.summary is None:
            return
        for line in self.summary.lines():
            print(line)
        for target in (self.args.alerts, self.args.save_crops, self.args.summary):
            if target:
                print(f"→ {target}")
