"""Structured logging: JSON and plain formatters that carry the job a record is about.

Records about a job carry `job_id`, `job_name`, `queue` and `attempt`:

* the runtime passes them with `extra=` where it logs about a job (failed attempts, hooks);
* `install(app)` adds a middleware that remembers the running job in a contextvar, and
  `JobContextFilter` copies it onto every record logged while the job runs — including
  records logged by the job's own code through `logging`, in async and sync jobs alike.

    from conveyor.observability import logging as conveyor_logging
    conveyor_logging.install(app)
    conveyor_logging.configure(level="info", fmt="json")
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from conveyor.app import App
from conveyor.context import Context
from conveyor.errors import ConfigurationError
from conveyor.model.job import Job
from conveyor.runtime.middleware import Call

JOB_FIELDS = ("job_id", "job_name", "queue", "attempt")
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
FORMATS = ("plain", "json")

_current_job: ContextVar[Job | None] = ContextVar("conveyor_current_job", default=None)
# The attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def current_job() -> Job | None:
    """The job running in this context (set by the middleware of `install`), or None."""
    return _current_job.get()


@contextmanager
def job_context(job: Job) -> Iterator[None]:
    """Mark `job` as the one running in this context (what the middleware does)."""
    token = _current_job.set(job)
    try:
        yield
    finally:
        _current_job.reset(token)


async def job_middleware(ctx: Context, call_next: Call) -> Any:
    """Middleware: the job is `current_job()` while it runs, so its records carry it."""
    with job_context(ctx.job):
        return await call_next()


def install(app: App) -> None:
    """Tag records logged while a job runs with the job's fields (idempotent)."""
    if job_middleware not in app.middleware:
        app.use(job_middleware)


def job_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The job fields a record carries (those that are set)."""
    return {
        key: getattr(record, key) for key in JOB_FIELDS if getattr(record, key, None) is not None
    }


class JobContextFilter(logging.Filter):
    """Copies the running job's fields onto records that do not already carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add job_id, job_name, queue and attempt from `current_job()`; never drops."""
        job = _current_job.get()
        if job is not None:
            values = (job.id, job.name, job.queue, job.attempt)
            for key, value in zip(JOB_FIELDS, values, strict=True):
                if getattr(record, key, None) is None:
                    setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job's fields when the record
    has them, other `extra=` values, and the exception's traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= job_fields(record)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """A readable line; records about a job end with `[job=<name> id=<id> attempt=<n> …]`."""

    def __init__(self, fmt: str = PLAIN_FORMAT, datefmt: str = DATE_FORMAT) -> None:
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, with the job's fields appended when it has them."""
        text = super().format(record)
        fields = job_fields(record)
        if not fields:
            return text
        labels = {"job_name": "job", "job_id": "id", "queue": "queue", "attempt": "attempt"}
        tag = " ".join(f"{labels[k]}={fields[k]}" for k in labels if k in fields)
        first, newline, rest = text.partition("\n")  # keep a traceback below the tagged line
        return f"{first} [{tag}]{newline}{rest}"


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for "plain" or "json"; ConfigurationError for anything else."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "plain":
        return PlainFormatter()
    raise ConfigurationError(f"unknown log format {fmt!r}; formats are: {', '.join(FORMATS)}")


def configure(
    level: str | int = "info", fmt: str = "plain", stream: IO[str] | None = None
) -> logging.Handler:
    """Log to `stream` (default stderr) through the root logger in `fmt`, with job fields.

    Replaces a handler an earlier call added; other handlers are left alone.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(JobContextFilter())
    handler.set_name("conveyor")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "conveyor"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


__all__ = [
    "FORMATS",
    "JOB_FIELDS",
    "JobContextFilter",
    "JsonFormatter",
    "PlainFormatter",
    "configure",
    "current_job",
    "formatter",
    "install",
    "job_context",
    "job_middleware",
]
