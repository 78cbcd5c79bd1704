"""The frozen job record, its states and the table of allowed transitions."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from conveyor.errors import JobStateConflict

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    #: a job's result type; a bare `Job` is `Job[Any]` (typed by JobHandle[R].wait())
    ResultT = DefaultedTypeVar("ResultT", default=Any)
else:
    ResultT = TypeVar("ResultT")


class JobState(StrEnum):
    """Where a job is in its life."""

    WAITING = "waiting"  # a workflow step whose parents have not all completed
    SCHEDULED = "scheduled"  # run_at is in the future (a delay, or a retry's wait)
    PENDING = "pending"  # due, waiting for a worker
    RUNNING = "running"  # claimed by a worker holding a lease
    COMPLETED = "completed"
    FAILED = "failed"  # attempts exhausted, or the job raised Fail
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a recurring run whose previous run was still going


ACTIVE_STATES = frozenset(
    {JobState.WAITING, JobState.SCHEDULED, JobState.PENDING, JobState.RUNNING}
)
#: The states of a job in a queue, claimable once due (a waiting step is not yet in one).
QUEUED_STATES = frozenset({JobState.SCHEDULED, JobState.PENDING})
FINISHED_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.SKIPPED}
)

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # released when its last parent completes (scheduled if it was given a later run_at),
    # or cancelled with its parent
    JobState.WAITING: frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.CANCELLED}),
    JobState.SCHEDULED: frozenset({JobState.PENDING, JobState.RUNNING, JobState.CANCELLED}),
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.SCHEDULED}),
    JobState.RUNNING: frozenset(
        {
            JobState.COMPLETED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.SCHEDULED,  # retry after a delay
            JobState.PENDING,  # released at shutdown, or rescued after its lease expired
        }
    ),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset({JobState.PENDING}),  # manual retry
    # manual retry; a step cancelled with its parent waits again when the parent is retried
    JobState.CANCELLED: frozenset({JobState.PENDING, JobState.WAITING}),
    JobState.SKIPPED: frozenset(),
}


def can_transition(source: JobState, target: JobState) -> bool:
    """Whether a job may move from `source` to `target`."""
    return target in TRANSITIONS[source]


def waiting_state(run_at: datetime, now: datetime) -> JobState:
    """A job waiting to run is scheduled until `run_at`, pending from then on."""
    return JobState.SCHEDULED if run_at > now else JobState.PENDING


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


_id_lock = threading.Lock()
# random is reseeded in forked children, and ids need uniqueness, not secrecy
_random_bits = random.getrandbits
_TAIL_VARIANT = 0b10 << 62  # RFC 9562 variant bits on top of the 62-bit counter
_TAIL_LAST = _TAIL_VARIANT | (1 << 62) - 1


_time_ns = time.time_ns
# The millisecond of the last id, its formatted prefix (time, version, 12 random bits), and
# the 64-bit tail last used in it.
_id_ms = -1
_id_prefix = ""
_id_tail = 0


def _reset_id_clock() -> None:
    global _id_ms
    _id_ms = -1  # a forked child must not continue its parent's counter


os.register_at_fork(after_in_child=_reset_id_clock)


def new_job_id() -> str:
    """A UUIDv7-style id: sorts by creation time, and strictly increases within a process
    (so jobs enqueued in the same millisecond keep their order).

    Each new millisecond draws 74 random bits; later ids in that millisecond (or after the
    clock stepped back) add one to the tail, so only the tail needs formatting then."""
    global _id_ms, _id_prefix, _id_tail
    ms = _time_ns() // 1_000_000
    with _id_lock:
        if ms > _id_ms or _id_tail >= _TAIL_LAST:
            ms = max(ms, _id_ms + 1)  # on tail overflow, borrow the next millisecond
            _id_ms = ms
            _id_prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{_random_bits(12):03x}-"
            _id_tail = _TAIL_VARIANT | _random_bits(62)
        else:
            _id_tail += 1
        prefix, tail = _id_prefix, f"{_id_tail:016x}"
    return f"{prefix}{tail[:4]}-{tail[4:]}"


@dataclass(frozen=True, slots=True)
class AttemptError:
    """Why one attempt did not succeed."""

    attempt: int
    message: str
    traceback: str = ""
    at: datetime = field(default_factory=utcnow)
    kind: str = "error"  # error | timeout | lost (lease expired) | unknown_job | result | malformed


@dataclass(frozen=True, slots=True)
class LogLine:
    """One timestamped line a job wrote with ctx.log(), during attempt `attempt` (0: not
    known, for lines stored before attempts were recorded, or written outside an attempt)."""

    at: datetime
    message: str
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Job(Generic[ResultT]):
    """A job as stored: an immutable snapshot, times always timezone-aware (UTC). `result`
    is what the job returned, once completed (else None)."""

    id: str
    name: str
    queue: str = "default"
    args: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    state: JobState = JobState.PENDING
    attempt: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    run_at: datetime = field(default_factory=utcnow)
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float = 0.0
    progress_message: str | None = None
    logs: tuple[LogLine, ...] = ()
    result: ResultT = None  # type: ignore[assignment]
    errors: tuple[AttemptError, ...] = ()
    unique_key: str | None = None
    recurring_name: str | None = None
    concurrency_key: str | None = None  # jobs sharing a key never run at the same time
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    workflow_id: str | None = None  # the workflow this job is a step of
    step: str | None = None  # its step name in that workflow (unique within it)
    #: at most this many jobs of its concurrency_key run at once, fleet-wide (model/keys.py)
    key_concurrency: int = 1
    #: at most this many of the jobs sharing its rate_key start in any window ("10/s")
    rate_limit: str | None = None
    rate_key: str | None = None  # the window its start counts in (model/rates.py)

    @property
    def is_finished(self) -> bool:
        """Whether the job has reached a final state."""
        return self.state in FINISHED_STATES

    @property
    def last_error(self) -> AttemptError | None:
        """The error of the latest failed attempt, if any."""
        return self.errors[-1] if self.errors else None


@dataclass(slots=True)
class NewJob:
    """What a producer asks the store to keep: a job before it is stored.

    Not frozen, unlike Job: a request is a builder the store copies into a frozen Job, and
    a frozen dataclass's __init__ costs three times as much (docs/architecture.md)."""

    name: str
    queue: str = "default"
    args: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    run_at: datetime | None = None  # None: due now
    unique_key: str | None = None
    recurring_name: str | None = None
    concurrency_key: str | None = None
    #: how many jobs of `concurrency_key` may run at once (1: one at a time)
    key_concurrency: int = 1
    #: at most this many starts of the jobs sharing `rate_key` in any window ("10/s")
    rate_limit: str | None = None
    rate_key: str | None = None
    state: JobState | None = None  # None: scheduled or pending by run_at; SKIPPED for a skip
    logs: tuple[LogLine, ...] = ()
    id: str = field(default_factory=new_job_id)
    #: ids of the jobs this one waits on: it is `waiting` until they have all completed
    after: tuple[str, ...] = ()
    #: when a parent fails for good or is cancelled: "cancel" this job too, or "run" it anyway
    on_parent_failure: str = "cancel"
    workflow_id: str | None = None
    step: str | None = None

    def to_job(self, now: datetime) -> Job:
        """The record this request becomes when stored at `now`."""
        run_at = self.run_at or now
        # waiting_state's rule, inline: this runs once per enqueued job
        state = self.state or (
            JobState.WAITING
            if self.after
            else JobState.SCHEDULED
            if run_at > now
            else JobState.PENDING
        )
        return job_from_values(
            (
                self.id,
                self.name,
                self.queue,
                self.args,
                self.metadata,
                self.priority,
                state,
                0,  # attempt
                self.max_attempts,
                self.timeout,
                run_at,
                now,  # created_at
                None,  # started_at
                now if state in FINISHED_STATES else None,  # finished_at
                0.0,  # progress
                None,  # progress_message
                self.logs,
                None,  # result
                (),  # errors
                self.unique_key,
                self.recurring_name,
                self.concurrency_key,
                None,  # worker_id
                None,  # lease_expires_at
                False,  # cancel_requested
                self.workflow_id,
                self.step,
                self.key_concurrency,
                self.rate_limit,
                self.rate_key,
            )
        )


# A frozen dataclass's __init__ sets each field through object.__setattr__, which made building
# a Job cost twice as much as setting its slots directly; once per enqueued job (and twice per
# run, in the memory store), that matters. Job has no __post_init__ whose checks this skips.
JOB_FIELDS = tuple(f.name for f in fields(Job))
SLOT_SETTERS = tuple(getattr(Job, name).__set__ for name in JOB_FIELDS)


def job_from_values(values: Iterable[Any]) -> Job:
    """A Job from the values of all its fields, in JOB_FIELDS order (strict: all of them)."""
    job = object.__new__(Job)
    for set_slot, value in zip(SLOT_SETTERS, values, strict=True):
        set_slot(job, value)
    return job


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The answer to one enqueue: the stored job, and whether this call created it.

    `created` is False when a job with the same unique_key was already scheduled, pending or
    running: nothing new was stored and `job` is that existing job.
    """

    job: Job
    created: bool


def with_state(job: Job, state: JobState, **changes: Any) -> Job:
    """A copy of `job` in `state`, refusing a transition the table does not allow."""
    if not can_transition(job.state, state):
        raise JobStateConflict(f"a {job.state} job cannot become {state}")
    return replace(job, state=state, **changes)
