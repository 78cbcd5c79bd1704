"""The JSON shapes of the REST API (pydantic models, so the OpenAPI schema is exact)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.backends.records import Counts, Throughput, WorkerInfo
from conveyor.model.filters import ERROR_KINDS
from conveyor.model.history import RUN_BOUNDS, HistoryPoint, HistoryRange
from conveyor.model.job import AttemptError, Job, JobState, LogLine
from conveyor.model.recurring import RecurringJob
from conveyor.model.validation import (
    MAX_HORIZON,
    MAX_KEY_CONCURRENCY,
    MAX_NESTING,
    MAX_QUEUE_CONCURRENCY,
    MAX_QUEUE_SIZE,
    NAME_MAX,
    PRIORITY_MAX,
    PRIORITY_MIN,
    QUEUE_NAME_PATTERN,
    RATE_PATTERN,
    UNIQUE_KEY_MAX,
)
from conveyor.model.workers import WorkerMode, WorkerRequest
from conveyor.services import QueueStatus
from conveyor.web.runtimes import Runtime, Runtimes

MAX_SELECTED = 200  # job ids one bulk call may name (web/bulk.py)
PREVIEW_CHARS = 200  # args and messages in lists are cut to this many characters
JOB_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_STATE = f"({'|'.join(state.value for state in JobState)})"
STATES_PATTERN = rf"^{_STATE}(,{_STATE})*$"  # one state, or several separated by commas
NAME_PATTERN = QUEUE_NAME_PATTERN  # queue and recurring names in paths
WORKER_ID_PATTERN = r"^[^\x00/]{1,300}$"  # host:pid:suffix; hosts name themselves
TIME_HELP = "ISO 8601 date or time (UTC unless it has an offset), or a duration before now: 2h"
ERROR_KIND_HELP = "the last error's kind: " + ", ".join(ERROR_KINDS)
NO_NUL = r"^[^\x00]*$"  # text the stores can hold (lone surrogates cannot come from JSON text)
StoredText = Annotated[str, Field(pattern=NO_NUL)]


def truncate(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(value: Any) -> str:
    """A short JSON rendering of a value, for lists."""
    return truncate(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True))


class ErrorOut(BaseModel):
    """Why a request was refused."""

    error: str = Field(description="what went wrong and what to do")
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="per-field problems of a malformed request"
    )


class LogLineOut(BaseModel):
    """One line a job logged."""

    at: datetime
    message: str
    attempt: int = Field(0, description="the attempt that wrote it (0: not known)")

    @classmethod
    def of(cls, line: LogLine) -> LogLineOut:
        """From the model."""
        return cls(at=line.at, message=line.message, attempt=line.attempt)


class AttemptErrorOut(BaseModel):
    """Why one attempt failed."""

    attempt: int
    kind: str
    message: str
    traceback: str
    at: datetime

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, error: AttemptError) -> AttemptErrorOut:
        """From the model (same field names)."""
        return cls.model_validate(error)


class JobSummary(BaseModel):
    """A job in a list: large values are cut (see the detail for everything)."""

    id: str
    name: str
    queue: str
    state: str
    priority: int
    attempt: int
    max_attempts: int
    progress: float
    progress_message: str | None
    args_preview: str
    last_error: str | None
    recurring_name: str | None
    created_at: datetime
    run_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="finished (or now) minus started")
    wait_seconds: float | None = Field(description="started minus due")

    @classmethod
    def of(cls, job: Job, now: datetime | None = None) -> JobSummary:
        """From the model; `now` measures a running job's duration so far (without it a
        running job has none)."""
        error = job.last_error
        duration, wait = _durations(job, now)
        return cls(
            id=job.id,
            name=job.name,
            queue=job.queue,
            state=job.state.value,
            priority=job.priority,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            progress=job.progress,
            progress_message=truncate(job.progress_message) if job.progress_message else None,
            args_preview=preview(job.args),
            last_error=truncate(error.message) if error else None,
            recurring_name=job.recurring_name,
            created_at=job.created_at,
            run_at=job.run_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_seconds=duration,
            wait_seconds=wait,
        )


def _durations(job: Job, now: datetime | None) -> tuple[float | None, float | None]:
    """How long the job has run (to `now` while it runs) and waited once due, in seconds."""
    if job.started_at is None:
        return None, None
    wait = max(0.0, (job.started_at - job.run_at) / timedelta(seconds=1))
    end = job.finished_at or now
    return (None if end is None else (end - job.started_at) / timedelta(seconds=1)), wait


class JobDetail(BaseModel):
    """Everything about one job."""

    id: str
    name: str
    queue: str
    state: str
    priority: int
    attempt: int
    max_attempts: int
    timeout: float | None
    progress: float
    progress_message: str | None
    args: dict[str, Any]
    metadata: dict[str, str]
    result: Any = None
    logs: list[LogLineOut]
    errors: list[AttemptErrorOut]
    unique_key: str | None
    recurring_name: str | None
    concurrency_key: str | None
    key_concurrency: int = 1
    rate_limit: str | None = None
    rate_key: str | None = None
    workflow_id: str | None = None
    step: str | None = None
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    run_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_expires_at: datetime | None
    duration_seconds: float | None = Field(description="finished (or now) minus started")
    wait_seconds: float | None = Field(description="started minus due")

    @classmethod
    def of(cls, job: Job, now: datetime) -> JobDetail:
        """From the model; `now` measures a running job's duration so far."""
        duration, wait = _durations(job, now)
        return cls(
            id=job.id,
            name=job.name,
            queue=job.queue,
            state=job.state.value,
            priority=job.priority,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            timeout=job.timeout,
            progress=job.progress,
            progress_message=job.progress_message,
            args=job.args,
            metadata=job.metadata,
            result=job.result,
            logs=[LogLineOut.of(line) for line in job.logs],
            errors=[AttemptErrorOut.of(error) for error in job.errors],
            unique_key=job.unique_key,
            recurring_name=job.recurring_name,
            concurrency_key=job.concurrency_key,
            key_concurrency=job.key_concurrency,
            rate_limit=job.rate_limit,
            rate_key=job.rate_key,
            workflow_id=job.workflow_id,
            step=job.step,
            worker_id=job.worker_id,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            run_at=job.run_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            lease_expires_at=job.lease_expires_at,
            duration_seconds=duration,
            wait_seconds=wait,
        )


