"""The pure model: ids, transitions, backoff, log bounds, argument checks."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from conveyor.errors import ArgumentsNotSerializable, ConfigurationError
from conveyor.model.job import JobState, LogLine, can_transition, new_job_id
from conveyor.model.logs import append_logs
from conveyor.model.options import Backoff, JobOptions
from conveyor.model.serialization import check_arguments
from conveyor.model.settings import Settings


def test_ids_are_unique_and_strictly_increasing() -> None:
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_transition_table() -> None:
    assert can_transition(JobState.PENDING, JobState.RUNNING)
    assert can_transition(JobState.FAILED, JobState.PENDING)
    assert not can_transition(JobState.COMPLETED, JobState.PENDING)
    assert not can_transition(JobState.SCHEDULED, JobState.COMPLETED)


def test_backoff_grows_exponentially_up_to_max_with_bounded_jitter() -> None:
    plain = Backoff(base=2, max=30, jitter=0)
    assert [plain.delay(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    jittery = Backoff(base=10, max=1000, jitter=0.2)
    rng = random.Random(1)
    delays = [jittery.delay(3, rng) for _ in range(200)]
    assert all(32 <= d <= 48 for d in delays)
    assert len(set(delays)) > 100  # jitter spreads retries out
    with pytest.raises(ConfigurationError):
        Backoff(jitter=2)


def test_job_options_validate() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        JobOptions(max_attempts=0)
    with pytest.raises(ConfigurationError, match="either delay or run_at"):
        JobOptions(delay=1, run_at=datetime.now(UTC))


def test_settings_refuse_a_heartbeat_slower_than_half_the_lease() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        Settings().merged(lease_seconds=4, heartbeat_interval=3)


def test_append_logs_keeps_a_marker_with_the_total_dropped() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    lines = [LogLine(t, f"l{i}") for i in range(4)]
    once = append_logs([], lines, 3)
    assert [x.message for x in once] == ["[2 earlier lines dropped]", "l2", "l3"]
    twice = append_logs(once, [LogLine(t, "l4")], 3)
    assert [x.message for x in twice] == ["[3 earlier lines dropped]", "l3", "l4"]
    assert append_logs([], lines[:2], 3) == lines[:2]


def test_check_arguments_names_the_first_bad_path() -> None:
    check_arguments({"a": [1, 2.5, None, {"b": True}]})
    with pytest.raises(ArgumentsNotSerializable, match=r"args\.a\[1\] \(NaN\)"):
        check_arguments({"a": [1, float("nan")]})
    with pytest.raises(ArgumentsNotSerializable, match=r"key 1 of type int"):
        check_arguments({"a": {1: "x"}})
