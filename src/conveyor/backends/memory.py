"""The in-process store: jobs in a dict, waiting jobs in per-queue heaps, all behind one lock.

Nothing here touches I/O or reads the job clock (`now` always comes from the caller); the only
clock read is `time.monotonic()` to bound how long a full queue makes `enqueue` wait.

Waiting jobs are indexed lazily: each one owns a token, its heap entries carry the token, and an
entry whose token is no longer the job's live token is skipped (and dropped) when it reaches the
top. That keeps claim, cancel and delete O(log n) without searching the heaps.
"""

from __future__ import annotations

import builtins
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

from conveyor.backends.memory_recurring import RecurringTable
from conveyor.backends.protocol import (
    LIST_COUNT_CAP,
    Claimed,
    ClaimRequest,
    Counts,
    JobFilter,
    Outcome,
    Page,
    QueueInfo,
    Report,
    Throughput,
    WorkerInfo,
)
from conveyor.errors import ConfigurationError, QueueFull
from conveyor.model.job import (
    FINISHED_STATES,
    WAITING_STATES,
    AttemptError,
    Enqueued,
    Job,
    JobState,
    NewJob,
)
from conveyor.model.logs import append_logs
from conveyor.model.recurring import DueRecurring, Fire, RecurringJob, job_for_fire

_OUTCOME_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.SCHEDULED,
        JobState.PENDING,
        JobState.CANCELLED,
    }
)
# Finished states pruned with the `completed_before` cut-off; failed jobs have their own.
_SHORT_RETENTION = frozenset({JobState.COMPLETED, JobState.CANCELLED, JobState.SKIPPED})
# Rebuild a queue's heaps when dead entries outnumber live ones by this much.
_COMPACT_SLACK = 1024

_DueEntry = tuple[int, datetime, str, int]  # (-priority, run_at, id, token)
_FutureEntry = tuple[datetime, int, str, int]  # (run_at, -priority, id, token)
_TimedEntry = tuple[datetime, str]  # (time, id)

# dataclasses.replace re-runs Job.__init__ through fields() and costs most of a claim, so the
# worker's per-job verbs (claim, finish, report, heartbeat) copy through `_evolve`, which fills
# a new instance's slots directly. Job has no __post_init__ whose checks this would skip.
_JOB_FIELDS = tuple(f.name for f in fields(Job))
_read_fields = attrgetter(*_JOB_FIELDS)
_slot_setters = tuple(getattr(Job, name).__set__ for name in _JOB_FIELDS)
_field_index = {name: i for i, name in enumerate(_JOB_FIELDS)}


def _evolve(job: Job, **changes: Any) -> Job:
    """`dataclasses.replace(job, **changes)`, about four times faster."""
    values = list(_read_fields(job))
    for name, value in changes.items():
        values[_field_index[name]] = value
    copy = object.__new__(Job)
    for set_slot, value in zip(_slot_setters, values, strict=True):
        set_slot(copy, value)
    return copy


class _QueueIndex:
    """The waiting jobs of one queue, and how many of its jobs are running."""

    __slots__ = ("due", "future", "live", "name", "running")

    def __init__(self, name: str) -> None:
        self.name = name
        self.due: list[_DueEntry] = []  # run_at <= some `now` seen: ordered for claiming
        self.future: list[_FutureEntry] = []  # not yet due: ordered by when they become due
        self.live = 0
        self.running = 0


