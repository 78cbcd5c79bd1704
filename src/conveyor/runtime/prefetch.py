"""How many claimed jobs a worker holds ready beyond its free slots.

A claim costs a round trip to the store. A worker that claims only when a slot is free waits
that round trip after every batch; holding a few claimed jobs ready lets the next claim overlap
with the running ones. The cost: a ready job is leased to this worker while it waits, so no
other worker can take it. The plan keeps that wait about one claim long: it holds as many jobs
as its slots finish during one claim (concurrency * claim time / run time), so short jobs get a
full batch ahead and jobs that take longer than a claim get none.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from conveyor.model.job import Job

SMOOTHING = 0.1  # weight of the newest measurement in the running averages
RELEASE_AFTER = 0.25  # seconds a ready job may wait for a slot before it is handed back
# The default most jobs held ready, per slot. One per slot left a 10-slot worker of very short
# jobs claiming 15 at a time and waiting on each claim's commit; four per slot drained 15-40 %
# faster in A/B runs (bench/RESULTS.md). Longer jobs never reach it (the plan's own rule).
AHEAD_PER_SLOT = 4
# Seconds of work the ready jobs cover at least, for jobs shorter than that: far below
# RELEASE_AFTER, so that jobs held ready still start long before they would be handed back.
MIN_COVER = RELEASE_AFTER / 8


class PrefetchPlan:
    """Running averages of claim and run times, and the number of jobs to hold ready."""

    def __init__(self, concurrency: int, limit: int | None) -> None:
        self._concurrency = concurrency
        self._limit = AHEAD_PER_SLOT * concurrency if limit is None else limit
        self._run: float | None = None
        self._claim: float | None = None

    def ran(self, seconds: float) -> None:
        """Record how long one job ran."""
        self._run = seconds if self._run is None else _mix(self._run, seconds)

    def claimed(self, seconds: float) -> None:
        """Record how long one claim took."""
        self._claim = seconds if self._claim is None else _mix(self._claim, seconds)

    def stalled(self, waited: float) -> None:
        """Ready jobs waited `waited` seconds for a slot: the running jobs take at least that
        long, so hold none ready until short jobs bring the average back down."""
        self._run = max(self._run or 0.0, waited)

    def target(self) -> int:
        """How many jobs to hold ready now (0 until a job and a claim were measured)."""
        if self._limit == 0 or self._run is None or self._claim is None:
            return 0
        # enough to cover one claim, and never less than a short stretch of work: claims are
        # transactions, and a worker of quick jobs (threads, or children behind a line of
        # waiting jobs) that topped up a few at a time spent its CPU on them
        rate = self._concurrency / max(self._run, 1e-6)
        cover = max(self._claim, MIN_COVER) if self._run < MIN_COVER else self._claim
        ahead = rate * cover
        return min(self._limit, int(ahead))


def _mix(average: float, sample: float) -> float:
    return average + SMOOTHING * (sample - average)


@dataclass(slots=True)
class _Waiting:
    job: Job
    since: float


class ReadyJobs:
    """Claimed jobs waiting for a free slot, oldest first."""

    def __init__(self) -> None:
        self._waiting: deque[_Waiting] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, job_id: object) -> bool:
        return any(w.job.id == job_id for w in self._waiting)

    def __iter__(self) -> Iterator[Job]:
        return (w.job for w in self._waiting)

    def add(self, job: Job) -> None:
        """Hold `job` until a slot frees."""
        self._waiting.append(_Waiting(job, time.monotonic()))

    def next(self) -> Job | None:
        """The job that has waited longest, or None."""
        return self._waiting.popleft().job if self._waiting else None

    def remove(self, job_id: str) -> Job | None:
        """Take the job out if it waits here."""
        for waiting in self._waiting:
            if waiting.job.id == job_id:
                self._waiting.remove(waiting)
                return waiting.job
        return None

    def oldest_wait(self) -> float:
        """Seconds the oldest job has waited (0 when none waits)."""
        return time.monotonic() - self._waiting[0].since if self._waiting else 0.0

    def take_all(self) -> list[Job]:
        """Empty the buffer, returning its jobs."""
        jobs = [w.job for w in self._waiting]
        self._waiting.clear()
        return jobs
