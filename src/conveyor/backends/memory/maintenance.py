"""The memory store's maintenance: rescue expired leases, promote due jobs, prune old jobs,
ticks and workers (what the sweeper in `runtime/maintenance.py` calls)."""

from __future__ import annotations

import heapq
from dataclasses import replace
from datetime import datetime

from conveyor.backends.memory.index import JobIndex, TimedEntry
from conveyor.model.job import JobState
from conveyor.model.lifecycle import LostLease, after_lost_lease

# Finished states pruned with the `completed_before` cut-off; failed jobs have their own.
_SHORT_RETENTION = frozenset({JobState.COMPLETED, JobState.CANCELLED, JobState.SKIPPED})


class MaintenanceVerbs(JobIndex):
    """The memory store's maintenance verbs; `MemoryBackend` is made of this and its siblings."""

    def rescue_expired(self, now: datetime) -> list[str]:
        """Running jobs whose lease ended before `now` go back to pending, or to failed when
        no attempt is left (or to cancelled when cancellation was requested)."""
        rescued: list[str] = []
        with self._lock:
            for job_id in list(self._running):
                job = self._jobs[job_id]
                if job.lease_expires_at is None or job.lease_expires_at >= now:
                    continue
                self._leave_running(job)
                rescued.append(job_id)
                landing, error = after_lost_lease(
                    LostLease(
                        job.attempt,
                        job.max_attempts,
                        job.cancel_requested,
                        job.worker_id,
                        job.lease_expires_at,
                    ),
                    now,
                )
                lost = replace(
                    job,
                    state=landing.state,
                    errors=(*job.errors, error),
                    worker_id=None,
                    lease_expires_at=None,
                )
                if landing.run_at is not None:
                    back = replace(lost, run_at=landing.run_at)
                    self._put(back, job)
                    self._add_waiting(back, now)
                else:
                    done = replace(lost, finished_at=landing.finished_at)
                    self._put(done, job)
                    self._settle(done)
            if rescued:
                self._announce()
        if rescued:
            self._call_back()
        return rescued

    def promote_scheduled(self, now: datetime) -> int:
        """Scheduled jobs due at `now` become pending; returns how many."""
        promoted = 0
        with self._lock:
            heap = self._scheduled
            while heap and heap[0][0] <= now:
                run_at, job_id = heapq.heappop(heap)
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.SCHEDULED or job.run_at != run_at:
                    continue
                self._put(replace(job, state=JobState.PENDING), job)
                promoted += 1
        return promoted

    def prune(self, completed_before: datetime, failed_before: datetime) -> int:
        """Delete completed, cancelled and skipped jobs finished before `completed_before`, and
        failed ones finished before `failed_before`; returns how many."""
        with self._lock:
            pruned = self._prune_heap(self._finished_short, completed_before, _SHORT_RETENTION)
            pruned += self._prune_heap(
                self._finished_failed, failed_before, frozenset({JobState.FAILED})
            )
            self._recurring.prune(failed_before)
        return pruned

    def count_prunable(
        self, completed_before: datetime, failed_before: datetime
    ) -> dict[JobState, int]:
        """How many jobs `prune` with these cut-offs would delete now, by state."""
        counts: dict[JobState, int] = {}
        with self._lock:
            for heap, before, states in (
                (self._finished_short, completed_before, _SHORT_RETENTION),
                (self._finished_failed, failed_before, frozenset({JobState.FAILED})),
            ):
                seen: set[str] = set()
                for finished_at, job_id in heap:
                    job = self._jobs.get(job_id)
                    if finished_at >= before or job is None or job_id in seen:
                        continue
                    if job.state in states and job.finished_at == finished_at:
                        seen.add(job_id)
                        counts[job.state] = counts.get(job.state, 0) + 1
        return counts

    def _prune_heap(
        self, heap: list[TimedEntry], before: datetime, states: frozenset[JobState]
    ) -> int:
        pruned = 0
        while heap and heap[0][0] < before:
            finished_at, job_id = heapq.heappop(heap)
            job = self._jobs.get(job_id)
            if job is None or job.state not in states or job.finished_at != finished_at:
                continue
            self._remove(job)
            pruned += 1
        return pruned

    def prune_rate_windows(self, started_before: datetime) -> int:
        """Forget rate windows whose latest start is older than `started_before`."""
        cutoff = started_before.timestamp()
        with self._lock:
            old = [b for b, starts in self._windows.items() if not starts or starts[-1] < cutoff]
            for bucket in old:
                del self._windows[bucket]
        return len(old)

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`; returns how many."""
        with self._lock:
            stale = [w.id for w in self._workers.values() if w.last_seen_at < seen_before]
            for worker_id in stale:
                del self._workers[worker_id]
        return len(stale)