class JobPage(BaseModel):
    """One page of a job list, newest first."""

    jobs: list[JobSummary]
    total: int = Field(description="matching jobs, counted up to 10,000")
    total_exact: bool = Field(
        description="false when more than 10,000 jobs match: total is then 10,000 and pages "
        "counts those (later pages still list jobs)"
    )
    page: int
    per_page: int
    pages: int
    estimate: int | None = Field(
        default=None,
        description="when total_exact is false, about how many jobs match, if the store can "
        "tell (PostgreSQL: the planner's estimate); null otherwise",
    )


class EnqueueIn(BaseModel):
    """A job to enqueue by its registered or declared name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=NO_NUL)
    args: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "the job's arguments: JSON values, integers within 64 bits, nested at most "
            f"{MAX_NESTING} deep, no NUL character in any text (docs/guide.md)"
        ),
    )
    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    priority: int | None = Field(default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    delay: float | None = Field(
        default=None, ge=0, le=MAX_HORIZON.total_seconds(), allow_inf_nan=False
    )
    unique_key: str | None = Field(
        default=None, min_length=1, max_length=UNIQUE_KEY_MAX, pattern=NO_NUL
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=UNIQUE_KEY_MAX,
        pattern=NO_NUL,
        description=(
            "jobs with the same key never run at once; {name} is replaced by that argument, "
            "as in 'tenant:{tenant_id}' (docs/guide.md, concurrency keys)"
        ),
    )
    key_concurrency: int | None = Field(
        default=None, ge=1, le=MAX_KEY_CONCURRENCY,
        description="how many jobs of one concurrency_key may run at once, fleet-wide "
        "(default 1; needs a concurrency_key: docs/flow-control.md)",
    )  # fmt: skip
    rate_limit: str | None = Field(
        default=None, pattern=RATE_PATTERN,
        description="at most N starts in any second, minute or hour ('10/s', '100/m', "
        "'1000/h') of the jobs sharing rate_key, fleet-wide",
    )  # fmt: skip
    rate_key: str | None = Field(
        default=None, min_length=1, max_length=UNIQUE_KEY_MAX, pattern=NO_NUL,
        description="the window a rate_limit counts in, {name} replaced by that argument "
        "(default: the job's name); needs a rate_limit",
    )  # fmt: skip
    metadata: (
        dict[Annotated[str, Field(pattern=NO_NUL)], Annotated[str, Field(pattern=NO_NUL)]] | None
    ) = None

    @field_validator("priority", "delay", "key_concurrency", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true/false are not numbers here
            raise ValueError("must be a number, not true or false")
        return value


#: EnqueueIn's fields that are per-call job options (app.enqueue's keywords), when given.
ENQUEUE_OPTIONS = (
    "queue", "priority", "delay", "unique_key", "concurrency_key", "key_concurrency",
    "rate_limit", "rate_key",
)  # fmt: skip


class EnqueueOut(BaseModel):
    """The enqueued job, and whether this call created it (False: its unique_key matched)."""

    created: bool
    job: JobDetail


class BulkIn(BaseModel):
    """Which jobs a bulk action applies to (all filters combine; none: every eligible job)."""

    model_config = ConfigDict(extra="forbid")

    state: str | None = Field(
        default=None, max_length=200, pattern=STATES_PATTERN, description="e.g. failed,cancelled"
    )
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    queue: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    q: str | None = Field(
        default=None,
        max_length=200,
        pattern=NO_NUL,
        description="text in the id, name, arguments, metadata or last error message",
    )
    name_contains: str | None = Field(default=None, max_length=200, description="part of the name")
    created_after: str | None = Field(default=None, max_length=64, description=TIME_HELP)
    created_before: str | None = Field(default=None, max_length=64, description=TIME_HELP)
    finished_after: str | None = Field(default=None, max_length=64, description=TIME_HELP)
    finished_before: str | None = Field(default=None, max_length=64, description=TIME_HELP)
    worker: str | None = Field(default=None, max_length=200, description="the running worker's id")
    error_kind: str | None = Field(default=None, max_length=40, description=ERROR_KIND_HELP)


class BulkIdsIn(BaseModel):
    """The jobs a bulk action applies to, by id."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[str, Field(pattern=JOB_ID_PATTERN)]] = Field(
        min_length=1,
        max_length=MAX_SELECTED,
        description=f"1 to {MAX_SELECTED} job ids; every one must exist (else 404, nothing "
        "done); jobs the action does not apply to are left as they are",
    )


