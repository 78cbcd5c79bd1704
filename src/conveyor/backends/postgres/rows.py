"""Conversions at the edge of the PostgreSQL store: model objects to parameters and back.

Rows come as dicts (psycopg's dict_row): timestamptz as aware datetimes (turned to UTC here),
json and jsonb as their text (`ADAPTERS`), decoded here: a claimed job's empty metadata, logs
and errors then cost no parsing, where psycopg's own JSON loader took 2 µs a value. Entries
inside JSON columns (log lines, errors) carry epoch seconds, as in the SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.types.string import TextLoader

from conveyor.backends.records import WorkerInfo
from conveyor.model.job import AttemptError, Job, JobState, LogLine
from conveyor.model.logs import from_entry, stored_entry
from conveyor.model.recurring import RecurringJob
from conveyor.model.schedule import check_overlap
from conveyor.model.serialization import dumps, loads

Row = dict[str, Any]

# The columns of insert_jobs, in order: each becomes one array parameter.
JOB_COLUMNS = (
    "id",
    "name",
    "queue",
    "args",
    "metadata",
    "priority",
    "state",
    "max_attempts",
    "timeout",
    "run_at",
    "created_at",
    "unique_key",
    "recurring_name",
    "concurrency_key",
    "logs",
    "finished_at",
    "key_concurrency",
    "rate_limit",
    "rate_key",
)

# COPY's text format: these characters are escaped; \N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def json_as_text(adapters: AdaptersMap) -> AdaptersMap:
    """`adapters`, changed to hand json and jsonb values back as text (for rows.py to decode)."""
    adapters.register_loader("jsonb", TextLoader)
    adapters.register_loader("json", TextLoader)
    return adapters


# The adaptation context of the store's own connections.
ADAPTERS = json_as_text(AdaptersMap(psycopg.adapters))


def utc(moment: datetime) -> datetime:
    """`moment` in UTC (the server hands times back in its session time zone)."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def opt_utc(moment: datetime | None) -> datetime | None:
    """Like utc(), passing None through."""
    return None if moment is None else utc(moment)


def error_entry(error: AttemptError) -> dict[str, Any]:
    """One errors-column entry, as a JSON-ready dict."""
    return {
        "attempt": error.attempt,
        "message": error.message,
        "traceback": error.traceback,
        "at": error.at.timestamp(),
        "kind": error.kind,
    }


def error_json(error: AttemptError) -> str:
    """One errors-column entry, as JSON text."""
    return dumps(error_entry(error))


def logs_json(lines: Iterable[LogLine]) -> str:
    """The logs column as JSON text: [[at, message], ...], with the attempt third when known."""
    return dumps([stored_entry(line, line.at.timestamp()) for line in lines])


def parse_logs(text: str) -> list[LogLine]:
    """The logs column's text back to log lines."""
    if text == "[]":
        return []
    return [from_entry(entry, datetime.fromtimestamp(entry[0], UTC)) for entry in loads(text)]


def _errors(text: str) -> tuple[AttemptError, ...]:
    if text == "[]":
        return ()
    return tuple(
        AttemptError(
            e["attempt"],
            e["message"],
            e["traceback"],
            datetime.fromtimestamp(e["at"], UTC),
            e["kind"],
        )
        for e in loads(text)
    )


def job_arrays(jobs: Sequence[Job]) -> dict[str, list[Any]]:
    """The array parameters of insert_jobs: one list per column, one entry per job."""
    arrays: dict[str, list[Any]] = {column: [] for column in JOB_COLUMNS}
    for job in jobs:
        arrays["id"].append(job.id)
        arrays["name"].append(job.name)
        arrays["queue"].append(job.queue)
        arrays["args"].append(dumps(job.args))
        arrays["metadata"].append(dumps(job.metadata) if job.metadata else "{}")
        arrays["priority"].append(job.priority)
        arrays["state"].append(job.state.value)
        arrays["max_attempts"].append(job.max_attempts)
        arrays["timeout"].append(job.timeout)
        arrays["run_at"].append(job.run_at)
        arrays["created_at"].append(job.created_at)
        arrays["unique_key"].append(job.unique_key)
        arrays["recurring_name"].append(job.recurring_name)
        arrays["concurrency_key"].append(job.concurrency_key)
        arrays["logs"].append(logs_json(job.logs) if job.logs else "[]")
        arrays["finished_at"].append(job.finished_at)
        # NULL: one at a time (the unique index of running keys guards those)
        arrays["key_concurrency"].append(None if job.key_concurrency == 1 else job.key_concurrency)
        arrays["rate_limit"].append(job.rate_limit)
        arrays["rate_key"].append(job.rate_key)
    return arrays


