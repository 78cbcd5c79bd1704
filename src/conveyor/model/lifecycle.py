"""Where a job goes next: the lifecycle rules, as pure functions every store calls.

(`waiting_state`, scheduled or pending by run_at, sits beside JobState in `model/job.py`, which
needs it to store a new job; it is re-exported here.)

A store persists what these functions decide; it never decides itself. So the memory, SQLite and
PostgreSQL stores cannot drift apart on what a retry, a rescued lease or a finished attempt
becomes (the contract suite checks that they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from conveyor.errors import JobStateConflict
from conveyor.model.job import TRANSITIONS, AttemptError, JobState, waiting_state

__all__ = [
    "ATTEMPT_ENDINGS",
    "RETRYABLE_STATES",
    "Columns",
    "Landing",
    "LostLease",
    "after_attempt",
    "after_lost_lease",
    "waiting_state",
]

#: The states an attempt can end in (what a worker may report).
ATTEMPT_ENDINGS = TRANSITIONS[JobState.RUNNING]
#: The states an operator's retry takes back to pending.
RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.CANCELLED})


class Landing(NamedTuple):
    """Where a job lands when it leaves `running`.

    Exactly one of `run_at` (another attempt follows: scheduled or pending) and `finished_at`
    (the job is done: completed, failed or cancelled) is set. A named tuple, not a frozen
    dataclass: one is made per finished attempt, and a frozen dataclass costs three times as
    much to build.
    """

    state: JobState
    run_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def again(self) -> bool:
        """Whether another attempt follows."""
        return self.run_at is not None


def after_attempt(state: JobState, now: datetime, run_at: datetime | None = None) -> Landing:
    """Where a job lands when its attempt ends as `state` at `now`. Another attempt (the
    worker said scheduled or pending) is due at `run_at` (default now) and is scheduled or
    pending by that time, whatever the worker said. Raises JobStateConflict for a state an
    attempt cannot end in."""
    if state in _FINAL_ENDINGS:  # the usual case first; built as a plain tuple, once per job
        return _landing(Landing, (state, None, now))
    if state not in ATTEMPT_ENDINGS:
        raise JobStateConflict(
            f"an attempt cannot end in state {state!r}: use one of "
            f"{', '.join(sorted(ATTEMPT_ENDINGS))}"
        )
    due = run_at or now
    return Landing(waiting_state(due, now), run_at=due)


_FINAL_ENDINGS = ATTEMPT_ENDINGS - {JobState.SCHEDULED, JobState.PENDING}
_landing = tuple.__new__  # Landing's fields in order, without its Python-level __new__


class Columns(Protocol):
    """A stored job's fields by column name (a database row of any driver)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class LostLease:
    """A running job whose worker stopped heartbeating: what the rescue needs to know of it."""

    attempt: int
    max_attempts: int
    cancel_requested: bool
    worker_id: str | None
    lease_expires_at: datetime

    @classmethod
    def of(cls, fields: Columns, lease_expires_at: datetime) -> LostLease:
        """From a job's stored fields (a row, by column name); `lease_expires_at` decoded by
        the store, as each keeps time its own way."""
        return cls(
            fields["attempt"],
            fields["max_attempts"],
            bool(fields["cancel_requested"]),
            fields["worker_id"],
            lease_expires_at,
        )


def after_lost_lease(job: LostLease, now: datetime) -> tuple[Landing, AttemptError]:
    """Where a job whose lease expired lands when rescued at `now`, and the error of kind
    `lost` recorded for its attempt (which counts): cancelled when cancellation was requested,
    pending again while attempts are left, failed otherwise."""
    if job.cancel_requested:
        landing = Landing(JobState.CANCELLED, finished_at=now)
        fate = "it was cancelled as requested"
    elif job.attempt < job.max_attempts:
        landing, fate = Landing(JobState.PENDING, run_at=now), "it was put back to run again"
    else:
        landing = Landing(JobState.FAILED, finished_at=now)
        fate = f"it failed, having used all {job.max_attempts} attempts"
    message = (
        f"worker {job.worker_id} stopped heartbeating and its lease expired at "
        f"{job.lease_expires_at.isoformat()}, so the job was rescued: {fate}"
    )
    return landing, AttemptError(attempt=job.attempt, message=message, at=now, kind="lost")
