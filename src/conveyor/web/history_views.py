"""The history charts of the overview and the queue pages: server-rendered SVG (no script
draws them), so a live refresh swaps them in like any other region and every value shown is
escaped by the template."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.model.durations import duration
from conveyor.model.history import RANGES, RUN_BOUNDS, HistoryPoint, HistoryRange, percentile

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 600, 160, 44, 20, 8
PLOT_W, PLOT_H = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
# a p95 past the histogram's last bound is drawn at twice it, and labelled as past it
BEYOND = RUN_BOUNDS[-1] * 2


@dataclass(frozen=True, slots=True)
class Column:
    """One step of a chart: where it is, its bar (0 high: none) and its hover text."""

    x: float
    width: float
    y: float
    height: float
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of one series (bars) or of the latency lines, ready for the template."""

    key: str
    title: str
    top_label: str
    columns: list[Column]
    lines: dict[str, list[tuple[float, float]]]  # line class -> its points (x, y)


def _label(start: datetime, span: HistoryRange) -> str:
    stamp = start.strftime("%a %H:%M" if span.name == "7d" else "%H:%M")
    return f"{stamp} UTC"


def _bars(key: str, title: str, points: list[HistoryPoint], span: HistoryRange) -> Chart:
    values = [getattr(p, key) for p in points]
    top = max([1, *values])
    step = PLOT_W / max(1, len(points))
    columns = []
    for i, (point, value) in enumerate(zip(points, values, strict=True)):
        height = value / top * PLOT_H if value else 0.0
        columns.append(
            Column(
                round(LEFT + i * step, 2),
                round(max(1.0, step - 1), 2),
                round(HEIGHT - BOTTOM - height, 2),
                round(height, 2),
                f"{_label(point.start, span)}: {value:,} {key}",
            )
        )
    return Chart(key, title, f"{top:,}", columns, {})


def _latency(points: list[HistoryPoint], span: HistoryRange) -> Chart:
    series: dict[str, list[float | None]] = {
        "run": [p.mean_run for p in points],
        "p95": [p.run_percentile(0.95) for p in points],
        "wait": [p.mean_wait for p in points],
    }
    shown = [min(v, BEYOND) for values in series.values() for v in values if v is not None]
    top = max([0.001, *shown])
    step = PLOT_W / max(1, len(points))
    lines = {
        name: [
            (
                round(LEFT + (i + 0.5) * step, 2),
                round(HEIGHT - BOTTOM - min(v, BEYOND) / top * PLOT_H, 2),
            )
            for i, v in enumerate(values)
            if v is not None
        ]
        for name, values in series.items()
    }
    columns = [
        Column(
            round(LEFT + i * step, 2),
            round(step, 2),
            TOP,
            PLOT_H,
            f"{_label(p.start, span)}: run mean {duration(p.mean_run) if p.run_count else '—'}, "
            f"p95 {_bound(p.run_percentile(0.95))}, wait mean "
            f"{duration(p.mean_wait) if p.wait_count else '—'}",
        )
        for i, p in enumerate(points)
    ]
    return Chart("latency", "Latency", duration(top), columns, lines)


def _bound(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return f"> {duration(RUN_BOUNDS[-1])}"
    return f"≤ {duration(value)}"


def history_view(points: list[HistoryPoint], span: HistoryRange) -> dict[str, Any]:
    """What the history section shows: the range switch, the totals and the three charts."""
    buckets = [sum(b) for b in zip(*(p.run_buckets for p in points), strict=True)]
    completed = sum(p.completed for p in points)
    failed = sum(p.failed for p in points)
    finished = completed + failed
    run_count = sum(p.run_count for p in points)
    wait_count = sum(p.wait_count for p in points)
    return {
        "range": span.name,
        "ranges": list(RANGES),
        "step": duration(span.step.total_seconds()),
        "totals": {
            "completed": f"{completed:,}",
            "failed": f"{failed:,}",
            "failure_rate": f"{failed / finished:.1%}" if finished else "—",
            "run_mean": duration(sum(p.run_sum for p in points) / run_count) if run_count else "—",
            "run_p95": _bound(percentile(buckets, 0.95)) if buckets else "—",
            "wait_mean": duration(sum(p.wait_sum for p in points) / wait_count)
            if wait_count
            else "—",
        },
        "charts": [
            _bars("completed", "Completed", points, span),
            _bars("failed", "Failed", points, span),
            _latency(points, span),
        ],
        "since_label": f"-{span.name}",
    }
