"""The values the store verbs take and return: claims, outcomes, listings, counts, workers.

Plain frozen dataclasses, shared by every store and by the runtime; the verbs themselves are
the protocols of `backends/protocol.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conveyor.model.job import AttemptError, Job, JobState, LogLine
from conveyor.model.lifecycle import Landing, after_attempt
from conveyor.model.queues import DEFAULTS, QueueSettings
from conveyor.model.workers import WorkerMode, WorkerRequest, pending_mode

__all__ = [
    "LIST_COUNT_CAP",
    "ClaimRequest",
    "Claimed",
    "Counts",
    "Heartbeat",
    "JobFilter",
    "Outcome",
    "Page",
    "QueueInfo",
    "Report",
    "Throughput",
    "WorkerInfo",
]


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """A worker asks for up to `limit` due jobs.

    `queues` None means every queue. The store caps how many jobs of a queue may run at once
    across all workers by the queue's stored `concurrency` (1 = strictly serial; its settings,
    `model/queues.py`), counting running jobs itself, read at each claim so an operator's
    change applies at the next one. `queue_limits` adds caps of the caller's own (the smaller
    of the two wins); the worker passes none, since its app wrote its declarations to the store.
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
    """Which jobs to list, newest first; `page` is 1-based.

    `search` is a case-insensitive substring of the id, the name, the arguments' or the
    metadata's JSON text, or the last error's message (docs/web.md, "Finding jobs", for what
    each store matches); `name` is the exact name, `name_contains` a case-insensitive part of
    it. Time ranges include their lower bound and exclude their upper one; a finished range
    leaves out unfinished jobs. `worker` is the worker running the job (a store forgets it
    when the job stops running); `error_kind` the kind of the job's last error.
    """

    states: frozenset[JobState] | None = None
    name: str | None = None
    queue: str | None = None
    search: str | None = None
    page: int = 1
    per_page: int = 50
    name_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    worker: str | None = None
    error_kind: str | None = None

    def matches(self, job: Job, searched: str) -> bool:
        """Whether `job` passes every filter but the page; `searched` is the job's searched
        text, lowercased (the memory store's rule, which the SQL stores' queries follow)."""
        last = job.last_error
        return (
            (self.states is None or job.state in self.states)
            and (self.name is None or job.name == self.name)
            and (self.queue is None or job.queue == self.queue)
            and (self.search is None or self.search.lower() in searched)
            and (self.name_contains is None or self.name_contains.lower() in job.name.lower())
            and _within(job.created_at, self.created_after, self.created_before)
            and (
                (self.finished_after is None and self.finished_before is None)
                or (
                    job.finished_at is not None
                    and _within(job.finished_at, self.finished_after, self.finished_before)
                )
            )
            and (self.worker is None or job.worker_id == self.worker)
            and (self.error_kind is None or (last is not None and last.kind == self.error_kind))
        )


def _within(at: datetime, low: datetime | None, high: datetime | None) -> bool:
    return (low is None or at >= low) and (high is None or at < high)


#: A claim of all queues that must leave some out (paused, limited) reads the queues holding
#: waiting jobs one by one when there are at most this many, rather than walking the claim
#: order of all of them past the left-out ones' backlog.
SPREAD_MAX = 32

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
    #: about how many jobs match when `total_exact` is False and the store can tell (the
    #: PostgreSQL planner's estimate, never below the cap); None otherwise
    estimate: int | None = None


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
    #: what the worker reported doing at that heartbeat (`model/workers.py`)
    mode: WorkerMode = "running"
    #: what an operator asked of it (None: nothing); a heartbeat never writes it
    requested: WorkerRequest | None = None

    @property
    def pending(self) -> WorkerMode | None:
        """The mode an operator asked for that the worker has not reported yet."""
        return pending_mode(self.mode, self.requested)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a heartbeat hands back to the worker: its running jobs whose cancellation was
    requested, and what an operator asks of it (None: run as usual), which it follows."""

    cancel_requested: set[str] = field(default_factory=set)
    requested: WorkerRequest | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as the store sees it: waiting and running jobs, whether it is paused, its stored
    settings and which of them an operator set, and how many due jobs a key's limit or a rate
    holds back now (`model/rates.py`: `held_back`)."""

    name: str
    waiting: int  # scheduled + pending
    due: int  # pending, or scheduled with run_at passed
    running: int
    paused: bool
    oldest_due_at: datetime | None  # run_at of the longest-waiting due job
    settings: QueueSettings = DEFAULTS
    operator_set: frozenset[str] = frozenset()
    #: due jobs passed over because their concurrency key runs as many as its limit allows
    held_by_key: int = 0
    #: due jobs passed over because their queue's or their own rate window is spent now
    held_by_rate: int = 0


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs that finished in one minute."""

    minute: datetime
    completed: int
    failed: int
