"""``ovdet detect``'s zones, rules, alerts, crops and run summary: their flags, paths, sinks and printed lines."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import UsageError


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
    """(inputs, outputs) of these flags, for ``ovdet detect``'s path checks; refuses wrong file types and a bad
    webhook URL."""
    from ..io.alerts import check_webhook_url
    from ..io.targets import Target, check_suffix
    from ..run.outputs import OUTPUT_KINDS

    if args.alerts:
        check_suffix("--alerts", args.alerts, OUTPUT_KINDS["alerts"].suffixes)
    if args.summary:
        check_suffix("--summary", args.summary, OUTPUT_KINDS["summary"].suffixes)
    if args.webhook is not None:  # an empty URL too
        check_webhook_url(args.webhook)
    inputs = [Target("--zones", Path(args.zones))] if args.zones else []
    outputs = [
        Target(role, Path(path)) for role, path in (("--alerts", args.alerts), ("--summary", args.summary)) if path
    ]
    if args.save_crops:
        outputs.append(Target("--save-crops", Path(args.save_crops), folder=True))
    return inputs, outputs


def read_zones(zones: str | None, alerts_asked: str | None, class_names: tuple[str, ...]):
    """The zones file read and checked before any work (alerts need rules, rules name known classes), or ``None``.

    ``alerts_asked``: the flag that asks for alerts (``"--alerts"``, ``"--webhook"``), or ``None``.
    """
    from ..analytics.zones_yaml import check_rule_classes, read_zones_yaml

    zones_file = read_zones_yaml(zones) if zones else None
    rules = zones_file.rules if zones_file is not None else ()
    if alerts_asked and not rules:
        raise UsageError(
            f"{alerts_asked} needs rules to fire alerts: add a 'rules:' section to a --zones file (see README)"
        )
    check_rule_classes(rules, class_names, zones or "")
    return zones_file


def detect_analytics(args: argparse.Namespace, class_names: tuple[str, ...]):
    """``ovdet detect``'s :class:`~ovdet.analytics.stream.Analytics`, or ``None`` when none of these flags is given."""
    from ..analytics.stream import Analytics

    asked = "--alerts" if args.alerts else "--webhook" if args.webhook else None
    zones_file = read_zones(args.zones, asked, class_names)
    enabled = any((args.zones, args.alerts, args.webhook, args.save_crops, args.summary))
    return Analytics(zones_file) if enabled else None


def show(args: argparse.Namespace, sinks: list) -> None:
    """The run summary's lines, and where these flags' outputs went."""
    from ..io.summary import RunSummary

    summary = next((sink for sink in sinks if isinstance(sink, RunSummary)), None)
    if summary is None:
        return
    for line in summary.lines():
        print(line)
    for target in (args.alerts, args.save_crops, args.summary):
        if target:
            print(f"→ {target}")
