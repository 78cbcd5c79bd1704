"""The history's shared rules: buckets, percentiles as bounds, ranges, every step of a range."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from conveyor.errors import InvalidFilter
from conveyor.model.history import (
    BUCKETS,
    RUN_BOUNDS,
    HistoryPoint,
    bucket_of,
    check_history_queue,
    floor_to,
    parse_range,
    percentile,
    series,
)

T = datetime(2026, 1, 1, 12, 7, 30, tzinfo=UTC)


def test_run_times_fall_in_the_bucket_below_their_bound() -> None:
    assert [bucket_of(s) for s in (0, 0.0099, 0.01, 0.3, 299.9, 300, 9999)] == [
        0,
        0,
        1,
        4,
        9,
        10,
        10,
    ]
    assert len(RUN_BOUNDS) + 1 == BUCKETS


def test_a_percentile_is_the_bound_of_its_bucket() -> None:
    buckets = [0] * BUCKETS
    buckets[2], buckets[5] = 90, 10  # 90 under 100 ms, 10 under 1 s
    assert percentile(buckets, 0.5) == 0.1
    assert percentile(buckets, 0.9) == 0.1
    assert percentile(buckets, 0.95) == 1.0
    assert percentile([0] * BUCKETS, 0.95) is None
    over = [0] * BUCKETS
    over[-1] = 1
    assert math.isinf(percentile(over, 0.5) or 0)


def test_points_add_up() -> None:
    one = HistoryPoint(T, 1, 2, 3, 1, 0.5, 1, 2.0, (1,) + (0,) * (BUCKETS - 1))
    both = one.plus(one)
    assert (both.completed, both.failed, both.cancelled, both.mean_wait, both.mean_run) == (
        2, 4, 6, 0.5, 2.0,
    )  # fmt: skip
    assert both.run_buckets[0] == 2 and HistoryPoint(T).mean_run is None


@pytest.mark.parametrize(
    ("name", "points", "step"), [("1h", 60, 60), ("24h", 96, 900), ("7d", 168, 3600)]
)
def test_a_range_has_every_step_up_to_the_open_one(name: str, points: int, step: int) -> None:
    span = parse_range(name)
    filled = series([HistoryPoint(floor_to(T, span.step), completed=3)], T, span)
    assert len(filled) == points == span.points
    assert filled[-1].start == floor_to(T, timedelta(seconds=step)) and filled[-1].completed == 3
    assert all(b.start - a.start == span.step for a, b in pairwise(filled))


@pytest.mark.parametrize("bad", ["2h", "", None, 24, "1 d"])
def test_unknown_ranges_are_refused_with_the_known_ones(bad: object) -> None:
    with pytest.raises(InvalidFilter, match="use one of 1h, 24h, 7d"):
        parse_range(bad)


def test_queue_names_are_checked() -> None:
    assert check_history_queue(None) is None and check_history_queue("emails") == "emails"
    with pytest.raises(InvalidFilter, match="not a valid queue name"):
        check_history_queue("a/b")
