"""The in-process store: `MemoryBackend`, jobs in a dict, waiting jobs in per-queue heaps, all
behind one lock. Nothing here touches I/O or reads the job clock (`now` comes from the caller).

The class is composed by subclassing, one module per concern, all sharing `JobIndex`'s state:

- `index.py`: the jobs and their indexes (per-queue heaps, unique-key index, counts),
  `enqueue` and the bound on waiting jobs (wait or refuse);
- `operators.py`: look-ups, listings, statistics, cancel, retry, delete, pause;
- `maintenance.py`: rescue expired leases, promote, prune;
- `recurring.py`: the recurring-job table;
- `history.py`: the per-minute history (roll up, read, prune);
- here: the worker's verbs (claim, finish, report, heartbeat, wake-ups) and the recurring verbs.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from conveyor.backends.memory.history import HistoryVerbs
from conveyor.backends.memory.index import DueEntry, QueueIndex
from conveyor.backends.memory.maintenance import MaintenanceVerbs
from conveyor.backends.memory.workflows import WorkflowVerbs
from conveyor.backends.records import (
    Claimed,
    ClaimRequest,
    Heartbeat,
    Outcome,
    Report,
    WorkerInfo,
)
from conveyor.model.job import JOB_FIELDS, SLOT_SETTERS, Enqueued, Job, JobState
from conveyor.model.keys import has_key_room
from conveyor.model.lifecycle import ATTEMPT_ENDINGS
from conveyor.model.logs import append_logs
from conveyor.model.rates import Bucket, Rate, full_until, key_bucket, queue_bucket, record, room
from conveyor.model.recurring import DueRecurring, Fire, RecurringJob, job_for_fire

# dataclasses.replace re-runs Job.__init__ through fields() and costs most of a claim, so the
# worker's per-job verbs (claim, finish, report, heartbeat) copy through `_evolve`, which fills
# a new instance's slots directly (model.job.job_from_values).
_read_fields = attrgetter(*JOB_FIELDS)
_field_index = {name: i for i, name in enumerate(JOB_FIELDS)}


def _evolve(job: Job, **changes: Any) -> Job:
    """`dataclasses.replace(job, **changes)`, about four times faster."""
    values = list(_read_fields(job))
    for name, value in changes.items():
        values[_field_index[name]] = value
    copy = object.__new__(Job)  # job_from_values, inline: twice per job run
    for set_slot, value in zip(SLOT_SETTERS, values, strict=True):
        set_slot(copy, value)
    return copy


class MemoryBackend(WorkflowVerbs, MaintenanceVerbs, HistoryVerbs):
    """A job store held in this process's memory: fast, bounded, gone when the process exits.

    `max_queue_size` caps the scheduled + pending jobs (0 = no cap). When an enqueue would pass
    it, `queue_full="wait"` waits up to `queue_full_timeout` seconds for room, and
    `queue_full="refuse"` raises `QueueFull` at once. Retries and rescued jobs are never refused:
    the cap applies to new work only.
    """

    #: Calls never wait on I/O (only a full queue in "wait" mode blocks `enqueue`).
    blocking: bool = False

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Nothing to connect to; kept for the protocol. Idempotent."""

    def close(self) -> None:
        """Nothing to release; the jobs stay until the object is dropped. Idempotent."""

    # workers ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> Claimed:
        """Take up to `request.limit` due jobs, best first, honouring per-queue limits."""
        now = request.now
        limits = request.queue_limits
        taken: list[Job] = []
        with self._lock:
            if request.queues is None:
                indexes = list(self._queues.values())
            else:
                indexes = [self._queues[n] for n in request.queues if n in self._queues]
            candidates: list[QueueIndex] = []
            caps: dict[str, int | None] = {}
            stamp = now.timestamp()
            rates: dict[Bucket, Rate] = {}  # the rate of each window this claim touches
            wakes: list[float] = []  # when a spent window next allows a start
            for index in indexes:
                if index.name in self._paused:
                    continue
                self._mature(index, now)
                cap = caps[index.name] = self._cap(index.name, limits)
                if cap is not None and index.running >= cap:
                    continue
                stored = self._settings.get(index.name)
                if stored is not None and stored.settings.rate_limit is not None:
                    bucket = queue_bucket(index.name)
                    rate = rates[bucket] = Rate.parse(stored.settings.rate_limit)
                    if not room(self._windows.get(bucket, ()), rate, stamp):
                        if index.due:
                            wakes.append(self._window_opens(bucket, rate))
                        continue
                candidates.append(index)

            jobs, tokens = self._jobs, self._tokens
            deferred: list[tuple[QueueIndex, DueEntry]] = []
            while len(taken) < request.limit and candidates:
                best: QueueIndex | None = None
                best_entry: DueEntry | None = None
                for index in candidates:
                    entry = self._due_top(index, now)
                    if entry is not None and (best_entry is None or entry < best_entry):
                        best, best_entry = index, entry
                if best is None or best_entry is None:
                    break
                heapq.heappop(best.due)
                job = jobs[best_entry[2]]
                key = job.concurrency_key
                if key is not None and not has_key_room(
                    self._held.get(key, 0), job.key_concurrency
                ):
                    deferred.append((best, best_entry))  # its key is full: it keeps waiting
                    continue
                buckets = self._buckets(job, rates)
                spent = [b for b in buckets if not room(self._windows.get(b, ()), rates[b], stamp)]
                if spent:  # its rate is spent for now: it keeps waiting until the window allows
                    wakes.extend(self._window_opens(b, rates[b]) for b in spent)
                    deferred.append((best, best_entry))
                    continue
                if key is not None:
                    self._held[key] = self._held.get(key, 0) + 1
                for bucket in buckets:
                    self._windows[bucket] = record(
                        self._windows.get(bucket, ()), rates[bucket], stamp, 1
                    )
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
                cap = caps[best.name]
                if cap is not None and best.running >= cap:
                    candidates.remove(best)
                elif (bucket := queue_bucket(best.name)) in rates and not room(
                    self._windows[bucket], rates[bucket], stamp
                ):
                    candidates.remove(best)  # the queue's rate is spent for now
                    if best.due:
                        wakes.append(self._window_opens(bucket, rates[bucket]))

            for index, entry in deferred:
                heapq.heappush(index.due, entry)
            next_run_at: datetime | None = None
            for index in indexes:
                soonest = self._future_top(index)
                if soonest is not None and (next_run_at is None or soonest < next_run_at):
                    next_run_at = soonest
            if wakes:  # a job held back by a rate is due again when its window allows
                opens = datetime.fromtimestamp(min(wakes), UTC)
                next_run_at = opens if next_run_at is None else min(next_run_at, opens)
            if taken and (self.max_queue_size or self._settings):
                self._space.notify_all()
        return Claimed(jobs=taken, next_run_at=next_run_at)

    def _buckets(self, job: Job, rates: dict[Bucket, Rate]) -> tuple[Bucket, ...]:
        """The rate windows a start of `job` counts in (their rates added to `rates`)."""
        buckets: tuple[Bucket, ...] = ()
        if (bucket := queue_bucket(job.queue)) in rates:
            buckets = (bucket,)
        if job.rate_limit is not None and job.rate_key is not None:
            bucket = key_bucket(job.rate_key)
            rates.setdefault(bucket, Rate.parse(job.rate_limit))
            buckets += (bucket,)
        return buckets

    def _window_opens(self, bucket: Bucket, rate: Rate) -> float:
        """When a spent window next allows a start (epoch seconds)."""
        until = full_until(self._windows.get(bucket, ()), rate)
        assert until is not None, "a spent window is full"
        return until

    def _cap(self, queue: str, limits: Mapping[str, int]) -> int | None:
        """How many of the queue's jobs may run at once: its stored concurrency, or the
        request's cap when smaller (None: no limit)."""
        stored = self._settings.get(queue)
        limit = None if stored is None else stored.settings.concurrency
        asked = limits.get(queue)
        if asked is None:
            return limit
        return asked if limit is None else min(limit, asked)

    def finish(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Apply outcomes of jobs still owned by their worker and attempt; return the others."""
        for outcome in outcomes:
            if outcome.state not in ATTEMPT_ENDINGS:
                outcome.landing()  # raises JobStateConflict, before any outcome applies
        dropped: list[str] = []
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
        landing = outcome.landing()
        if landing.run_at is not None:
            again = _evolve(
                job,
                state=landing.state,
                run_at=landing.run_at,
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
            state=landing.state,
            attempt=attempt,
            finished_at=landing.finished_at,
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
                        tuple(append_logs(job.logs, report.logs, max_log_lines, job.attempt))
                        if report.logs
                        else job.logs
                    ),
                )
                self._put(updated, job)

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> Heartbeat:
        """Record `worker` alive (keeping an operator's request of it), extend the leases of
        the listed jobs it still owns."""
        cancelled: set[str] = set()
        with self._lock:
            known = self._workers.get(worker.id)
            requested = known.requested if known is not None else None
            self._workers[worker.id] = replace(worker, requested=requested)
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.RUNNING or job.worker_id != worker.id:
                    continue
                self._put(_evolve(job, lease_expires_at=lease_expires_at), job)
                if job.cancel_requested:
                    cancelled.add(job_id)
        return Heartbeat(cancelled, requested)

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
        return self._subscribers.subscribe(callback)

    # recurring jobs --------------------------------------------------------------------------
    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> list[RecurringJob]:
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

    def recurring(self, name: str | None = None) -> list[RecurringJob]:
        """Definitions by name, with the state of each one's last job."""
        with self._lock:
            table = self._recurring.definitions
            chosen = [table[name]] if name in table else [] if name else list(table.values())
            return sorted((self._with_last_state(j) for j in chosen), key=lambda j: j.name)

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions that are due, and the next fire time after them."""
        with self._lock:
            return self._recurring.due(now)

    def fire_recurring(self, fires: Sequence[Fire], now: datetime) -> list[Enqueued | None]:
        """Record and enqueue recurring runs, each tick once."""
        results: list[Enqueued | None] = []
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
