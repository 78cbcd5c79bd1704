"""The pure model: ids, transitions, backoff, log bounds, argument checks."""

from __future__ import annotations

import os
import random
import re
import uuid
from datetime import UTC, datetime

import pytest

from conveyor.errors import ArgumentsNotSerializable, ConfigurationError
from conveyor.model import job as job_module
from conveyor.model.job import (
    JOB_FIELDS,
    Job,
    JobState,
    LogLine,
    NewJob,
    can_transition,
    new_job_id,
)
from conveyor.model.logs import append_logs
from conveyor.model.options import Backoff, JobOptions
from conveyor.model.settings import Settings
from conveyor.model.validation import check_arguments


def test_ids_are_unique_and_strictly_increasing() -> None:
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_keep_increasing_when_the_clock_stalls_steps_back_or_a_tail_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_800_000_000_000 * 1_000_000]
    monkeypatch.setattr(job_module, "_time_ns", lambda: now[0])
    ids = [new_job_id() for _ in range(100)]  # one millisecond
    now[0] -= 5_000_000_000  # the clock steps back five seconds
    ids += [new_job_id() for _ in range(100)]
    monkeypatch.setattr(job_module, "_id_tail", job_module._TAIL_LAST)
    ids += [new_job_id() for _ in range(10)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parents_next_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the clock stopped, the parent's next id is its last one plus one: a child that
    # kept the parent's counter would make that very id.
    monkeypatch.setattr(job_module, "_time_ns", lambda: 1_800_000_000_000 * 1_000_000)
    new_job_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_job_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id = os.read(read, 100).decode()
    os.close(read)
    assert len(child_id) == 36
    assert child_id != new_job_id()


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


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"concurrency": "3"}, "concurrency must be an integer, not '3'"),
        ({"processes": True}, "processes must be an integer"),
        ({"max_memory_per_child": 1.5}, "max_memory_per_child must be an integer"),
        ({"poll_interval": float("nan")}, "poll_interval must be a finite number"),
        ({"shutdown_timeout": -1}, "shutdown_timeout must be a finite number"),
        ({"process_grace": "5"}, "process_grace must be a finite number"),
        ({"processes": 0}, "processes must be at least 1"),
    ],
)
def test_settings_of_the_wrong_kind_or_range_are_refused_by_name(
    overrides: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        Settings().merged(**overrides)


def test_settings_accept_none_where_allowed_and_integers_for_seconds() -> None:
    settings = Settings().merged(processes=None, prefetch=None, poll_interval=1)
    assert settings.poll_interval == 1 and settings.processes is None


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
    with pytest.raises(ArgumentsNotSerializable, match=r"args\.big \(inf\)"):
        check_arguments({"big": float("inf")})


def test_to_job_sets_every_field_as_the_dataclass_would() -> None:
    # to_job fills the slots directly (model.job.job_from_values): a field added or moved in
    # Job must not shift the values into the wrong fields
    now = datetime(2030, 1, 1, tzinfo=UTC)
    log = LogLine(now, "skipped")
    for request in (
        NewJob(
            "a",
            queue="q",
            args={"n": 1},
            metadata={"m": "v"},
            priority=5,
            max_attempts=2,
            timeout=1.5,
            unique_key="u",
            recurring_name="r",
            concurrency_key="k",
        ),
        NewJob("b", run_at=datetime(2031, 1, 1, tzinfo=UTC)),
        NewJob("c", state=JobState.SKIPPED, logs=(log,)),
    ):
        job = request.to_job(now)
        run_at = request.run_at or now
        state = request.state or (JobState.SCHEDULED if run_at > now else JobState.PENDING)
        expected = Job(
            id=request.id, name=request.name, queue=request.queue, args=request.args,
            metadata=request.metadata, priority=request.priority, state=state,
            max_attempts=request.max_attempts, timeout=request.timeout, run_at=run_at,
            created_at=now, unique_key=request.unique_key, recurring_name=request.recurring_name,
            concurrency_key=request.concurrency_key, logs=request.logs,
            finished_at=now if state is JobState.SKIPPED else None,
        )  # fmt: skip
        assert job == expected
        assert [getattr(job, name) for name in JOB_FIELDS] == [
            getattr(expected, name) for name in JOB_FIELDS
        ]
