"""CRON schedules on top of cronsim: validation, time zones, next and missed fire times.

Semantics are Vixie cron's (cronsim's): 5 fields, or 6 with a leading seconds field; `L`, `LW`,
`5L` and `#` where cronsim has them; day-of-month and day-of-week are ANDed when either starts
with `*`. Fire times are computed in the schedule's IANA time zone, so across DST a 02:30 daily
schedule fires once at 03:00 on the spring-forward day, and a 01:30 one fires once on the
autumn day although 01:30 happens twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from conveyor.errors import ConfigurationError

Overlap = Literal["skip", "allow", "queue"]
OVERLAPS: tuple[Overlap, ...] = ("skip", "allow", "queue")

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6 = ("second", *_FIELDS_5)


def expand(expression: str) -> str:
    """The expression with a macro (@daily, …) replaced by its 5 fields."""
    text = " ".join(expression.split())
    return MACROS.get(text.lower(), text)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a ConfigurationError saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def validate(expression: str, timezone: str = "UTC") -> str:
    """The normalised expression; raises ConfigurationError naming the bad field."""
    tz = zone(timezone)
    text = expand(expression)
    fields = text.split(" ")
    if len(fields) not in (5, 6):
        raise ConfigurationError(
            f"CRON expression {expression!r} has {len(fields)} fields: write 5 (minute hour "
            "day-of-month month day-of-week), 6 with a leading seconds field, or a macro "
            f"({', '.join(sorted(MACROS))})"
        )
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=tz))
    except CronSimError as exc:
        names = _FIELDS_6 if len(fields) == 6 else _FIELDS_5
        message = str(exc)
        bad = next((n for n in names if n in message.lower()), None)
        where = f" in the {bad} field ({fields[names.index(bad)]!r})" if bad else ""
        raise ConfigurationError(
            f"CRON expression {expression!r} is invalid{where}: {message}"
        ) from None
    return text


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated CRON expression in a time zone."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression", validate(self.expression, self.timezone))

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`, in UTC."""
        return next(self._iter(moment, reverse=False))

    def missed(self, since: datetime, until: datetime, limit: int) -> list[datetime]:
        """Up to `limit` latest fire times in [since, until], oldest first, in UTC."""
        if limit < 1 or since > until:
            return []
        # cronsim's reverse iteration yields fire times at or before its start
        latest = self._iter(until + timedelta(microseconds=1), reverse=True)
        found = [t for t in islice(latest, limit) if t >= since]
        return sorted(found)

    def due(
        self, next_fire_at: datetime, last_look: datetime | None, now: datetime, catch_up: int
    ) -> list[datetime]:
        """The ticks to fire at `now`, oldest first, for a definition next due at
        `next_fire_at`, by a scheduler that last looked at `last_look` (None: never, as
        after a start).

        Ticks due before the scheduler's last look were missed while nobody fired them (the
        workers were down): the `catch_up` latest of them run. Ticks due since then came
        while it was up, only its pass is late (a slow start, a pause): up to `catch_up` of
        them run too. So a pass that comes after the next regular tick runs the catch-up
        and that tick, and the schedule continues; never more than twice catch_up at once.
        Always at least `next_fire_at` itself, when it is due."""
        if next_fire_at > now:
            return []
        if last_look is None or last_look < next_fire_at:
            ticks = self.missed(next_fire_at, now, catch_up)
        else:
            downtime = self.missed(next_fire_at, min(last_look, now), catch_up)
            live = self.missed(last_look + timedelta(microseconds=1), now, catch_up)
            ticks = downtime + live
        return ticks or [next_fire_at]

    def describe(self) -> str:
        """The schedule in words, e.g. 'At 00:00 on the last day of every month'."""
        text = CronSim(self.expression, datetime.now(UTC)).explain()
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"

    def _iter(self, moment: datetime, reverse: bool) -> Iterator[datetime]:
        tz = zone(self.timezone)
        start = moment.astimezone(tz)
        for fire in CronSim(self.expression, start, reverse=reverse):
            yield _as_utc(fire)


def _as_utc(value: Any) -> datetime:
    result: datetime = value.astimezone(UTC)
    return result


def check_overlap(overlap: str) -> Overlap:
    """`overlap` if it is a known policy, else a ConfigurationError listing them."""
    if overlap not in OVERLAPS:
        raise ConfigurationError(
            f"unknown overlap policy {overlap!r}: use one of {', '.join(OVERLAPS)}"
        )
    return overlap
