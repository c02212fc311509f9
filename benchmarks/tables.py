"""Markdown tables of the harness's results: side-by-side comparison, sweeps, and precision agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ovdet.core.profiling import STAGES


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _scientific(value: float | None) -> str:
    return "–" if value is None else f"{value:.1e}"


def _markdown(header: Sequence[str], rows: Sequence[dict[str, Any]], cells) -> str:
    """A markdown table: ``cells(row)`` gives a row's cells; a row with an ``error`` shows its label and the error."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        shown = [row["label"], row["error"]] if "error" in row else cells(row)
        lines.append("| " + " | ".join(shown) + " |")
    return "\n".join(lines)


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`measure` rows (with compute columns where :func:`add_compute` ran).

    Example:
        >>> print(comparison_table([{"label": "x", "error": "failed"}]).splitlines()[-1])
        | x | failed |
    """
    header = ["configuration", "runtime", "precision", "input", "frames/s", "best turn", *(f"{s} ms" for s in STAGES),
              "p50 ms", "p95 ms", "overhead %", "peak RSS MB", "GFLOP/s", "% of peak"]  # fmt: skip
    return _markdown(header, rows, lambda row: [
        row["label"], row["runtime"], row["precision"], "×".join(map(str, row["input_shape"])), _cell(row["fps"]),
        _cell(row["fps_best_turn"]),
        *(_cell(row["ms_per_frame"][stage]) for stage in STAGES),
        _cell(row["latency_ms_p50"]), _cell(row["latency_ms_p95"]), _cell(100 * row["overhead"]),
        _cell(row["peak_rss_mb"], 0), _cell(row.get("gflops_per_s")), _cell(row.get("pct_of_peak")),
    ])  # fmt: skip


def sweep_table(rows: Sequence[dict[str, Any]], extra: Sequence[tuple[str, str]] = ()) -> str:
    """A markdown table of a sweep's rows: point, frames/s, milliseconds per frame, latency, RSS, compute.

    Args:
        rows: Rows of a sweep.
        extra: ``(header, row key)`` of more columns, e.g. ``("cold set_classes ms", "set_classes_first_ms")``.

    Example:
        >>> print(sweep_table([{"label": "K=1", "error": "failed"}]).splitlines()[-1])
        | K=1 | failed |
    """
    header = ["point", "frames/s", "inference ms", "p50 ms", "p95 ms", *(h for h, _ in extra), "peak RSS MB",
              "GFLOP/frame", "GFLOP/s", "% of peak"]  # fmt: skip
    return _markdown(header, rows, lambda row: [
        row["label"], _cell(row["fps"]), _cell(row["ms_per_frame"]["inference"]), _cell(row["latency_ms_p50"]),
        _cell(row["latency_ms_p95"]), *(_cell(row.get(key)) for _, key in extra), _cell(row["peak_rss_mb"], 0),
        _cell(row.get("gflops_per_frame")), _cell(row.get("gflops_per_s")), _cell(row.get("pct_of_peak")),
    ])  # fmt: skip


def agreement_table(report: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`agreement_report`.

    Example:
        >>> agreement_table([]).splitlines()[0].split(" | ")[:3]
        ['| candidate', 'reference', 'conf']
    """
    header = ["candidate", "reference", "conf", "boxes (candidate / reference)", "matched %", "max abs score diff",
              "mean abs score diff"]  # fmt: skip
    return _markdown(header, report, lambda row: [
        row["candidate"], row["reference"], _cell(row["conf"], 2),
        f"{row['candidate_boxes']} / {row['reference_boxes']}", _cell(100 * row["matched_share"]),
        _scientific(row["max_score_diff"]), _scientific(row["mean_score_diff"]),
    ])  # fmt: skip


def serve_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``benchmarks/serve.py``: requests/s and latency per concurrency, and ``ovdet detect``.

    Example:
        >>> print(serve_table([{"label": "ovdet detect, batch 1", "clients": "–", "requests": 8, "rps": 2.0}]))
        | subject | clients | requests | requests/s | p50 ms | p95 ms | images per forward pass |
        | --- | --- | --- | --- | --- | --- | --- |
        | ovdet detect, batch 1 | – | 8 | 2.0 | – | – | – |
    """
    header = ["subject", "clients", "requests", "requests/s", "p50 ms", "p95 ms", "images per forward pass"]
    return _markdown(header, rows, lambda row: [
        row["label"], str(row["clients"]), str(row["requests"]), _cell(row["rps"]), _cell(row.get("p50_ms"), 0),
        _cell(row.get("p95_ms"), 0), _cell(row.get("images_per_pass")),
    ])  # fmt: skip