class BulkOut(BaseModel):
    """What a bulk action did."""

    matched: int = Field(description="the ids given, or the eligible jobs the filter selected")
    changed: int = Field(description="jobs the action changed")
    job_ids: list[str] = Field(description="ids of the changed jobs")
    truncated: bool = Field(description="more jobs matched than one call handles")


class ActionOut(BaseModel):
    """The job after an action."""

    job: JobDetail


class RecurringOut(BaseModel):
    """A recurring job, its schedule and its last run."""

    name: str
    cron: str
    schedule: str = Field(description="the schedule in words")
    job_name: str
    args: dict[str, Any]
    timezone: str
    overlap: str
    enabled: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: str | None
    last_job_state: str | None

    @classmethod
    def of(cls, job: RecurringJob, schedule: str) -> RecurringOut:
        """From the model and its schedule in words."""
        return cls(
            name=job.name,
            cron=job.cron,
            schedule=schedule,
            job_name=job.job_name,
            args=job.args,
            timezone=job.timezone,
            overlap=job.overlap,
            enabled=job.enabled,
            next_fire_at=job.next_fire_at,
            last_fire_at=job.last_fire_at,
            last_job_id=job.last_job_id,
            last_job_state=job.last_job_state.value if job.last_job_state else None,
        )


class RunNowOut(BaseModel):
    """The job a "run now" enqueued."""

    created: bool
    job: JobDetail


