"""Helpers shared by the test suites (importable as `helpers`)."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import pytest


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


async def wait_until_async(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """`wait_until` for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """Counts without the zero entries (stores may or may not list empty states)."""
    return {key: value for key, value in counts.items() if value}


def peak_running(spans: Iterable[tuple[object, float, float]]) -> dict[object, int]:
    """The most spans of each group that overlap at once, from (group, start, end) triples
    (e.g. a concurrency key and the times a job's body began and ended, which lie inside
    the store's running span); an end and a start at the same instant do not overlap."""
    events: dict[object, list[tuple[float, int]]] = {}
    for group, start, end in spans:
        events.setdefault(group, []).extend([(start, 1), (end, -1)])
    peaks: dict[object, int] = {}
    for group, moments in events.items():
        running = peak = 0
        for _, step in sorted(moments):
            running += step
            peak = max(peak, running)
        peaks[group] = peak
    return peaks


def most_started_in_a_window(starts: Iterable[datetime], window: float) -> int:
    """The most of `starts` inside any one window of `window` seconds (half-open)."""
    ordered = sorted(starts)
    span = timedelta(seconds=window)
    return max(
        (bisect.bisect_left(ordered, first + span, lo=i) - i for i, first in enumerate(ordered)),
        default=0,
    )
