"""The history part of `conveyor stats --range`: its JSON and its table."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.model.durations import duration
from conveyor.model.history import RUN_BOUNDS, HistoryPoint, percentile


def _bound(value: float | None) -> str:
    if value is None:
        return duration(None)
    return f"> {duration(RUN_BOUNDS[-1])}" if math.isinf(value) else f"≤ {duration(value)}"


def history_data(span: str, queue: str | None, points: list[HistoryPoint]) -> dict[str, object]:
    """The history as --json prints it: every step, oldest first, empty ones included."""
    return {
        "range": span,
        "queue": queue,
        "run_bounds": list(RUN_BOUNDS),
        "points": [
            {
                "start": p.start,
                "completed": p.completed,
                "failed": p.failed,
                "cancelled": p.cancelled,
                "wait_mean": p.mean_wait,
                "run_mean": p.mean_run,
                "run_buckets": list(p.run_buckets),
            }
            for p in points
        ],
    }


def print_history(out: Console, points: list[HistoryPoint], queue: str | None) -> None:
    """The steps with finished jobs as a table, then the range's totals."""
    title = "history" + (f" of queue {escape(queue)}" if queue else "") + " (UTC)"
    table = Table(header_style="bold", title=title, title_justify="left")
    for column in ("from", "completed", "failed", "cancelled", "run mean", "run p95", "wait"):
        table.add_column(column, justify="left" if column == "from" else "right")
    busy = [p for p in points if p.completed or p.failed or p.cancelled]
    for p in busy:
        table.add_row(
            p.start.strftime("%Y-%m-%d %H:%M"), f"{p.completed:,}", f"{p.failed:,}",
            f"{p.cancelled:,}", duration(p.mean_run), _bound(p.run_percentile(0.95)),
            duration(p.mean_wait),
        )  # fmt: skip
    if busy:
        out.print(table)
    buckets = [sum(b) for b in zip(*(p.run_buckets for p in points), strict=True)]
    runs = sum(p.run_count for p in points)
    out.print(
        f"history: {sum(p.completed for p in points):,} completed, "
        f"{sum(p.failed for p in points):,} failed, "
        f"run mean {duration(sum(p.run_sum for p in points) / runs if runs else None)}, "
        f"p95 {_bound(percentile(buckets, 0.95) if buckets else None)}"
    )
