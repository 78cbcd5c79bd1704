"""What a job store can do, as small protocols named by who calls them.

Every store implements `Backend`: the required protocols together (lifecycle, producing, the
worker's verbs, maintenance, the operator's verbs, queues, recurring jobs). A caller that needs
only some of them types its store by those (the worker loop takes a `WorkerStore`, the
scheduler a `RecurringStore`), so a new verb lands where its callers are.

Optional capabilities (`TransactionalEnqueue`, `Migrating`, `Bounded`) are protocols a store
may also implement; callers check them with `isinstance` (they are `runtime_checkable`), and
the contract suite skips a capability's tests for a store that does not declare it.

Stores never read the clock: every verb that depends on time takes `now` from the caller, so a
test (or the testing helper) can drive time. All methods are synchronous and thread-safe; the
worker runtime calls blocking stores from a thread (see `StoreLifecycle.blocking`). The values
the verbs take and return live in `backends/records.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from conveyor.backends.records import (
    Claimed,
    ClaimRequest,
    Counts,
    Heartbeat,
    JobFilter,
    Outcome,
    Page,
    QueueInfo,
    Report,
    Throughput,
    WorkerInfo,
)
from conveyor.model.history import HistoryPoint
from conveyor.model.job import Enqueued, Job, JobState, NewJob
from conveyor.model.queues import QueueChange, StoredQueue
from conveyor.model.recurring import DueRecurring, Fire, RecurringJob
from conveyor.model.workers import WorkerAction
from conveyor.model.workflow import StoredWorkflow, WorkflowPage

__all__ = [
    "Backend",
    "Bounded",
    "MaintenanceStore",
    "Migrating",
    "OperatorStore",
    "Producing",
    "QueueStore",
    "RecurringStore",
    "StoreLifecycle",
    "TransactionalEnqueue",
    "WorkerStore",
    "WorkflowStore",
]


# required --------------------------------------------------------------------------------------
@runtime_checkable
class StoreLifecycle(Protocol):
    """Opening and closing a store."""

    #: True when calls may block on I/O: the runtime then calls them from a thread.
    blocking: bool

    def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    def close(self) -> None:
        """Release connections. Idempotent."""


@runtime_checkable
class Producing(Protocol):
    """What a producer (a web process, a script) needs: storing new jobs."""

    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` in one transaction, in order; an active unique_key returns the existing
        job with created=False. All or nothing: a queue whose stored `max_size` the new jobs
        would pass waits up to the store's `queue_full_timeout` for room (`when_full="wait"`)
        or refuses the batch at once; QueueFull names the queue and its bound (a `Bounded`
        store's cap on all waiting jobs refuses likewise)."""


