"""Structured logging: the JSON and plain formatters, and job fields on every record of a job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.errors import ConfigurationError
from conveyor.model.job import Job
from conveyor.observability import logging as job_logging


def record(message: str = "hello %s", *args: object, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("conveyor.worker", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_the_job_fields_and_extras() -> None:
    line = job_logging.JsonFormatter().format(
        record("job %s failed", "x", job_id="j1", job_name="send", queue="q", attempt=2, tenant=7)
    )
    entry = json.loads(line)
    assert entry["time"].endswith("Z")
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "level": "warning",
        "logger": "conveyor.worker",
        "message": "job x failed",
        "job_id": "j1",
        "job_name": "send",
        "queue": "q",
        "attempt": 2,
        "tenant": 7,
    }


def test_json_lines_without_a_job_and_with_an_exception() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec = record("oops")
        rec.exc_info = sys.exc_info()
    entry = json.loads(job_logging.JsonFormatter().format(rec))
    assert "job_id" not in entry and entry["message"] == "oops"
    assert "ValueError: bad" in entry["exception"]


def test_plain_lines_end_with_the_job_tag() -> None:
    formatter = job_logging.PlainFormatter()
    tagged = formatter.format(record("done", job_id="j1", job_name="send", attempt=1))
    assert tagged.endswith("conveyor.worker: done [job=send id=j1 attempt=1]")
    assert formatter.format(record("plain")).endswith("conveyor.worker: plain")


def test_the_filter_adds_the_running_jobs_fields_without_overriding() -> None:
    job = Job(id="j9", name="report", queue="reports", attempt=3)
    job_filter = job_logging.JobContextFilter()
    outside = record("x")
    assert job_filter.filter(outside) and not hasattr(outside, "job_id")
    with job_logging.job_context(job):
        assert job_logging.current_job() is job
        inside = record("x")
        job_filter.filter(inside)
        explicit = record("x", job_id="other")
        job_filter.filter(explicit)
    assert (inside.job_id, inside.job_name, inside.queue, inside.attempt) == (  # type: ignore[attr-defined]
        "j9", "report", "reports", 3,
    )  # fmt: skip
    assert explicit.job_id == "other"  # type: ignore[attr-defined]
    assert job_logging.current_job() is None


def test_formatter_refuses_unknown_formats() -> None:
    with pytest.raises(ConfigurationError, match="unknown log format 'xml'"):
        job_logging.formatter("xml")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = job_logging.configure("info", "json", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_records_logged_inside_jobs_carry_the_job(
    tmp_path: Path, captured: io.StringIO
) -> None:
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}", poll_interval=0.05)
    job_logging.install(app)
    job_logging.install(app)  # idempotent
    user_log = logging.getLogger("myjobs")

    @app.job
    def sync_job(ctx: Any) -> None:
        user_log.info("from a thread")

    @app.job
    async def async_job(ctx: Any) -> None:
        user_log.info("from the loop")

    @app.job(max_attempts=1)
    def failing(ctx: Any) -> None:
        raise RuntimeError("nope")

    handles = [sync_job.enqueue(), async_job.enqueue(), failing.enqueue()]
    async with app.worker():
        for handle in handles:
            await handle.wait_async(timeout=15, interval=0.02)
    app.close()
    assert app.middleware.count(job_logging.job_middleware) == 1
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    by_message = {e["message"]: e for e in entries}
    for message, handle in zip(("from a thread", "from the loop"), handles, strict=False):
        entry = by_message[message]
        assert (entry["job_id"], entry["job_name"], entry["queue"], entry["attempt"]) == (
            handle.id, handle.job.name, "default", 1,
        )  # fmt: skip
    failure = next(e for e in entries if "failed after attempt" in e["message"])
    assert (failure["job_id"], failure["attempt"]) == (handles[2].id, 1)
    started = next(e for e in entries if "started" in e["message"])
    assert "job_id" not in started  # the worker's own records are not about a job
