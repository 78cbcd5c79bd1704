"""Bounded per-job logs: the oldest lines give way to a marker line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from conveyor.model.job import LogLine

_MARKER = re.compile(r"^\[(\d+) earlier lines? dropped\]$")


def stored_entry(line: LogLine, at: float) -> list[object]:
    """A log line as stored in a JSON logs column: [at, message], with the attempt third
    when it is known (`at` as the store keeps times)."""
    return [at, line.message, line.attempt] if line.attempt else [at, line.message]


def from_entry(entry: Sequence[object], at: datetime) -> LogLine:
    """A stored entry (`stored_entry`) back to a log line; `at` already decoded."""
    attempt = entry[2] if len(entry) > 2 else 0
    return LogLine(at, str(entry[1]), attempt if isinstance(attempt, int) else 0)


def dropped_count(lines: Sequence[LogLine]) -> int:
    """How many lines a log has already dropped, read from its marker line."""
    if lines:
        match = _MARKER.match(lines[0].message)
        if match:
            return int(match.group(1))
    return 0


def append_logs(
    existing: Sequence[LogLine], new: Sequence[LogLine], max_lines: int, attempt: int = 0
) -> list[LogLine]:
    """`existing` + `new`, keeping at most `max_lines` lines (the first being the marker);
    new lines are stamped with `attempt`, the attempt of the running job they came from."""
    if attempt:
        new = [line if line.attempt else LogLine(line.at, line.message, attempt) for line in new]
    already = dropped_count(existing)
    body = list(existing[1:] if already else existing) + list(new)
    if len(body) + (1 if already else 0) <= max_lines:
        return ([existing[0]] if already else []) + body
    keep = max(max_lines - 1, 0)
    dropped = already + len(body) - keep
    at = body[len(body) - keep].at if keep else body[-1].at
    noun = "line" if dropped == 1 else "lines"
    kept = body[len(body) - keep :] if keep else []
    return [LogLine(at=at, message=f"[{dropped} earlier {noun} dropped]"), *kept]
