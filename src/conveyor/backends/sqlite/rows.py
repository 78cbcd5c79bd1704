"""Conversions at the edge of the SQLite store: epoch seconds and JSON text to model objects."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from conveyor.backends.records import WorkerInfo
from conveyor.model.job import AttemptError, Job, JobState, LogLine
from conveyor.model.logs import from_entry, stored_entry
from conveyor.model.recurring import RecurringJob
from conveyor.model.schedule import check_overlap
from conveyor.model.serialization import dumps, loads


def ts(moment: datetime) -> float:
    """Unix epoch seconds of a timezone-aware datetime."""
    return moment.timestamp()


def opt_ts(moment: datetime | None) -> float | None:
    """Like ts(), passing None through."""
    return None if moment is None else moment.timestamp()


def dt(seconds: float) -> datetime:
    """The UTC datetime of unix epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def opt_dt(seconds: float | None) -> datetime | None:
    """Like dt(), passing None through."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def error_json(error: AttemptError) -> str:
    """One errors-column entry."""
    return dumps(
        {
            "attempt": error.attempt,
            "message": error.message,
            "traceback": error.traceback,
            "at": ts(error.at),
            "kind": error.kind,
        }
    )


def logs_json(lines: Iterable[LogLine]) -> str:
    """The logs column: [[at, message], ...], with the attempt third when it is known."""
    return dumps([stored_entry(line, ts(line.at)) for line in lines])


def parse_logs(text: str) -> list[LogLine]:
    """The logs column back to log lines."""
    if text == "[]":  # most jobs: skip the JSON decoder
        return []
    return [from_entry(entry, dt(entry[0])) for entry in loads(text)]


def _errors(text: str) -> tuple[AttemptError, ...]:
    if text == "[]":
        return ()
    return tuple(
        AttemptError(e["attempt"], e["message"], e["traceback"], dt(e["at"]), e["kind"])
        for e in loads(text)
    )


def _object(text: str) -> dict[str, Any]:
    value: dict[str, Any] = {} if text == "{}" else _json(text)
    return value


def _json(text: str) -> Any:
    """The JSON value of a column; text that is not JSON (a row written around Conveyor) is
    kept as it is, so the job can still be shown, and its claim fails it as malformed."""
    try:
        return loads(text)
    except ValueError:
        return text


def job_row(job: Job, parents: tuple[str, ...] = (), policy: str = "cancel") -> tuple[Any, ...]:
    """The parameters of insert_job / insert_unique_job for a new job, waiting on `parents`
    with failure policy `policy`."""
    return (
        job.id,
        job.name,
        job.queue,
        dumps(job.args),
        dumps(job.metadata) if job.metadata else "{}",
        job.priority,
        job.state.value,
        job.max_attempts,
        job.timeout,
        ts(job.run_at),
        ts(job.created_at),
        job.unique_key,
        job.recurring_name,
        job.concurrency_key,
        logs_json(job.logs) if job.logs else "[]",
        opt_ts(job.finished_at),
        job.workflow_id,
        job.step,
        len(parents),
        None if policy == "cancel" else policy,
        None if job.key_concurrency == 1 else job.key_concurrency,  # NULL: one at a time
        job.rate_limit,
        job.rate_key,
    )


def job_from_row(row: sqlite3.Row) -> Job:
    """A stored row as a Job, times as timezone-aware UTC datetimes."""
    result = row["result"]
    return Job(
        id=row["id"],
        name=row["name"],
        queue=row["queue"],
        args=_json(row["args"]),
        metadata=_object(row["metadata"]),
        priority=row["priority"],
        state=JobState(row["state"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        run_at=dt(row["run_at"]),
        created_at=dt(row["created_at"]),
        started_at=opt_dt(row["started_at"]),
        finished_at=opt_dt(row["finished_at"]),
        progress=row["progress"],
        progress_message=row["progress_message"],
        logs=tuple(parse_logs(row["logs"])),
        result=None if result is None else _json(result),
        errors=_errors(row["errors"]),
        unique_key=row["unique_key"],
        recurring_name=row["recurring_name"],
        concurrency_key=row["concurrency_key"],
        worker_id=row["worker_id"],
        lease_expires_at=opt_dt(row["lease_expires_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        workflow_id=row["workflow_id"],
        step=row["step"],
        key_concurrency=row["key_concurrency"] or 1,
        rate_limit=row["rate_limit"],
        rate_key=row["rate_key"],
    )


def worker_row(worker: WorkerInfo) -> dict[str, Any]:
    """The parameters of upsert_worker."""
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": None if worker.queues is None else dumps(list(worker.queues)),
        "concurrency": worker.concurrency,
        "started_at": ts(worker.started_at),
        "last_seen_at": ts(worker.last_seen_at),
        "mode": worker.mode,
    }


def worker_from_row(row: sqlite3.Row) -> WorkerInfo:
    """A conveyor_workers row as WorkerInfo."""
    queues = row["queues"]
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=None if queues is None else tuple(loads(queues)),
        concurrency=row["concurrency"],
        started_at=dt(row["started_at"]),
        last_seen_at=dt(row["last_seen_at"]),
        mode=row["mode"],
        requested=row["requested"],
    )


def json_list(values: Iterable[str]) -> str:
    """A JSON array parameter for json_each()."""
    return dumps(list(values))


def recurring_row(job: RecurringJob) -> dict[str, Any]:
    """The parameters of recurring_upsert."""
    return {
        "name": job.name,
        "cron": job.cron,
        "timezone": job.timezone,
        "job_name": job.job_name,
        "args": dumps(job.args),
        "overlap": job.overlap,
        "catch_up": job.catch_up,
        "enabled": int(job.enabled),
        "toggled": int(job.toggled),
        "next_fire_at": opt_ts(job.next_fire_at),
        "last_fire_at": opt_ts(job.last_fire_at),
        "last_job_id": job.last_job_id,
        "created_at": opt_ts(job.created_at),
        "updated_at": opt_ts(job.updated_at),
    }


def recurring_from_row(row: sqlite3.Row) -> RecurringJob:
    """A stored recurring definition, with its last job's state when the query joined it."""
    state = row["last_job_state"]
    return RecurringJob(
        name=row["name"],
        cron=row["cron"],
        job_name=row["job_name"],
        args=_object(row["args"]),
        timezone=row["timezone"],
        overlap=check_overlap(row["overlap"]),
        catch_up=row["catch_up"],
        enabled=bool(row["enabled"]),
        toggled=bool(row["toggled"]),
        next_fire_at=opt_dt(row["next_fire_at"]),
        last_fire_at=opt_dt(row["last_fire_at"]),
        last_job_id=row["last_job_id"],
        last_job_state=None if state is None else JobState(state),
        created_at=opt_dt(row["created_at"]),
        updated_at=opt_dt(row["updated_at"]),
    )