def copy_text(jobs: Sequence[Job]) -> str:
    """The rows of copy_jobs in COPY's text format, one line per job in JOB_COLUMNS order.
    Built by hand: a bulk enqueue spends most of its time here, and one f-string per job
    costs a fraction of per-value dumpers. Times shared by many jobs are formatted once."""
    stamps: dict[datetime, str] = {}

    def stamp(moment: datetime | None) -> str:
        if moment is None:
            return "\\N"
        text = stamps.get(moment)
        if text is None:
            text = stamps[moment] = moment.isoformat()
        return text

    lines = []
    for job in jobs:
        args = _copy_escaped(dumps(job.args))
        metadata = _copy_escaped(dumps(job.metadata)) if job.metadata else "{}"
        logs = _copy_escaped(logs_json(job.logs)) if job.logs else "[]"
        timeout = "\\N" if job.timeout is None else repr(job.timeout)
        lines.append(
            f"{_copy_escaped(job.id)}\t{_copy_field(job.name)}\t{_copy_field(job.queue)}\t{args}\t{metadata}\t"
            f"{job.priority}\t{job.state.value}\t{job.max_attempts}\t{timeout}\t"
            f"{stamp(job.run_at)}\t{stamp(job.created_at)}\t{_copy_field(job.unique_key)}\t"
            f"{_copy_field(job.recurring_name)}\t{_copy_field(job.concurrency_key)}\t{logs}\t"
            f"{stamp(job.finished_at)}\t{_copy_limit(job.key_concurrency)}\t"
            f"{_copy_field(job.rate_limit)}\t{_copy_field(job.rate_key)}\n"
        )
    return "".join(lines)


def _copy_limit(key_concurrency: int) -> str:
    return "\\N" if key_concurrency == 1 else str(key_concurrency)  # NULL: one at a time


def _copy_escaped(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _copy_field(text: str | None) -> str:
    return "\\N" if text is None else _copy_escaped(text)


def job_from_row(row: Row) -> Job:
    """A stored row as a Job, times as timezone-aware UTC datetimes."""
    metadata, result = row["metadata"], row["result"]
    return Job(
        id=row["id"],
        name=row["name"],
        queue=row["queue"],
        args=loads(row["args"]),
        metadata={} if metadata == "{}" else loads(metadata),
        priority=row["priority"],
        state=JobState(row["state"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        run_at=utc(row["run_at"]),
        created_at=utc(row["created_at"]),
        started_at=opt_utc(row["started_at"]),
        finished_at=opt_utc(row["finished_at"]),
        progress=row["progress"],
        progress_message=row["progress_message"],
        logs=tuple(parse_logs(row["logs"])),
        result=None if result is None else loads(result),
        errors=_errors(row["errors"]),
        unique_key=row["unique_key"],
        recurring_name=row["recurring_name"],
        concurrency_key=row["concurrency_key"],
        worker_id=row["worker_id"],
        lease_expires_at=opt_utc(row["lease_expires_at"]),
        cancel_requested=row["cancel_requested"],
        workflow_id=row["workflow_id"],
        step=row["step"],
        key_concurrency=row["key_concurrency"] or 1,
        rate_limit=row["rate_limit"],
        rate_key=row["rate_key"],
    )


def worker_params(worker: WorkerInfo) -> dict[str, Any]:
    """The parameters of upsert_worker."""
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": None if worker.queues is None else dumps(list(worker.queues)),
        "concurrency": worker.concurrency,
        "started_at": worker.started_at,
        "last_seen_at": worker.last_seen_at,
        "mode": worker.mode,
    }


def worker_from_row(row: Row) -> WorkerInfo:
    """A workers row as WorkerInfo."""
    queues = row["queues"]
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=None if queues is None else tuple(loads(queues)),
        concurrency=row["concurrency"],
        started_at=utc(row["started_at"]),
        last_seen_at=utc(row["last_seen_at"]),
        mode=row["mode"],
        requested=row["requested"],
    )


def recurring_params(job: RecurringJob) -> dict[str, Any]:
    """The parameters of recurring_upsert."""
    return {
        "name": job.name,
        "cron": job.cron,
        "timezone": job.timezone,
        "job_name": job.job_name,
        "args": dumps(job.args),
        "overlap": job.overlap,
        "catch_up": job.catch_up,
        "enabled": job.enabled,
        "toggled": job.toggled,
        "next_fire_at": job.next_fire_at,
        "last_fire_at": job.last_fire_at,
        "last_job_id": job.last_job_id,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def recurring_from_row(row: Row) -> RecurringJob:
    """A stored recurring definition, with its last job's state when the query joined it."""
    state = row["last_job_state"]
    return RecurringJob(
        name=row["name"],
        cron=row["cron"],
        job_name=row["job_name"],
        args=loads(row["args"]),
        timezone=row["timezone"],
        overlap=check_overlap(row["overlap"]),
        catch_up=row["catch_up"],
        enabled=row["enabled"],
        toggled=row["toggled"],
        next_fire_at=opt_utc(row["next_fire_at"]),
        last_fire_at=opt_utc(row["last_fire_at"]),
        last_job_id=row["last_job_id"],
        last_job_state=None if state is None else JobState(state),
        created_at=opt_utc(row["created_at"]),
        updated_at=opt_utc(row["updated_at"]),
    )
