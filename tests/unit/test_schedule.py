"""CRON schedules: Vixie semantics, seconds, macros, time zones and DST, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor import App
from conveyor.errors import ConfigurationError
from conveyor.model.schedule import Schedule


def fires(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    out, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_a_single_value_range_is_that_value_not_every_minute() -> None:
    assert fires(Schedule("5-5 * * * *"), utc(2026, 1, 1), 2) == [
        utc(2026, 1, 1, 0, 5),
        utc(2026, 1, 1, 1, 5),
    ]


def test_day_of_month_and_day_of_week_are_anded_when_one_starts_with_a_star() -> None:
    # Vixie cron: "*/2" in day-of-month makes both fields restrict (AND), not OR.
    got = fires(Schedule("0 0 */2 * 1"), utc(2026, 1, 1), 3)
    assert all(d.weekday() == 0 and d.day % 2 == 1 for d in got)


def test_leading_seconds_field() -> None:
    every_two = Schedule("*/2 * * * * *")
    assert fires(every_two, utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 0, 2),
        utc(2026, 1, 1, 0, 0, 4),
        utc(2026, 1, 1, 0, 0, 6),
    ]
    assert fires(Schedule("30 */5 * * * *"), utc(2026, 1, 1), 2) == [
        utc(2026, 1, 1, 0, 0, 30),
        utc(2026, 1, 1, 0, 5, 30),
    ]


@pytest.mark.parametrize(
    ("macro", "first"),
    [
        ("@hourly", utc(2026, 3, 1, 1)),
        ("@daily", utc(2026, 3, 2)),
        ("@weekly", utc(2026, 3, 8)),
        ("@monthly", utc(2026, 4, 1)),
        ("@yearly", utc(2027, 1, 1)),
    ],
)
def test_macros(macro: str, first: datetime) -> None:
    assert Schedule(macro).next_after(utc(2026, 3, 1)) == first


def test_last_day_and_nth_weekday() -> None:
    assert Schedule("0 0 L * *").next_after(utc(2026, 2, 1)) == utc(2026, 2, 28)
    assert Schedule("0 0 * * 5#2").next_after(utc(2026, 3, 1)) == utc(2026, 3, 13)
    assert Schedule("0 0 * * 5L").next_after(utc(2026, 3, 1)) == utc(2026, 3, 27)


def test_spring_forward_runs_once_at_the_shifted_time() -> None:
    # 2026-03-08 in New York: 02:00 jumps to 03:00, so 02:30 does not exist that day.
    schedule = Schedule("30 2 * * *", "America/New_York")
    got = fires(schedule, utc(2026, 3, 7, 12), 3)
    assert got == [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]


def test_autumn_repeated_hour_runs_once() -> None:
    # 2026-11-01 in New York: 01:00-02:00 happens twice; 01:30 must fire once.
    schedule = Schedule("30 1 * * *", "America/New_York")
    got = fires(schedule, utc(2026, 10, 31, 12), 3)
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]
    daily_one = fires(Schedule("0 1 * * *", "America/New_York"), utc(2026, 11, 1), 2)
    assert daily_one[1] - daily_one[0] == timedelta(hours=25)


def test_missed_gives_the_latest_ticks_oldest_first() -> None:
    hourly = Schedule("0 * * * *")
    assert hourly.missed(utc(2026, 1, 1, 1), utc(2026, 1, 1, 5, 30), 2) == [
        utc(2026, 1, 1, 4),
        utc(2026, 1, 1, 5),
    ]
    assert hourly.missed(utc(2026, 1, 1, 5), utc(2026, 1, 1, 5), 1) == [utc(2026, 1, 1, 5)]
    assert hourly.missed(utc(2026, 1, 1, 6), utc(2026, 1, 1, 5), 1) == []


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("61 * * * *", "minute field ('61')"),
        ("0 25 * * *", "hour field ('25')"),
        ("0 0 32 * *", "day-of-month field ('32')"),
        ("0 0 * 13 *", "month field ('13')"),
        ("0 0 * * 9", "day-of-week field ('9')"),
        ("61 0 0 * * *", "second field ('61')"),
        ("* * *", "has 3 fields"),
        ("@often", "has 1 fields"),
    ],
)
def test_bad_expressions_name_the_bad_field(expression: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Schedule(expression)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Base'"):
        Schedule("* * * * *", "Mars/Base")


def test_describe_in_words() -> None:
    assert Schedule("0 0 L * *").describe() == "At 00:00 on the last day of every month"
    assert "(Europe/Paris)" in Schedule("0 9 * * *", "Europe/Paris").describe()


@pytest.mark.parametrize("name", ["", "a/b", "tab\there", "x" * 201, 7])
def test_recurring_names_that_no_path_can_hold_are_refused(name: object) -> None:
    app = App("memory://")
    app.declare("report")
    with pytest.raises(ConfigurationError, match=r"recurring job name .* is not valid"):
        app.recurring(name, "@daily", "report")  # type: ignore[arg-type]
    app.recurring("nightly-report.v2", "@daily", "report")
