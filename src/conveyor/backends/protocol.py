"""The one protocol every store implements, its verbs named by what happens to a job.

Stores never read the clock: every verb that depends on time takes `now` from the caller, so a
test (or the testing helper) can drive time. All methods are synchronous and thread-safe; the
worker runtime calls blocking stores from a thread (see `Backend.blocking`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from conveyor.model.job import (
    AttemptError,
    Enqueued,
    Job,
    JobState,
    LogLine,
    NewJob,
)
from conveyor.model.lifecycle import Landing, after_attempt
from conveyor.model.recurring import DueRecurring, Fire, RecurringJob


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """A worker asks for up to `limit` due jobs.

    `queues` None means every queue. `queue_limits` caps how many jobs of a queue may run at once
    across all workers (1 = strictly serial): the store counts running jobs itself.
    Claimed jobs become `running`, attempt + 1, owned by `worker_id` until `lease_expires_at`.
    Order: priority descending, then run_at, then id (FIFO within a priority).
    A job whose `concurrency_key` is held by a running job is passed over (it stays waiting),
    and one claim takes at most one job per key. Jobs of paused queues are never claimed.
    """

    worker_id: str
    limit: int
    now: datetime
    lease_expires_at: datetime
    queues: frozenset[str] | None = None
    queue_limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claimed:
    """The jobs claimed, and when the next not-yet-due job in these queues becomes due (a
    store may leave `next_run_at` unset when it filled the whole claim: the worker claims
    again at once then)."""

    jobs: list[Job]
    next_run_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, fenced by (job_id, worker_id, attempt).

    `state` is one of: completed (with `result`), failed (final), scheduled or pending (another
    attempt at `run_at`), cancelled. `error` is appended to the job's errors when given.
    `count_attempt` False gives the attempt back (a graceful shutdown released the job).
    A store applies an outcome only if the job is still running under that worker and attempt;
    otherwise the lease was lost (the job was rescued) and the outcome is dropped.
    """

    job_id: str
    worker_id: str
    attempt: int
    state: JobState
    now: datetime
    result: Any = None
    error: AttemptError | None = None
    run_at: datetime | None = None
    count_attempt: bool = True

    def landing(self) -> Landing:
        """Where the job lands (`model.lifecycle.after_attempt`); JobStateConflict for a
        state an attempt cannot end in."""
        return after_attempt(self.state, self.now, self.run_at)


@dataclass(frozen=True, slots=True)
class Report:
    """Progress and new log lines of a running job, buffered by the worker."""

    job_id: str
    progress: float | None = None
    progress_message: str | None = None
    logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to list, newest first; `page` is 1-based."""

    states: frozenset[JobState] | None = None
    name: str | None = None
    queue: str | None = None
    search: str | None = None  # substring of id or name
    page: int = 1
    per_page: int = 50


#: A listing counts at most this many matching jobs: past it, `Page.total` is this number and
#: `Page.total_exact` is False (an exact count of 100,000 rows costs more than the page).
LIST_COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a job listing. `total` counts the matching jobs up to LIST_COUNT_CAP; when
    more match, it is LIST_COUNT_CAP and `total_exact` is False. The pages themselves are never
    capped: a page past the cap still lists its jobs."""

    jobs: list[Job]
    total: int
    page: int
    per_page: int
    total_exact: bool = True


