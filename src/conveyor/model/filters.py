"""The one check of a job listing's filter values, shared by `app.jobs.list`, the CLI's
`jobs ls`, the REST API's `GET /jobs` and the dashboard's job list (docs/web.md, "Finding
jobs").

Accepted values:

- text (search, partial name, worker id): 1 to MAX_FILTER_TEXT characters, no control
  character (so a search never spans two of the searched fields) and no lone surrogate;
- times: an aware datetime; or text, either an ISO 8601 date or date-time (without an offset
  it is UTC) or a duration before now (`90s`, `15m`, `2h`, `7d`, `2w`);
- a range's lower bound is inclusive, its upper bound exclusive, and it must not be empty;
- error kinds: the kinds stored on attempt errors (ERROR_KINDS), or one of their aliases
  (`exception`, `worker-died`, …).

Every refusal is an InvalidFilter naming the filter, the value and what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conveyor.errors import InvalidFilter

__all__ = [
    "ERROR_KINDS",
    "MAX_FILTER_TEXT",
    "CheckedFilter",
    "check_error_kind",
    "check_filter",
    "check_filter_text",
    "check_time_bound",
]

MAX_FILTER_TEXT = 200

#: The kinds an attempt's error is stored with, and what each means to an operator.
ERROR_KINDS: Mapping[str, str] = {
    "error": "exception raised",
    "timeout": "timed out",
    "lost": "worker died (lease expired)",
    "crashed": "process crashed",
    "fail": "Fail raised (no retry)",
    "retry": "Retry raised",
    "arguments": "arguments did not fit",
    "result": "result not storable",
    "unknown_job": "job unknown to the worker",
    "malformed": "stored job unreadable",
}

_ALIASES = {
    "exception": "error",
    "worker_died": "lost",
    "worker died": "lost",
    "worker-died": "lost",
    "died": "lost",
    "crash": "crashed",
    "timed_out": "timeout",
    "unknown-job": "unknown_job",
}

_AGO = re.compile(r"^\s*(\d{1,6})\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TIME_HELP = (
    "give an ISO 8601 date or time (2026-12-07, 2026-12-07T14:30, UTC unless it has an "
    "offset) or a duration before now (90s, 15m, 2h, 7d, 2w)"
)


@dataclass(frozen=True, slots=True)
class CheckedFilter:
    """A listing's optional filters, checked (None: not filtered on)."""

    search: str | None = None
    name_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    worker: str | None = None
    error_kind: str | None = None


def check_filter_text(value: object, what: str) -> str:
    """A text filter: 1 to MAX_FILTER_TEXT characters a store can hold."""
    if not isinstance(value, str):
        raise InvalidFilter(f"the {what} filter must be text, not {type(value).__name__}")
    if not value or len(value) > MAX_FILTER_TEXT:
        raise InvalidFilter(
            f"the {what} filter must be 1 to {MAX_FILTER_TEXT} characters, not {len(value)}"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidFilter(
            f"the {what} filter {value[:40]!r} holds a control character or a lone "
            "surrogate: search for text without it"
        )
    return value


def check_time_bound(value: object, what: str, now: datetime) -> datetime:
    """A time filter's bound as an aware UTC datetime (see the module's docstring)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidFilter(
                f"the {what} filter {value.isoformat()} has no time zone: give an aware "
                "datetime (datetime.now(UTC) - timedelta(hours=1))"
            )
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise InvalidFilter(f"the {what} filter must be a time: {_TIME_HELP}")
    text = value.strip()
    ago = _AGO.match(text)
    if ago:
        return now - timedelta(seconds=int(ago.group(1)) * _UNIT_SECONDS[ago.group(2)])
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise InvalidFilter(
            f"the {what} filter {value[:40]!r} is not a time: {_TIME_HELP}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def check_error_kind(value: object) -> str:
    """An error kind as stored (an alias becomes its kind)."""
    if isinstance(value, str):
        key = value.strip().lower()
        kind = _ALIASES.get(key, key)
        if kind in ERROR_KINDS:
            return kind
    known = ", ".join(f"{kind} ({label})" for kind, label in ERROR_KINDS.items())
    raise InvalidFilter(f"unknown error kind {str(value)[:40]!r}; the kinds are: {known}")


def _range(
    after: object, before: object, what: str, now: datetime
) -> tuple[datetime | None, datetime | None]:
    low = None if after is None else check_time_bound(after, f"{what}_after", now)
    high = None if before is None else check_time_bound(before, f"{what}_before", now)
    if low is not None and high is not None and low >= high:
        raise InvalidFilter(
            f"the {what} range is empty: {what}_after ({low.isoformat()}) must be before "
            f"{what}_before ({high.isoformat()})"
        )
    return low, high


def check_filter(
    now: datetime,
    *,
    search: object = None,
    name_contains: object = None,
    created_after: object = None,
    created_before: object = None,
    finished_after: object = None,
    finished_before: object = None,
    worker: object = None,
    error_kind: object = None,
) -> CheckedFilter:
    """Every optional filter of a listing, checked; None or "" leaves a filter off. `now`
    anchors durations ("2h": two hours before now)."""

    def given(value: object) -> object:
        return None if value is None or value == "" else value

    created = _range(given(created_after), given(created_before), "created", now)
    finished = _range(given(finished_after), given(finished_before), "finished", now)
    text = {
        label: None if given(value) is None else check_filter_text(value, label)
        for label, value in (("search", search), ("name", name_contains), ("worker", worker))
    }
    kind = given(error_kind)
    return CheckedFilter(
        search=text["search"],
        name_contains=text["name"],
        created_after=created[0],
        created_before=created[1],
        finished_after=finished[0],
        finished_before=finished[1],
        worker=text["worker"],
        error_kind=None if kind is None else check_error_kind(kind),
    )
