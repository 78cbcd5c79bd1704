"""The prefetch plan: how many claimed jobs a worker holds ready for its next free slot."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.model.job import Job, JobState
from conveyor.runtime.prefetch import AHEAD_PER_SLOT, MIN_COVER, PrefetchPlan, ReadyJobs


def test_nothing_is_held_ready_until_a_claim_and_a_run_were_measured() -> None:
    plan = PrefetchPlan(concurrency=10, limit=None)
    assert plan.target() == 0
    plan.claimed(0.002)
    assert plan.target() == 0
    plan.ran(0.0001)
    assert plan.target() == 10 * AHEAD_PER_SLOT  # slots finish 200 during a claim: capped


def test_jobs_shorter_than_a_claim_fill_up_to_the_limit() -> None:
    plan = PrefetchPlan(concurrency=10, limit=4)
    plan.claimed(0.002)
    plan.ran(0.00001)
    assert plan.target() == 4


def test_short_jobs_longer_than_a_claim_still_fill_a_stretch_of_work() -> None:
    plan = PrefetchPlan(concurrency=10, limit=None)
    plan.claimed(0.002)
    plan.ran(0.02)  # ten slots finish one job during a claim, fifteen in MIN_COVER
    assert plan.target() == int(10 / 0.02 * MIN_COVER) == 15


def test_jobs_longer_than_a_claim_get_proportionally_fewer_or_none() -> None:
    plan = PrefetchPlan(concurrency=10, limit=None)
    plan.claimed(0.02)
    plan.ran(0.05)  # ten slots finish four jobs during one (slow) claim
    assert plan.target() == 4
    slow = PrefetchPlan(concurrency=10, limit=None)
    slow.claimed(0.002)
    slow.ran(1.0)
    assert slow.target() == 0


def test_a_limit_of_zero_never_holds_jobs_ready() -> None:
    plan = PrefetchPlan(concurrency=10, limit=0)
    plan.claimed(0.5)
    plan.ran(0.00001)
    assert plan.target() == 0


def test_a_stall_stops_prefetching_until_short_jobs_bring_the_average_down() -> None:
    plan = PrefetchPlan(concurrency=10, limit=None)
    plan.claimed(0.002)
    plan.ran(0.0001)
    plan.stalled(0.3)
    assert plan.target() == 0
    for _ in range(100):
        plan.ran(0.0001)
    assert plan.target() == 10 * AHEAD_PER_SLOT


def _job(n: int) -> Job:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Job(
        id=f"job-{n}", name="t", queue="default", args={}, state=JobState.RUNNING,
        run_at=now, created_at=now, max_attempts=1,
    )  # fmt: skip


def test_ready_jobs_come_out_oldest_first_and_can_be_taken_out_by_id() -> None:
    ready = ReadyJobs()
    assert ready.next() is None
    assert ready.oldest_wait() == 0.0
    for n in range(3):
        ready.add(_job(n))
    assert "job-1" in ready
    assert ready.remove("job-1") is not None
    assert ready.remove("job-1") is None
    assert [job.id for job in ready] == ["job-0", "job-2"]
    first = ready.next()
    assert first is not None and first.id == "job-0"
    assert [job.id for job in ready.take_all()] == ["job-2"]
    assert len(ready) == 0