@dataclass(frozen=True, slots=True)
class Counts:
    """How many jobs are in each state, overall and per queue."""

    by_state: dict[str, int]
    by_queue: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker process, as recorded by its heartbeat."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as the store sees it: waiting and running jobs, and whether it is paused."""

    name: str
    waiting: int  # scheduled + pending
    due: int  # pending, or scheduled with run_at passed
    running: int
    paused: bool
    oldest_due_at: datetime | None  # run_at of the longest-waiting due job


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs that finished in one minute."""

    minute: datetime
    completed: int
    failed: int


@runtime_checkable
class Backend(Protocol):
    """A job store. Each verb is atomic: a job is never seen in two states."""

    #: True when calls may block on I/O: the runtime then calls them from a thread.
    blocking: bool

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    def close(self) -> None:
        """Release connections. Idempotent."""

    # producers -------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` in one transaction, in order; an active unique_key returns the existing
        job with created=False. Raises QueueFull (memory, refuse mode)."""

    # workers ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> Claimed:
        """Atomically take due jobs for a worker (see ClaimRequest)."""

    def finish(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Apply many attempt outcomes in one transaction; returns the ids whose outcome was
        dropped because the worker no longer owned the job."""

    def report(self, reports: Sequence[Report], max_log_lines: int) -> None:
        """Write buffered progress and logs of running jobs, keeping logs bounded."""

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> set[str]:
        """Record the worker alive, extend its running jobs' leases; return the ids among
        `job_ids` whose cancellation was requested."""

    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block up to `timeout` s, returning True early when new work may have arrived from
        another process, False at the timeout. In-process enqueues are announced by
        `subscribe` callbacks instead."""

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from any thread) after jobs become runnable through this object:
        enqueue, retry, finish. Returns a function that unsubscribes."""

    # maintenance -----------------------------------------------------------------------------
    def rescue_expired(self, now: datetime) -> list[str]:
        """Jobs whose lease expired go back to pending (attempt counted, error 'lost' recorded)
        or to failed when no attempt is left; returns their ids."""

    def promote_scheduled(self, now: datetime) -> int:
        """Scheduled jobs that are due become pending; returns how many."""

    def prune(self, completed_before: datetime, failed_before: datetime) -> int:
        """Delete finished jobs: completed, cancelled and skipped that finished before
        `completed_before`, failed ones before `failed_before`. Returns how many."""

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`."""

    # operators -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """One job, or None."""

    def counts(self) -> Counts:
        """Counts by state and by queue."""

    def workers(self) -> list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned."""

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Scheduled/pending: cancelled now. Running: cancel_requested set (the worker
        finishes the cancellation). Finished: unchanged. None if there is no such job."""

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending again with a fresh attempt budget
        (errors kept). Other states: unchanged. None if there is no such job."""

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running."""

    # queues and statistics -------------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause (no worker claims its jobs; running ones finish) or resume a queue."""

    def queues(self, now: datetime) -> builtins.list[QueueInfo]:
        """Every queue that has jobs or is paused, by name."""

    def throughput(self, since: datetime) -> builtins.list[Throughput]:
        """Completed and failed jobs per minute since `since`, oldest first (empty minutes
        left out)."""

    # recurring jobs --------------------------------------------------------------------------
    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> builtins.list[RecurringJob]:
        """Insert or update definitions in one transaction, each carrying the next_fire_at its
        caller computed. A stored next_fire_at is kept while cron and timezone are unchanged
        (and the job stays enabled). `from_code`: keep the stored `enabled` of a definition an
        operator toggled; otherwise the definition's `enabled` wins and marks it toggled."""

    def set_recurring_enabled(
        self, name: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> RecurringJob | None:
        """Enable or disable (an operator's toggle: marks it toggled); enabling sets
        `next_fire_at` so ticks missed while disabled do not fire. None if absent."""

    def delete_recurring(self, name: str) -> bool:
        """Remove a definition (its past jobs stay); False if absent."""

    def recurring(self, name: str | None = None) -> builtins.list[RecurringJob]:
        """Every definition by name (or just `name`), with last_job_state filled in."""

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions with next_fire_at <= now, and the soonest next_fire_at after."""

    def fire_recurring(
        self, fires: Sequence[Fire], now: datetime
    ) -> builtins.list[Enqueued | None]:
        """Record and enqueue runs in one transaction (see Fire); None for a tick another
        scheduler already fired. Updates each definition's last_fire_at (never backwards),
        next_fire_at (never backwards) and last_job_id."""

    def list(self, query: JobFilter) -> Page:
        """A page of jobs, newest first."""