@runtime_checkable
class WorkerStore(Protocol):
    """The worker's verbs: take jobs, report on them, end their attempts, stay alive."""

    blocking: bool

    def claim(self, request: ClaimRequest) -> Claimed:
        """Atomically take due jobs for a worker (see ClaimRequest)."""

    def finish(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Apply many attempt outcomes in one transaction; returns the ids whose outcome was
        dropped because the worker no longer owned the job. JobStateConflict, before any
        applies, for an outcome whose state no attempt can end in."""

    def report(self, reports: Sequence[Report], max_log_lines: int) -> None:
        """Write buffered progress and logs of running jobs, keeping logs bounded."""

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> Heartbeat:
        """Record the worker alive (its fields and `mode`; never `requested`) and extend its
        running jobs' leases, in one round trip; return the ids among `job_ids` whose
        cancellation was requested and the operator's request of the worker."""

    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block up to `timeout` s, returning True early when new work may have arrived from
        another process, False at the timeout. In-process enqueues are announced by
        `subscribe` callbacks instead."""

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from any thread) after jobs become runnable through this object:
        enqueue, retry, finish. Returns a function that unsubscribes."""


@runtime_checkable
class MaintenanceStore(Protocol):
    """The periodic chores: rescue lost leases, promote due jobs, prune old rows."""

    def rescue_expired(self, now: datetime) -> list[str]:
        """Running jobs whose lease expired land where `model.lifecycle.after_lost_lease`
        says (pending again, failed, or cancelled; error `lost` recorded); returns their ids."""

    def promote_scheduled(self, now: datetime) -> int:
        """Scheduled jobs that are due become pending; returns how many."""

    def prune(self, completed_before: datetime, failed_before: datetime) -> int:
        """Delete finished jobs: completed, cancelled and skipped that finished before
        `completed_before`, failed ones before `failed_before`. Returns how many."""

    def count_prunable(
        self, completed_before: datetime, failed_before: datetime
    ) -> dict[JobState, int]:
        """How many jobs `prune` with the same cut-offs would delete now, by state (states
        with none left out): what `conveyor jobs purge --dry-run` shows."""

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`."""

    def prune_rate_windows(self, started_before: datetime) -> int:
        """Forget rate windows (`model/rates.py`) whose latest start is older than
        `started_before` (the sweeper passes an hour ago, the longest window: such a window
        allows its whole rate, as one with no row does). Returns how many."""


@runtime_checkable
class OperatorStore(Protocol):
    """The operator's verbs: look at jobs and workers, cancel, retry, delete."""

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""

    def list_jobs(self, query: JobFilter) -> Page:
        """A page of jobs, newest first."""

    def counts(self) -> Counts:
        """Counts by state and by queue."""

    def workers(self) -> list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned."""

    def request_worker(
        self, worker_id: str, action: WorkerAction, seen_after: datetime
    ) -> WorkerInfo:
        """Record an operator's `action` (quiet, stop, resume) for a worker, by
        `model.workers.request_after`, in one transaction; its next heartbeat hands it back.
        Returns the worker as stored now. WorkerNotFound for a worker not stored or last seen
        before `seen_after` (gone); WorkerStateConflict for quieting or resuming a stopping
        worker."""

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Scheduled/pending: cancelled now. Running: cancel_requested set (the worker
        finishes the cancellation). Finished: unchanged. None if there is no such job."""

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending again with a fresh attempt budget
        (errors kept). Other states: unchanged. None if there is no such job."""

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running. Jobs waiting on an
        unfinished one are not decided: callers cancel it first (`app.jobs.delete` does)."""

    def run_now(self, job_id: str, now: datetime) -> Job | None:
        """A scheduled job becomes pending, due at `now` (or its earlier run_at), with its
        attempt and errors kept. Other states: unchanged. None if there is no such job."""


@runtime_checkable
class QueueStore(Protocol):
    """Queues as a whole: pausing them, their settings, their depth, the throughput."""

    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause (no worker claims its jobs; running ones finish) or resume a queue."""

    def change_queue_settings(self, name: str, change: QueueChange, now: datetime) -> StoredQueue:
        """Apply `change` to the queue's stored settings by `model.queues.merge`, in one
        transaction; returns what is stored now. Claims and enqueues from then on honour it
        (its `concurrency`, its `max_size` and `when_full`), in every process."""

    def queues(self, now: datetime) -> list[QueueInfo]:
        """Every queue that has jobs, is paused or has stored settings, by name."""

    def throughput(self, since: datetime) -> list[Throughput]:
        """Completed and failed jobs per minute since `since`, oldest first (empty minutes
        left out)."""


@runtime_checkable
class RecurringStore(Protocol):
    """Recurring (CRON) definitions and their fires, for the scheduler and the operator."""

    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> list[RecurringJob]:
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

    def recurring(self, name: str | None = None) -> list[RecurringJob]:
        """Every definition by name (or just `name`), with last_job_state filled in."""

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions with next_fire_at <= now, and the soonest next_fire_at after."""

    def fire_recurring(self, fires: Sequence[Fire], now: datetime) -> list[Enqueued | None]:
        """Record and enqueue runs in one transaction (see Fire); None for a tick another
        scheduler already fired. Updates each definition's last_fire_at (never backwards),
        next_fire_at (never backwards) and last_job_id."""


@runtime_checkable
class HistoryStore(Protocol):
    """Finished jobs rolled up per queue and minute (`model/history.py`), kept after the jobs
    themselves are pruned. One watermark in the store says up to where jobs are rolled up."""

    def roll_up_history(self, until: datetime) -> datetime | None:
        """Add jobs that finished from the watermark up to `until` (a whole minute) into the
        per-minute rows and move the watermark there, in one transaction: callers at once
        never count a job twice. Returns the watermark now (None before any roll-up)."""

    def history(
        self, since: datetime, until: datetime, step: timedelta, queue: str | None = None
    ) -> list[HistoryPoint]:
        """Points of `step` (a whole number of minutes, aligned on the epoch) from `since` to
        `until`, oldest first, empty ones left out: rolled-up minutes before the watermark,
        and jobs still stored that finished after it, read in one snapshot."""

    def prune_history(self, before: datetime) -> int:
        """Forget rolled-up minutes before `before`; returns how many rows."""


@runtime_checkable
class WorkflowStore(Protocol):
    """Workflows: jobs that wait on other jobs (`NewJob.after`), and named sets of them.

    Any enqueue may carry `after`: the job is stored `waiting`, with an open edge to each
    parent, and every verb that ends a job (finish, rescue, cancel) decides its dependents in
    the same transaction with `model.dependencies.settle`; retry re-arms them with `rearm`.
    Each `after` id must be stored already or come earlier in the same batch (so no cycle can
    be stored); otherwise InvalidWorkflow, and nothing of the batch is stored."""

    def enqueue_workflow(
        self, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Store a workflow and its steps (jobs carrying its id) in one transaction."""

    def workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """A workflow with its steps and edges, or None."""

    def list_workflows(self, page: int, per_page: int, name: str | None = None) -> WorkflowPage:
        """Workflows newest first (optionally of one name), their steps counted by state."""

    def cancel_workflow(self, workflow_id: str, now: datetime) -> StoredWorkflow | None:
        """Cancel every unfinished step (running ones are asked to stop); None if absent."""

    def parents(self, job_id: str) -> list[Job]:
        """The jobs `job_id` was enqueued after, in the order given (pruned ones left out)."""


@runtime_checkable
class Backend(
    StoreLifecycle,
    Producing,
    WorkerStore,
    MaintenanceStore,
    OperatorStore,
    QueueStore,
    RecurringStore,
    WorkflowStore,
    HistoryStore,
    Protocol,
):
    """A job store: every required protocol. Each verb is atomic: a job is never seen in two
    states."""


# optional --------------------------------------------------------------------------------------
@runtime_checkable
class TransactionalEnqueue(Protocol):
    """A store that can enqueue inside the caller's own database transaction."""

    def enqueue_in(self, connection: Any, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` on the caller's `connection`: they exist only once its transaction
        commits, and a rollback leaves none."""

    async def enqueue_in_async(
        self, connection: Any, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """`enqueue_in` on the caller's async connection."""

    def enqueue_workflow_in(
        self, connection: Any, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """`WorkflowStore.enqueue_workflow` on the caller's `connection` and transaction."""


@runtime_checkable
class Migrating(Protocol):
    """A store with a versioned schema that can be migrated on demand."""

    def migrate(self) -> list[int]:
        """Apply missing migrations now, whether or not the store is open; returns the
        versions applied."""

    def schema_version(self) -> int | None:
        """The latest migration applied (None before the first)."""


@runtime_checkable
class Bounded(Protocol):
    """A store that caps how many jobs may wait in all its queues together (the memory store,
    which holds them in memory): an enqueue past the cap waits or is refused. Per-queue
    bounds (a queue's stored `max_size`) are every store's, through `Producing.enqueue`."""

    max_queue_size: int  # 0: no cap
    queue_full: Literal["wait", "refuse"]

    @property
    def enqueue_may_wait(self) -> bool:
        """Whether `enqueue` may block waiting for room (the store is otherwise not blocking):
        async producers then call it from a thread."""