class QueueOut(BaseModel):
    """A queue: depth, running jobs, paused, and its settings as stored (what every worker and
    producer honours), with which of them an operator set."""

    name: str
    waiting: int = Field(description="scheduled and pending jobs")
    due: int = Field(description="jobs that could run now")
    running: int
    paused: bool
    concurrency: int | None = Field(description="limit across workers; null: unlimited")
    max_size: int | None = Field(default=None, description="bound on waiting jobs; null: none")
    when_full: Literal["wait", "refuse"] = Field(
        default="wait", description="what an enqueue past max_size does"
    )
    rate_limit: str | None = Field(
        default=None, description="at most N starts in any second, minute or hour ('100/m')"
    )
    held_by_key: int = Field(
        default=0, description="due jobs waiting because their concurrency key is at its limit"
    )
    held_by_rate: int = Field(
        default=0, description="due jobs waiting because their queue's or own rate is spent now"
    )
    operator_set: list[str] = Field(
        default_factory=list,
        description="settings an operator set: code declarations no longer override them",
    )
    oldest_due_at: datetime | None

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, queue: QueueStatus) -> QueueOut:
        """From the service's record (same field names)."""
        return cls.model_validate(queue)


class QueueSettingsIn(BaseModel):
    """Settings to change, for the whole fleet (the fields given; null lifts a limit or
    bound). They are kept over the code's declaration until reset (docs/flow-control.md)."""

    # at least one setting: an empty change is refused (422)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_QUEUE_CONCURRENCY,
        description="at most this many of its jobs run at once across workers; null: no limit",
    )  # fmt: skip
    max_size: int | None = Field(
        default=None, ge=1, le=MAX_QUEUE_SIZE,
        description="at most this many of its jobs wait; null: no bound",
    )  # fmt: skip
    when_full: Literal["wait", "refuse"] = Field(
        default="wait", description="what an enqueue past max_size does"
    )
    rate_limit: str | None = Field(
        default=None, pattern=RATE_PATTERN,
        description="at most N of its jobs start in any second, minute or hour, fleet-wide "
        "('10/s', '100/m', '1000/h'); null: no rate",
    )  # fmt: skip

    @field_validator("concurrency", "max_size", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true/false are not numbers here
            raise ValueError("must be a number, not true or false")
        return value

    def changes(self) -> dict[str, object]:
        """The settings given, by name (an explicit null included)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class WorkerOut(BaseModel):
    """A live worker, what it is doing (and was asked to), and the jobs it is running."""

    id: str
    host: str
    pid: int
    queues: list[str] | None = Field(description="null: every queue")
    concurrency: int
    started_at: datetime
    last_seen_at: datetime
    mode: WorkerMode = Field(
        description="running; quiet: claims no new jobs; stopping: finishing, then exiting"
    )
    requested: WorkerRequest | None = Field(
        description="what an operator asked of it (quiet, stop); null: nothing"
    )
    pending: WorkerMode | None = Field(
        description="the mode asked for that it has not reported yet (next heartbeat)"
    )
    current_jobs: list[str] = Field(description="ids of the jobs it runs")
    current_job_names: list[str] = Field(description="their names, in the same order")

    @classmethod
    def of(cls, worker: WorkerInfo, current: list[Job]) -> WorkerOut:
        """From the store's record and its running jobs."""
        return cls(
            id=worker.id,
            host=worker.host,
            pid=worker.pid,
            queues=list(worker.queues) if worker.queues is not None else None,
            concurrency=worker.concurrency,
            started_at=worker.started_at,
            last_seen_at=worker.last_seen_at,
            mode=worker.mode,
            requested=worker.requested,
            pending=worker.pending,
            current_jobs=[job.id for job in current],
            current_job_names=[job.name for job in current],
        )


class MinuteOut(BaseModel):
    """Jobs finished in one minute."""

    minute: datetime
    completed: int
    failed: int


class StatsOut(BaseModel):
    """Counts by state and queue, and throughput per minute over the last hour."""

    by_state: dict[str, int]
    by_queue: dict[str, dict[str, int]]
    throughput: list[MinuteOut] = Field(description="60 minutes, oldest first, zeros included")

    @classmethod
    def of(cls, counts: Counts, minutes: list[Throughput], now: datetime) -> StatsOut:
        """From the store's counts and sparse throughput, filled to 60 whole minutes."""
        found = {m.minute: m for m in minutes}
        current = now.replace(second=0, microsecond=0)
        series = []
        for back in range(59, -1, -1):
            minute = current - timedelta(minutes=back)
            hit = found.get(minute)
            series.append(
                MinuteOut(
                    minute=minute,
                    completed=hit.completed if hit else 0,
                    failed=hit.failed if hit else 0,
                )
            )
        return cls(by_state=counts.by_state, by_queue=counts.by_queue, throughput=series)


class RuntimeOut(BaseModel):
    """Run times of one job name's or queue's sampled jobs."""

    key: str = Field(description="the job name or queue")
    count: int = Field(description="sampled jobs")
    p50_seconds: float
    p95_seconds: float

    @classmethod
    def of(cls, row: Runtime) -> RuntimeOut:
        """From the dashboard's record."""
        return cls(key=row.key, count=row.count, p50_seconds=row.p50, p95_seconds=row.p95)


class RuntimesOut(BaseModel):
    """p50 and p95 run time (started to finished) of the latest completed jobs."""

    by_name: list[RuntimeOut]
    by_queue: list[RuntimeOut]
    sampled: int = Field(description="completed jobs read, newest first (at most 1,000)")
    complete: bool = Field(description="false when more completed jobs exist than were read")

    @classmethod
    def of(cls, runtimes: Runtimes) -> RuntimesOut:
        """From the dashboard's percentiles."""
        return cls(
            by_name=[RuntimeOut.of(r) for r in runtimes.by_name],
            by_queue=[RuntimeOut.of(r) for r in runtimes.by_queue],
            sampled=runtimes.sampled,
            complete=runtimes.complete,
        )


class HistoryPointOut(BaseModel):
    """Jobs that finished in one step of a history range."""

    start: datetime
    completed: int
    failed: int
    cancelled: int
    wait_mean: float | None = Field(description="seconds from due to started (None: no job)")
    run_mean: float | None = Field(description="seconds from started to finished")
    run_p50: float | None = Field(description="upper bound of the run-time bucket; None: no job")
    run_p95: float | None = Field(description="upper bound of the run-time bucket; None: no job")
    run_over: bool = Field(description="the p95 is past the histogram's last bound (300 s)")
    run_buckets: list[int] = Field(description="run times per bucket of `run_bounds`, then over")

    @classmethod
    def of(cls, point: HistoryPoint) -> HistoryPointOut:
        """From a store's point."""
        p50, p95 = point.run_percentile(0.5), point.run_percentile(0.95)
        return cls(
            start=point.start,
            completed=point.completed,
            failed=point.failed,
            cancelled=point.cancelled,
            wait_mean=point.mean_wait,
            run_mean=point.mean_run,
            run_p50=None if p50 is None or math.isinf(p50) else p50,
            run_p95=None if p95 is None or math.isinf(p95) else p95,
            run_over=p95 is not None and math.isinf(p95),
            run_buckets=list(point.run_buckets),
        )


class HistoryOut(BaseModel):
    """Finished jobs over a range, step by step, oldest first, empty steps included."""

    range: str
    step_seconds: int
    queue: str | None
    run_bounds: list[float] = Field(description="upper bounds (s) of the run-time buckets")
    points: list[HistoryPointOut]

    @classmethod
    def of(cls, span: HistoryRange, queue: str | None, points: list[HistoryPoint]) -> HistoryOut:
        """From the range asked for and its points."""
        return cls(
            range=span.name,
            step_seconds=int(span.step.total_seconds()),
            queue=queue,
            run_bounds=list(RUN_BOUNDS),
            points=[HistoryPointOut.of(p) for p in points],
        )