class MemoryBackend:
    """A job store held in this process's memory: fast, bounded, gone when the process exits.

    `max_queue_size` caps the scheduled + pending jobs (0 = no cap). When an enqueue would pass
    it, `queue_full="wait"` waits up to `queue_full_timeout` seconds for room, and
    `queue_full="refuse"` raises `QueueFull` at once. Retries and rescued jobs are never refused:
    the cap applies to new work only.
    """

    #: Calls never wait on I/O (only a full queue in "wait" mode blocks `enqueue`).
    blocking: bool = False

    def __init__(
        self,
        max_queue_size: int = 10_000,
        queue_full: Literal["wait", "refuse"] = "wait",
        queue_full_timeout: float = 5.0,
    ) -> None:
        if max_queue_size < 0:
            raise ConfigurationError("max_queue_size must be 0 (no cap) or a positive number")
        if queue_full not in ("wait", "refuse"):
            raise ConfigurationError("queue_full must be 'wait' or 'refuse'")
        if queue_full_timeout < 0:
            raise ConfigurationError("queue_full_timeout must be zero or more seconds")
        self.max_queue_size = max_queue_size
        self.queue_full = queue_full
        self.queue_full_timeout = queue_full_timeout

        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # waiting jobs left: enqueue may fit
        self._arrival = threading.Condition(self._lock)  # work may have become runnable
        self._arrivals = 0
        self._callbacks: list[Callable[[], None]] = []

        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, _QueueIndex] = {}
        self._tokens: dict[str, int] = {}  # waiting job id -> token of its live heap entries
        self._token_source = itertools.count()
        self._running: set[str] = set()
        self._unique: dict[str, str] = {}  # unique_key -> id of the active job holding it
        self._scheduled: list[_TimedEntry] = []  # (run_at, id) of scheduled jobs
        self._finished_short: list[_TimedEntry] = []  # (finished_at, id), completed-like
        self._finished_failed: list[_TimedEntry] = []  # (finished_at, id), failed
        self._counts: dict[tuple[str, JobState], int] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._held: dict[str, int] = {}  # concurrency_key -> running jobs holding it
        self._paused: set[str] = set()
        self._recurring = RecurringTable()

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Nothing to connect to; kept for the protocol. Idempotent."""

    def close(self) -> None:
        """Nothing to release; the jobs stay until the object is dropped. Idempotent."""

    # producers -------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` all at once, in order; an active unique_key returns the existing job.

        The whole batch fits or none of it is stored: a full store waits for room or raises
        `QueueFull` (see the class docstring).
        """
        if not jobs:
            return []
        with self._lock:
            deadline: float | None = None
            while True:
                plan, new_count = self._plan(jobs)
                if self._fits(new_count):
                    break
                if self.queue_full == "refuse" or new_count > self.max_queue_size:
                    raise QueueFull(self._full_message(new_count, waited=False))
                if deadline is None:
                    deadline = time.monotonic() + self.queue_full_timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueFull(self._full_message(new_count, waited=True))
                self._space.wait(remaining)

            results: list[Enqueued] = []
            made: dict[str, Job] = {}  # unique_key -> job created earlier in this batch
            for new, existing in zip(jobs, plan, strict=True):
                if existing is not None:
                    results.append(Enqueued(job=existing, created=False))
                    continue
                if new.unique_key is not None and new.unique_key in made:
                    results.append(Enqueued(job=made[new.unique_key], created=False))
                    continue
                job = self._store_new(new, now)
                if job.unique_key is not None:
                    made[job.unique_key] = job
                results.append(Enqueued(job=job, created=True))
            if new_count:
                self._announce()
        if new_count:
            self._call_back()
        return results

    def _plan(self, jobs: Sequence[NewJob]) -> tuple[builtins.list[Job | None], int]:
        """For each request, the active job it duplicates (or None), and how many are new."""
        plan: builtins.list[Job | None] = []
        keys: set[str] = set()
        ids: set[str] = set()
        new_count = 0
        for new in jobs:
            key = new.unique_key
            if key is not None and key in self._unique:
                plan.append(self._jobs[self._unique[key]])
                continue
            plan.append(None)
            if key is not None:
                if key in keys:
                    continue
                keys.add(key)
            if new.id in self._jobs or new.id in ids:
                raise ValueError(
                    f"a job with id {new.id!r} already exists: give each job its own id"
                )
            ids.add(new.id)
            new_count += 1
        return plan, new_count

    def _fits(self, new_count: int) -> bool:
        return not self.max_queue_size or len(self._tokens) + new_count <= self.max_queue_size

    def _full_message(self, new_count: int, *, waited: bool) -> str:
        size = self.max_queue_size
        if new_count > size:
            return (
                f"a batch of {new_count} new jobs can never fit in the in-memory queue "
                f"(max_queue_size={size}): enqueue smaller batches or raise max_queue_size"
            )
        state = f"{len(self._tokens)} of max_queue_size={size} jobs are waiting"
        if waited:
            return (
                f"the in-memory queue is still full after waiting {self.queue_full_timeout}s "
                f"({state}, {new_count} more asked): add workers, raise max_queue_size, "
                "or raise queue_full_timeout"
            )
        return (
            f"the in-memory queue is full ({state}, {new_count} more asked): retry later, "
            "raise max_queue_size, or set queue_full='wait'"
        )

    # workers ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> Claimed:
        """Take up to `request.limit` due jobs, best first, honouring per-queue limits."""
        now = request.now
        limits = request.queue_limits
        taken: builtins.list[Job] = []
        with self._lock:
            if request.queues is None:
                indexes = builtins.list(self._queues.values())
            else:
                indexes = [self._queues[n] for n in request.queues if n in self._queues]
            candidates: builtins.list[_QueueIndex] = []
            for index in indexes:
                if index.name in self._paused:
                    continue
                self._mature(index, now)
                cap = limits.get(index.name)
                if cap is None or index.running < cap:
                    candidates.append(index)

            jobs, tokens = self._jobs, self._tokens
            deferred: builtins.list[tuple[_QueueIndex, _DueEntry]] = []
            while len(taken) < request.limit and candidates:
                best: _QueueIndex | None = None
                best_entry: _DueEntry | None = None
                for index in candidates:
                    entry = self._due_top(index, now)
                    if entry is not None and (best_entry is None or entry < best_entry):
                        best, best_entry = index, entry
                if best is None or best_entry is None:
                    break
                heapq.heappop(best.due)
                job = jobs[best_entry[2]]
                key = job.concurrency_key
                if key is not None and key in self._held:
                    deferred.append((best, best_entry))  # its key is busy: it keeps waiting
                    continue
                if key is not None:
                    self._held[key] = 1
                # The entry leaves the heap with the job, so no dead entry is left to compact.
                del tokens[best_entry[2]]
                best.live -= 1
                running = _evolve(
                    job,
                    state=JobState.RUNNING,
                    attempt=job.attempt + 1,
                    started_at=now,
                    worker_id=request.worker_id,
                    lease_expires_at=request.lease_expires_at,
                )
                self._put(running, job)
                self._running.add(running.id)
                best.running += 1
                taken.append(running)
                cap = limits.get(best.name)
                if cap is not None and best.running >= cap:
                    candidates.remove(best)

            for index, entry in deferred:
                heapq.heappush(index.due, entry)
            next_run_at: datetime | None = None
            for index in indexes:
                soonest = self._future_top(index)
                if soonest is not None and (next_run_at is None or soonest < next_run_at):
                    next_run_at = soonest
            if taken and self.max_queue_size:
                self._space.notify_all()
        return Claimed(jobs=taken, next_run_at=next_run_at)

    def finish(self, outcomes: Sequence[Outcome]) -> builtins.list[str]:
        """Apply outcomes of jobs still owned by their worker and attempt; return the others."""
        for outcome in outcomes:
            if outcome.state not in _OUTCOME_STATES:
                raise ValueError(
                    f"an attempt cannot end in state {outcome.state!r}: use one of "
                    f"{', '.join(sorted(_OUTCOME_STATES))}"
                )
        dropped: builtins.list[str] = []
        applied = False
        with self._lock:
            for outcome in outcomes:
                job = self._jobs.get(outcome.job_id)
                if (
                    job is None
                    or job.state is not JobState.RUNNING
                    or job.worker_id != outcome.worker_id
                    or job.attempt != outcome.attempt
                ):
                    dropped.append(outcome.job_id)
                    continue
                self._apply(job, outcome)
                applied = True
            if applied:
                self._announce()
        if applied:
            self._call_back()
        return dropped

    def _apply(self, job: Job, outcome: Outcome) -> None:
        """End `job`'s running attempt as `outcome` says (the caller checked ownership)."""
        self._leave_running(job)
        now = outcome.now
        errors = (*job.errors, outcome.error) if outcome.error is not None else job.errors
        attempt = job.attempt if outcome.count_attempt else job.attempt - 1
        state, run_at = outcome.landing()
        if run_at is not None:
            again = _evolve(
                job,
                state=state,
                run_at=run_at,
                attempt=attempt,
                errors=errors,
                worker_id=None,
                lease_expires_at=None,
            )
            self._put(again, job)
            self._add_waiting(again, now)
            return
        done = _evolve(
            job,
            state=state,
            attempt=attempt,
            finished_at=now,
            result=outcome.result if outcome.state is JobState.COMPLETED else job.result,
            errors=errors,
            worker_id=None,
            lease_expires_at=None,
        )
        self._put(done, job)
        self._settle(done)

    def report(self, reports: Sequence[Report], max_log_lines: int) -> None:
        """Write progress and log lines of running jobs; reports for other jobs are ignored."""
        with self._lock:
            for report in reports:
                job = self._jobs.get(report.job_id)
                if job is None or job.state is not JobState.RUNNING:
                    continue
                updated = _evolve(
                    job,
                    progress=job.progress if report.progress is None else report.progress,
                    progress_message=(
                        job.progress_message
                        if report.progress_message is None
                        else report.progress_message
                    ),
                    logs=(
                        tuple(append_logs(job.logs, report.logs, max_log_lines))
                        if report.logs
                        else job.logs
                    ),
                )
                self._put(updated, job)

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> set[str]:
        """Record `worker` alive and extend the leases of the listed jobs it still owns."""
        cancelled: set[str] = set()
        with self._lock:
            self._workers[worker.id] = worker
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.RUNNING or job.worker_id != worker.id:
                    continue
                self._put(_evolve(job, lease_expires_at=lease_expires_at), job)
                if job.cancel_requested:
                    cancelled.add(job_id)
        return cancelled

    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""
        with self._lock:
            self._workers.pop(worker_id, None)

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block up to `timeout` s; True as soon as jobs are enqueued, retried, finished or
        rescued through this object, False at the timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            seen = self._arrivals
            while self._arrivals == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrival.wait(remaining)
            return True

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after jobs may have become runnable; returns the unsubscriber."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    # maintenance -----------------------------------------------------------------------------
    def rescue_expired(self, now: datetime) -> builtins.list[str]:
        """Running jobs whose lease ended before `now` go back to pending, or to failed when
        no attempt is left (or to cancelled when cancellation was requested)."""
        rescued: builtins.list[str] = []
        with self._lock:
            for job_id in builtins.list(self._running):
                job = self._jobs[job_id]
                if job.lease_expires_at is None or job.lease_expires_at >= now:
                    continue
                self._leave_running(job)
                rescued.append(job_id)
                again = job.attempt < job.max_attempts and not job.cancel_requested
                if job.cancel_requested:
                    fate = "it was cancelled as requested"
                elif again:
                    fate = "it was put back to run again"
                else:
                    fate = f"it failed, having used all {job.max_attempts} attempts"
                error = AttemptError(
                    attempt=job.attempt,
                    message=(
                        f"worker {job.worker_id} stopped heartbeating and its lease expired at "
                        f"{job.lease_expires_at.isoformat()}, so the job was rescued: {fate}"
                    ),
                    at=now,
                    kind="lost",
                )
                lost = replace(
                    job, errors=(*job.errors, error), worker_id=None, lease_expires_at=None
                )
                if again:
                    back = replace(lost, state=JobState.PENDING, run_at=now)
                    self._put(back, job)
                    self._add_waiting(back, now)
                else:
                    state = JobState.CANCELLED if job.cancel_requested else JobState.FAILED
                    done = replace(lost, state=state, finished_at=now)
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

    def _prune_heap(
        self, heap: builtins.list[_TimedEntry], before: datetime, states: frozenset[JobState]
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

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`; returns how many."""
        with self._lock:
            stale = [w.id for w in self._workers.values() if w.last_seen_at < seen_before]
            for worker_id in stale:
                del self._workers[worker_id]
        return len(stale)

    # operators -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, query: JobFilter) -> Page:
        """A page of jobs, newest first (by created_at, then id); search ignores case."""
        with self._lock:
            jobs = builtins.list(self._jobs.values())
        needle = query.search.casefold() if query.search else None
        matching = [
            job
            for job in jobs
            if (query.states is None or job.state in query.states)
            and (query.name is None or job.name == query.name)
            and (query.queue is None or job.queue == query.queue)
            and (needle is None or needle in job.id.casefold() or needle in job.name.casefold())
        ]
        matching.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        page = max(query.page, 1)
        per_page = max(query.per_page, 1)
        start = (page - 1) * per_page
        return Page(
            jobs=matching[start : start + per_page],
            total=min(len(matching), LIST_COUNT_CAP),  # capped like the SQL stores
            page=page,
            per_page=per_page,
            total_exact=len(matching) <= LIST_COUNT_CAP,
        )

    def counts(self) -> Counts:
        """Jobs per state and per queue and state; states with no job are left out."""
        by_state: dict[str, int] = {}
        by_queue: dict[str, dict[str, int]] = {}
        with self._lock:
            for (queue, state), n in self._counts.items():
                by_state[state.value] = by_state.get(state.value, 0) + n
                by_queue.setdefault(queue, {})[state.value] = n
        return Counts(by_state=by_state, by_queue=by_queue)

    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause or resume a queue; resuming wakes waiting workers."""
        with self._lock:
            if paused:
                self._paused.add(name)
                return
            self._paused.discard(name)
            self._announce()
        self._call_back()

    def queues(self, now: datetime) -> builtins.list[QueueInfo]:
        """Every queue with jobs, or paused, by name."""
        with self._lock:
            waiting: dict[str, list[Job]] = {}
            for job_id in self._tokens:
                job = self._jobs[job_id]
                waiting.setdefault(job.queue, []).append(job)
            names = set(self._paused) | {q for q, _ in self._counts}
            infos = []
            for name in sorted(names):
                jobs = waiting.get(name, [])
                due = [j.run_at for j in jobs if j.run_at <= now]
                index = self._queues.get(name)
                infos.append(
                    QueueInfo(
                        name,
                        len(jobs),
                        len(due),
                        index.running if index else 0,
                        name in self._paused,
                        min(due) if due else None,
                    )
                )
            return infos

    def throughput(self, since: datetime) -> builtins.list[Throughput]:
        """Completed and failed jobs per minute since `since`."""
        minutes: dict[datetime, list[int]] = {}
        with self._lock:
            for heap in (self._finished_short, self._finished_failed):
                for finished_at, job_id in heap:
                    job = self._jobs.get(job_id)
                    if job is None or finished_at < since:
                        continue
                    if job.state not in (JobState.COMPLETED, JobState.FAILED):
                        continue
                    minute = finished_at.replace(second=0, microsecond=0)
                    counts = minutes.setdefault(minute, [0, 0])
                    counts[job.state is JobState.FAILED] += 1
        return [Throughput(m, c[0], c[1]) for m, c in sorted(minutes.items())]

    def workers(self) -> builtins.list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned, by id."""
        with self._lock:
            return sorted(self._workers.values(), key=lambda worker: worker.id)

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Cancel a waiting job now, ask a running one's worker to stop; finished: unchanged."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state in WAITING_STATES:
                self._drop_waiting(job_id, self._queues[job.queue])
                done = replace(job, state=JobState.CANCELLED, finished_at=now)
                self._put(done, job)
                self._settle(done)
                self._space.notify_all()
                return done
            if job.state is JobState.RUNNING and not job.cancel_requested:
                asked = replace(job, cancel_requested=True)
                self._put(asked, job)
                return asked
            return job

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending with a fresh attempt budget, errors kept.

        Unchanged when another active job now holds its unique_key, or in any other state.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state not in (JobState.FAILED, JobState.CANCELLED):
                return job
            if job.unique_key is not None and job.unique_key in self._unique:
                return job
            again = replace(
                job,
                state=JobState.PENDING,
                attempt=0,
                run_at=now,
                finished_at=None,
                cancel_requested=False,
                result=None,
            )
            self._put(again, job)
            if again.unique_key is not None:
                self._unique[again.unique_key] = again.id
            self._add_waiting(again, now)
            self._announce()
        self._call_back()
        return again

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is JobState.RUNNING:
                return False
            if job.state in WAITING_STATES:
                self._drop_waiting(job_id, self._queues[job.queue])
                self._release_unique(job)
                self._space.notify_all()
            self._remove(job)
            return True

    # recurring jobs --------------------------------------------------------------------------
    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> builtins.list[RecurringJob]:
        """Insert or update definitions (see the protocol)."""
        with self._lock:
            return self._recurring.save(jobs, now, from_code=from_code)

    def set_recurring_enabled(
        self, name: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> RecurringJob | None:
        """An operator's enable/disable toggle."""
        with self._lock:
            changed = self._recurring.set_enabled(name, enabled, next_fire_at, now)
            return None if changed is None else self._with_last_state(changed)

    def delete_recurring(self, name: str) -> bool:
        """Remove a definition; its past jobs stay."""
        with self._lock:
            return self._recurring.definitions.pop(name, None) is not None

    def recurring(self, name: str | None = None) -> builtins.list[RecurringJob]:
        """Definitions by name, with the state of each one's last job."""
        with self._lock:
            table = self._recurring.definitions
            chosen = (
                [table[name]] if name in table else [] if name else builtins.list(table.values())
            )
            return sorted((self._with_last_state(j) for j in chosen), key=lambda j: j.name)

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions that are due, and the next fire time after them."""
        with self._lock:
            return self._recurring.due(now)

    def fire_recurring(
        self, fires: Sequence[Fire], now: datetime
    ) -> builtins.list[Enqueued | None]:
        """Record and enqueue recurring runs, each tick once."""
        results: builtins.list[Enqueued | None] = []
        with self._lock:
            names = {fire.recurring_name for fire in fires}
            active = {
                job.recurring_name
                for job_id in itertools.chain(self._tokens, self._running)
                if (job := self._jobs[job_id]).recurring_name in names
            }
            for fire in fires:
                if not self._recurring.claim_tick(fire, now):
                    results.append(None)
                    continue
                previous = fire.recurring_name in active
                job = self._store_new(job_for_fire(fire, previous, now), now)
                self._recurring.record(fire, job.id)
                results.append(Enqueued(job, True))
            if any(results):
                self._announce()
        if any(results):
            self._call_back()
        return results

    def _with_last_state(self, job: RecurringJob) -> RecurringJob:
        last = self._jobs.get(job.last_job_id) if job.last_job_id else None
        return replace(job, last_job_state=None if last is None else last.state)

    # indexes (all called with the lock held) -------------------------------------------------
    def _store_new(self, new: NewJob, now: datetime) -> Job:
        """Store a new job and index it as waiting (or as finished, for a skipped run)."""
        job = new.to_job(now)
        self._put(job)
        if job.state in FINISHED_STATES:
            self._settle(job)
            return job
        if job.unique_key is not None:
            self._unique[job.unique_key] = job.id
        self._add_waiting(job, now)
        return job

    def _put(self, job: Job, old: Job | None = None) -> None:
        """Store `job`, replacing `old` (the same job's previous snapshot), and keep counts."""
        counts = self._counts
        if old is not None:
            key = (old.queue, old.state)
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]
        self._jobs[job.id] = job
        key = (job.queue, job.state)
        counts[key] = counts.get(key, 0) + 1

    def _remove(self, job: Job) -> None:
        del self._jobs[job.id]
        key = (job.queue, job.state)
        left = self._counts[key] - 1
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]

    def _add_waiting(self, job: Job, now: datetime) -> None:
        """Index a scheduled or pending job so claim can find it."""
        token = next(self._token_source)
        self._tokens[job.id] = token
        index = self._queues.get(job.queue)
        if index is None:
            index = self._queues[job.queue] = _QueueIndex(job.queue)
        index.live += 1
        if job.run_at <= now:
            heapq.heappush(index.due, (-job.priority, job.run_at, job.id, token))
        else:
            heapq.heappush(index.future, (job.run_at, -job.priority, job.id, token))
        if job.state is JobState.SCHEDULED:
            heapq.heappush(self._scheduled, (job.run_at, job.id))

    def _drop_waiting(self, job_id: str, index: _QueueIndex) -> None:
        """Unindex a waiting job: its heap entries become dead and are skipped later."""
        if self._tokens.pop(job_id, None) is None:
            return
        index.live -= 1
        if len(index.due) + len(index.future) > 2 * index.live + _COMPACT_SLACK:
            index.due = [e for e in index.due if self._tokens.get(e[2]) == e[3]]
            index.future = [e for e in index.future if self._tokens.get(e[2]) == e[3]]
            heapq.heapify(index.due)
            heapq.heapify(index.future)

    def _mature(self, index: _QueueIndex, now: datetime) -> None:
        """Move entries that are due at `now` from the future heap to the due heap."""
        future, tokens = index.future, self._tokens
        while future and future[0][0] <= now:
            run_at, neg_priority, job_id, token = heapq.heappop(future)
            if tokens.get(job_id) == token:
                heapq.heappush(index.due, (neg_priority, run_at, job_id, token))

    def _due_top(self, index: _QueueIndex, now: datetime) -> _DueEntry | None:
        """The best live due entry of a queue, dropping dead ones on the way."""
        due, tokens = index.due, self._tokens
        while due:
            entry = due[0]
            if tokens.get(entry[2]) != entry[3]:
                heapq.heappop(due)
            elif entry[1] > now:
                # A caller with an earlier clock than a previous claim: not due for this one.
                heapq.heappop(due)
                heapq.heappush(index.future, (entry[1], entry[0], entry[2], entry[3]))
            else:
                return entry
        return None

    def _future_top(self, index: _QueueIndex) -> datetime | None:
        """When the soonest live not-yet-due job of a queue becomes due."""
        future, tokens = index.future, self._tokens
        while future and tokens.get(future[0][2]) != future[0][3]:
            heapq.heappop(future)
        return future[0][0] if future else None

    def _leave_running(self, job: Job) -> None:
        self._running.discard(job.id)
        self._queues[job.queue].running -= 1
        key = job.concurrency_key
        if key is not None:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def _settle(self, job: Job) -> None:
        """Bookkeeping for a job that just reached a final state."""
        self._release_unique(job)
        assert job.finished_at is not None
        heap = self._finished_failed if job.state is JobState.FAILED else self._finished_short
        heapq.heappush(heap, (job.finished_at, job.id))

    def _release_unique(self, job: Job) -> None:
        if job.unique_key is not None and self._unique.get(job.unique_key) == job.id:
            del self._unique[job.unique_key]

    def _announce(self) -> None:
        self._arrivals += 1
        self._arrival.notify_all()

    def _call_back(self) -> None:
        """Tell subscribers; called without the lock, and a failing callback is ignored."""
        with self._lock:
            callbacks = tuple(self._callbacks)
        for callback in callbacks:
            # A subscriber's bug must not fail the store call that announced the work.
            with contextlib.suppress(Exception):
                callback()
