"""The one check of a listing's filter values (model/filters.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from conveyor.errors import InvalidFilter
from conveyor.model.filters import check_error_kind, check_filter, check_time_bound

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        (" 90s ", NOW - timedelta(seconds=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01 08:30", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("2026-12-01T08:30:00+02:00", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_times_are_iso_or_durations_before_now(text: str, expected: datetime) -> None:
    assert check_time_bound(text, "created_after", NOW) == expected


def test_an_aware_datetime_is_kept_and_a_naive_one_refused() -> None:
    paris = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert check_time_bound(paris, "created_after", NOW) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(InvalidFilter, match="has no time zone"):
        check_time_bound(datetime(2026, 12, 1), "created_after", NOW)


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "-2h", "2026-13-01", ""])
def test_other_times_are_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidFilter, match="ISO 8601 date or time"):
        check_time_bound(text, "finished_before", NOW)


def test_error_kinds_and_their_aliases() -> None:
    assert check_error_kind("timeout") == "timeout"
    assert check_error_kind("Exception") == "error"
    assert check_error_kind("worker died") == "lost"
    with pytest.raises(InvalidFilter, match="the kinds are: error \\(exception raised\\)"):
        check_error_kind("meltdown")


def test_empty_values_leave_filters_off_and_ranges_must_not_be_empty() -> None:
    assert check_filter(NOW, search="", worker=None) == check_filter(NOW)
    checked = check_filter(NOW, created_after="2h", created_before="1h", name_contains="x")
    assert checked.created_after == NOW - timedelta(hours=2)
    assert checked.name_contains == "x"
    with pytest.raises(InvalidFilter, match="the created range is empty"):
        check_filter(NOW, created_after="1h", created_before="2h")


@pytest.mark.parametrize("text", ["a\x00b", "tab\there", "x" * 201, "\ud800"])
def test_text_filters_a_search_cannot_hold_are_refused(text: str) -> None:
    with pytest.raises(InvalidFilter, match="the search filter"):
        check_filter(NOW, search=text)
