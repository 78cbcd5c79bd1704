"""How long jobs run: p50 and p95 of the latest completed jobs, per job name and per queue.

Read from a bounded sample through the listing every store has (the newest SAMPLE completed
jobs), and kept for CACHE_SECONDS so the overview's live refresh does not read it every poll.
A store-side aggregate (issue 19's per-minute history) would cover more than the sample.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conveyor.model.job import Job, JobState
from conveyor.services import JobService

SAMPLE = 1000  # completed jobs read, newest first
CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Runtime:
    """Run times (started to finished, seconds) of one job name's or queue's sampled jobs."""

    key: str
    count: int
    p50: float
    p95: float


@dataclass(frozen=True, slots=True)
class Runtimes:
    """Runtime percentiles per job name and per queue, busiest first, of `sampled` jobs."""

    by_name: list[Runtime]
    by_queue: list[Runtime]
    sampled: int
    complete: bool  # False: more completed jobs exist than were sampled


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank `q` percentile (0 < q <= 1) of ascending `ordered` (not empty)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def runtimes_of(jobs: Iterable[Job], complete: bool = True) -> Runtimes:
    """Percentiles of the run times of `jobs` that have started and finished."""
    names: dict[str, list[float]] = {}
    queues: dict[str, list[float]] = {}
    sampled = 0
    for job in jobs:
        if job.started_at is None or job.finished_at is None:
            continue
        seconds = max(0.0, (job.finished_at - job.started_at).total_seconds())
        names.setdefault(job.name, []).append(seconds)
        queues.setdefault(job.queue, []).append(seconds)
        sampled += 1
    return Runtimes(_rows(names), _rows(queues), sampled, complete)


def _rows(groups: dict[str, list[float]]) -> list[Runtime]:
    rows = []
    for key, values in groups.items():
        values.sort()
        rows.append(Runtime(key, len(values), percentile(values, 0.5), percentile(values, 0.95)))
    rows.sort(key=lambda row: (-row.count, row.key))
    return rows


class RuntimeCache:
    """The latest sample's percentiles, read again once they are CACHE_SECONDS old."""

    def __init__(self, jobs: JobService, clock: Callable[[], float] = time.monotonic) -> None:
        self._jobs = jobs
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: tuple[float, Runtimes] | None = None

    def get(self) -> Runtimes:
        """The percentiles, at most CACHE_SECONDS old."""
        with self._lock:
            now = self._clock()
            if self._kept is not None and now - self._kept[0] < CACHE_SECONDS:
                return self._kept[1]
        found = self._jobs.list(state=JobState.COMPLETED, per_page=SAMPLE)
        result = runtimes_of(found.jobs, complete=found.total <= len(found.jobs))
        with self._lock:
            self._kept = (now, result)
        return result
