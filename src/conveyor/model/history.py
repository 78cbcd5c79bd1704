"""History: finished jobs rolled up per queue and minute (docs/observability.md, History).

The stores keep one row per queue per minute: jobs completed, failed and cancelled, the count
and sum of their wait (due → started) and run (started → finished) times, and a fixed
histogram of run times, so a percentile over any range is read from bucket counts added up
(an upper bound, never a guess). Rows are written by the sweeper's roll-up, never by a finish.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from conveyor.errors import InvalidFilter
from conveyor.model.validation import QUEUE_NAME_HINT, is_valid_name

# Upper bounds (seconds) of the run-time histogram's buckets; a last bucket holds the longer.
RUN_BOUNDS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0)
BUCKETS: Final = len(RUN_BOUNDS) + 1
# Minutes are rolled up this long after they close: a finish computed on a host a little
# behind, or written a little late, still lands in a minute not yet rolled up.
ROLL_UP_DELAY: Final = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """A range the dashboard, API and CLI offer: how far back and the width of one point."""

    name: str
    span: timedelta
    step: timedelta

    @property
    def points(self) -> int:
        """How many points the range has."""
        return int(self.span / self.step)


RANGES: Final = {
    r.name: r
    for r in (
        HistoryRange("1h", timedelta(hours=1), timedelta(minutes=1)),
        HistoryRange("24h", timedelta(hours=24), timedelta(minutes=15)),
        HistoryRange("7d", timedelta(days=7), timedelta(hours=1)),
    )
}


def parse_range(text: object) -> HistoryRange:
    """The named range (`1h`, `24h` or `7d`); InvalidFilter naming them otherwise. The one
    check of the Python API, the CLI and the REST API."""
    found = RANGES.get(text.strip().lower()) if isinstance(text, str) else None
    if found is None:
        raise InvalidFilter(f"unknown history range {text!r}: use one of {', '.join(RANGES)}")
    return found


def check_history_queue(queue: object) -> str | None:
    """None (every queue) or a valid queue name; InvalidFilter otherwise."""
    if queue is None:
        return None
    if not isinstance(queue, str) or not is_valid_name(queue):
        raise InvalidFilter(f"queue {queue!r} is not a valid queue name: {QUEUE_NAME_HINT}")
    return queue


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """Jobs that finished in one stretch of time (a minute, or a range's step)."""

    start: datetime
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    wait_count: int = 0
    wait_sum: float = 0.0  # seconds
    run_count: int = 0
    run_sum: float = 0.0  # seconds
    run_buckets: tuple[int, ...] = field(default=(0,) * BUCKETS)

    @property
    def mean_wait(self) -> float | None:
        """Mean seconds from due to started, None with no started job."""
        return self.wait_sum / self.wait_count if self.wait_count else None

    @property
    def mean_run(self) -> float | None:
        """Mean run time in seconds, None with no job that ran."""
        return self.run_sum / self.run_count if self.run_count else None

    def run_percentile(self, fraction: float) -> float | None:
        """The upper bound of the histogram bucket holding that fraction of run times
        (`inf` past the last bound); None with no job that ran."""
        return percentile(self.run_buckets, fraction)

    def plus(self, other: HistoryPoint) -> HistoryPoint:
        """Both added up, at this point's start."""
        return HistoryPoint(
            self.start,
            self.completed + other.completed,
            self.failed + other.failed,
            self.cancelled + other.cancelled,
            self.wait_count + other.wait_count,
            self.wait_sum + other.wait_sum,
            self.run_count + other.run_count,
            self.run_sum + other.run_sum,
            tuple(a + b for a, b in zip(self.run_buckets, other.run_buckets, strict=True)),
        )


def percentile(buckets: Sequence[int], fraction: float) -> float | None:
    """The bound of the bucket where the `fraction`-th run time falls, None if all are 0."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen = fraction * total, 0
    for index, count in enumerate(buckets):
        seen += count
        if count and seen >= rank:
            return RUN_BOUNDS[index] if index < len(RUN_BOUNDS) else float("inf")
    return float("inf")


def bucket_of(run_seconds: float) -> int:
    """The histogram bucket of one run time."""
    for index, bound in enumerate(RUN_BOUNDS):
        if run_seconds < bound:
            return index
    return len(RUN_BOUNDS)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """`moment` down to a multiple of `step` since the epoch (UTC)."""
    seconds = step.total_seconds()
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def point_of_row(row: Sequence[Any]) -> HistoryPoint:
    """A point from a store's row: start (a datetime), then the counts in field order and
    the run buckets."""
    start, completed, failed, cancelled, wait_count, wait_sum, run_count, run_sum = row[:8]
    assert isinstance(start, datetime)
    return HistoryPoint(
        start,
        int(completed or 0),
        int(failed or 0),
        int(cancelled or 0),
        int(wait_count or 0),
        float(wait_sum or 0),
        int(run_count or 0),
        float(run_sum or 0),
        tuple(int(b or 0) for b in row[8 : 8 + BUCKETS]),
    )


def merged(points: Iterable[HistoryPoint]) -> list[HistoryPoint]:
    """Points of the same start added up, oldest first."""
    by_start: dict[datetime, HistoryPoint] = {}
    for point in points:
        known = by_start.get(point.start)
        by_start[point.start] = point if known is None else known.plus(point)
    return [by_start[start] for start in sorted(by_start)]


def series(
    points: Iterable[HistoryPoint], until: datetime, span: HistoryRange
) -> list[HistoryPoint]:
    """Every point of the range ending at `until`, oldest first, empty ones included (the
    last is the step still open)."""
    last = floor_to(until, span.step)
    starts = [last - span.step * i for i in reversed(range(span.points))]
    known = {p.start: p for p in merged(points)}
    return [known.get(start, HistoryPoint(start)) for start in starts]


def add_job(
    into: dict[tuple[str, datetime], list[float]],
    queue: str,
    state: str,
    run_at: datetime,
    started_at: datetime | None,
    finished_at: datetime,
    step: timedelta,
) -> None:
    """Count one finished job into `into` (by queue and start of its step), as the SQL
    stores' roll-up and history queries do: the memory store's side of the same rule."""
    row = into.setdefault((queue, floor_to(finished_at, step)), [0.0] * (7 + BUCKETS))
    if state in ("completed", "failed", "cancelled"):
        row[("completed", "failed", "cancelled").index(state)] += 1
    if started_at is not None:
        row[3] += 1
        row[4] += max(0.0, (started_at - run_at).total_seconds())
        if state in ("completed", "failed"):
            run = max(0.0, (finished_at - started_at).total_seconds())
            row[5] += 1
            row[6] += run
            row[7 + bucket_of(run)] += 1


def points_of(
    rows: dict[tuple[str, datetime], list[float]], queue: str | None
) -> list[HistoryPoint]:
    """The points of `add_job`'s rows (one queue's, or all added up)."""
    return merged(
        point_of_row((start, *values))
        for (name, start), values in rows.items()
        if queue is None or name == queue
    )
