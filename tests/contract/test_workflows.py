"""Jobs that wait on other jobs, and workflows: release, cascade, re-arm, reading them back."""

from __future__ import annotations

import pytest

from conveyor.backends.protocol import Backend
from conveyor.errors import InvalidWorkflow
from conveyor.model.job import JobState, NewJob

from .support import (
    T0,
    at,
    claim,
    claim_one,
    enqueue,
    enqueue_one,
    error,
    finish,
    new,
    outcome,
    stored,
)


def step(name: str, *parents: NewJob, workflow: str | None = None, **fields: object) -> NewJob:
    """A request waiting on `parents` (requests enqueued earlier or in the same batch)."""
    return new(name, after=tuple(p.id for p in parents), workflow_id=workflow, step=name, **fields)


def complete(backend: Backend, job_id: str, now: float = 2, result: object = None) -> None:
    """Claim `job_id` (it must be the only claimable job) and complete it."""
    running = claim_one(backend, at(now))
    assert running.id == job_id
    finish(backend, running, JobState.COMPLETED, at(now), result=result)


def fail(backend: Backend, job_id: str, now: float = 2) -> None:
    running = claim_one(backend, at(now))
    assert running.id == job_id
    finish(backend, running, JobState.FAILED, at(now), error=error(running.attempt))


def test_a_child_waits_and_is_released_when_its_parent_completes(backend: Backend) -> None:
    parent = new("fetch")
    child = step("clean", parent)
    stored_parent, stored_child = enqueue(backend, parent, child)

    assert stored_parent.state is JobState.PENDING
    assert stored_child.state is JobState.WAITING
    running = claim(backend, at(1))
    assert [job.id for job in running] == [parent.id]  # the waiting child is never claimed

    finish(backend, running[0], JobState.COMPLETED, at(2), result={"rows": 3})

    released = stored(backend, child.id)
    assert released.state is JobState.PENDING
    assert released.run_at == at(2)  # released now: it queues behind older work
    assert [job.id for job in claim(backend, at(3))] == [child.id]


def test_a_fan_in_child_is_released_once_by_its_last_parent(backend: Backend) -> None:
    parents = [new(f"part-{n}") for n in range(3)]
    child = step("merge", *parents)
    enqueue(backend, *parents, child)
    running = claim(backend, at(1))
    assert {job.id for job in running} == {p.id for p in parents}

    finish(backend, running[2], JobState.COMPLETED, at(2))
    finish(backend, running[0], JobState.COMPLETED, at(2))
    assert stored(backend, child.id).state is JobState.WAITING
    finish(backend, running[1], JobState.COMPLETED, at(3))

    assert stored(backend, child.id).state is JobState.PENDING
    assert [job.id for job in claim(backend, at(4))] == [child.id]


def test_parents_finishing_in_one_batch_release_their_child(backend: Backend) -> None:
    parents = [new("a"), new("b")]
    child = step("c", *parents)
    enqueue(backend, *parents, child)
    running = claim(backend, at(1))

    # finished together, as a worker acknowledges a batch
    outcomes = [outcome(job, JobState.COMPLETED, at(2)) for job in running]
    assert backend.finish(outcomes) == []

    assert stored(backend, child.id).state is JobState.PENDING


def test_a_released_child_with_a_later_run_at_is_scheduled(backend: Backend) -> None:
    parent = new("a")
    child = step("b", parent, run_at=at(100))
    enqueue(backend, parent, child)

    complete(backend, parent.id)

    released = stored(backend, child.id)
    assert (released.state, released.run_at) == (JobState.SCHEDULED, at(100))
    assert claim(backend, at(50)) == []
    assert [job.id for job in claim(backend, at(100))] == [child.id]


def test_a_failed_parent_cancels_its_descendants_naming_it(backend: Backend) -> None:
    parent = new("fetch")
    child = step("clean", parent)
    grandchild = step("publish", child)
    enqueue(backend, parent, child, grandchild)

    fail(backend, parent.id)

    cancelled = stored(backend, child.id)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == at(2)
    reason = cancelled.errors[-1]
    assert reason.kind == "parent"
    assert "fetch" in reason.message and parent.id in reason.message and "failed" in reason.message
    below = stored(backend, grandchild.id)
    assert below.state is JobState.CANCELLED
    assert "clean" in below.errors[-1].message and "cancelled" in below.errors[-1].message
    assert claim(backend, at(3)) == []


def test_a_step_added_to_run_anyway_runs_after_a_failed_parent(backend: Backend) -> None:
    parent = new("fetch")
    cleanup = step("cleanup", parent, on_parent_failure="run")
    strict = step("report", parent)
    enqueue(backend, parent, cleanup, strict)

    fail(backend, parent.id)

    assert stored(backend, cleanup.id).state is JobState.PENDING
    assert stored(backend, strict.id).state is JobState.CANCELLED
    assert [job.id for job in claim(backend, at(3))] == [cleanup.id]


def test_retrying_a_failed_parent_rearms_its_cancelled_descendants(backend: Backend) -> None:
    parent = new("fetch")
    child = step("clean", parent)
    grandchild = step("publish", child)
    enqueue(backend, parent, child, grandchild)
    fail(backend, parent.id)

    retried = backend.retry(parent.id, at(5))

    assert retried is not None and retried.state is JobState.PENDING
    for job_id in (child.id, grandchild.id):
        again = stored(backend, job_id)
        assert again.state is JobState.WAITING
        assert again.finished_at is None
    complete(backend, parent.id, now=6)
    assert stored(backend, child.id).state is JobState.PENDING
    complete(backend, child.id, now=7)
    assert stored(backend, grandchild.id).state is JobState.PENDING


def test_a_child_with_another_failed_parent_stays_cancelled_on_retry(backend: Backend) -> None:
    first, second = new("a", queue="a"), new("b", queue="b")
    child = step("c", first, second)
    enqueue(backend, first, second, child)
    for parent in (first, second):
        running = claim_one(backend, at(2), queues=[parent.queue])
        finish(backend, running, JobState.FAILED, at(2), error=error(1))

    backend.retry(first.id, at(3))
    assert stored(backend, child.id).state is JobState.CANCELLED  # `b` still failed

    backend.retry(second.id, at(4))
    assert stored(backend, child.id).state is JobState.WAITING


def test_retrying_a_cancelled_step_runs_it_whatever_its_parents_did(backend: Backend) -> None:
    parent = new("a")
    child = step("b", parent)
    enqueue(backend, parent, child)
    fail(backend, parent.id)

    again = backend.retry(child.id, at(3))

    assert again is not None and again.state is JobState.PENDING
    assert [job.id for job in claim(backend, at(4))] == [child.id]


def test_cancelling_a_job_cancels_the_jobs_waiting_on_it(backend: Backend) -> None:
    parent = new("a")
    child = step("b", parent)
    grandchild = step("c", child)
    enqueue(backend, parent, child, grandchild)

    cancelled = backend.cancel(child.id, at(1))

    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert stored(backend, grandchild.id).state is JobState.CANCELLED
    assert stored(backend, parent.id).state is JobState.PENDING  # upstream is untouched
    backend.cancel(parent.id, at(2))
    assert stored(backend, parent.id).state is JobState.CANCELLED


def test_a_lost_parent_without_attempts_left_cancels_its_child(backend: Backend) -> None:
    parent = new("a", max_attempts=1)
    child = step("b", parent)
    enqueue(backend, parent, child)
    claim_one(backend, at(1))

    backend.rescue_expired(at(1000))

    assert stored(backend, parent.id).state is JobState.FAILED
    assert stored(backend, child.id).state is JobState.CANCELLED


def test_a_job_may_wait_on_jobs_stored_earlier(backend: Backend) -> None:
    done = new("done")
    failed = new("failed", queue="other")
    running_parent = new("running", queue="third")
    enqueue(backend, done, failed, running_parent)
    complete(backend, done.id, now=1)
    fail_job = claim_one(backend, at(1), queues=["other"])
    finish(backend, fail_job, JobState.FAILED, at(1), error=error(1))
    claim_one(backend, at(1), queues=["third"])

    after_done, after_failed, after_running = enqueue(
        backend,
        new("x", after=(done.id,)),
        new("y", after=(failed.id,)),
        new("z", after=(running_parent.id,)),
        now=at(2),
    )

    assert after_done.state is JobState.PENDING  # its parent had completed already
    assert after_failed.state is JobState.CANCELLED
    assert after_failed.errors[-1].kind == "parent"
    assert after_running.state is JobState.WAITING


def test_an_unknown_or_later_parent_refuses_the_whole_batch(backend: Backend) -> None:
    first = new("first")
    with pytest.raises(InvalidWorkflow, match="no-such-job"):
        backend.enqueue([first, new("b", after=("no-such-job",))], T0)
    later = new("later")
    with pytest.raises(InvalidWorkflow, match=later.id):
        backend.enqueue([new("early", after=(later.id,)), later], T0)
    assert backend.get(first.id) is None and backend.get(later.id) is None
    assert backend.counts().by_state == {}


def test_a_workflow_is_read_back_with_its_steps_and_edges(backend: Backend) -> None:
    fetch = step("fetch", workflow="wf-1")
    clean = step("clean", fetch, workflow="wf-1")
    score = step("score", fetch, workflow="wf-1")
    publish = step("publish", clean, score, workflow="wf-1")
    results = backend.enqueue_workflow("wf-1", "nightly", [fetch, clean, score, publish], T0)

    assert [r.job.state for r in results] == [JobState.PENDING] + [JobState.WAITING] * 3
    stored_workflow = backend.workflow("wf-1")
    assert stored_workflow is not None
    assert (stored_workflow.name, stored_workflow.created_at) == ("nightly", T0)
    assert stored_workflow.step_names == ["fetch", "clean", "score", "publish"]
    assert set(stored_workflow.edges) == {
        (fetch.id, clean.id),
        (fetch.id, score.id),
        (clean.id, publish.id),
        (score.id, publish.id),
    }
    assert stored_workflow.state == "running"
    assert stored_workflow.step("publish").workflow_id == "wf-1"
    assert backend.workflow("no-such") is None


def test_workflows_are_listed_newest_first_with_counts(backend: Backend) -> None:
    for n in range(3):
        first = step("a", workflow=f"wf-{n}")
        backend.enqueue_workflow(
            f"wf-{n}",
            "nightly" if n else "hourly",
            [first, step("b", first, workflow=f"wf-{n}")],
            at(n),
        )
    complete(backend, backend.workflow("wf-0").step("a").id, now=5)  # type: ignore[union-attr]

    page = backend.list_workflows(1, 2)
    assert [w.id for w in page.workflows] == ["wf-2", "wf-1"]
    assert page.has_more
    assert page.workflows[0].counts == {"pending": 1, "waiting": 1}
    rest = backend.list_workflows(2, 2)
    assert [w.id for w in rest.workflows] == ["wf-0"] and not rest.has_more
    assert rest.workflows[0].counts == {"completed": 1, "pending": 1}
    named = backend.list_workflows(1, 10, "hourly")
    assert [w.id for w in named.workflows] == ["wf-0"]


def test_cancelling_a_workflow_cancels_its_unfinished_steps(backend: Backend) -> None:
    first = step("a", workflow="wf")
    side = step("side", workflow="wf")
    last = step("b", first, workflow="wf")
    backend.enqueue_workflow("wf", "w", [first, side, last], T0)
    running = claim(backend, at(1), limit=1)
    assert [job.id for job in running] == [first.id]

    cancelled = backend.cancel_workflow("wf", at(2))

    assert cancelled is not None
    states = {job.step: job.state for job in cancelled.steps}
    assert states == {"a": JobState.RUNNING, "side": JobState.CANCELLED, "b": JobState.CANCELLED}
    assert cancelled.step("a").cancel_requested
    assert backend.cancel_workflow("no-such", at(2)) is None


def test_parents_are_read_in_the_order_given_with_their_results(backend: Backend) -> None:
    a, b = new("a", queue="a"), new("b", queue="b")
    child = new("c", after=(b.id, a.id))
    enqueue(backend, a, b, child)
    for parent, value in ((a, 1), (b, 2)):
        running = claim_one(backend, at(1), queues=[parent.queue])
        finish(backend, running, JobState.COMPLETED, at(1), result={"v": value})

    parents = backend.parents(child.id)

    assert [(p.id, p.result) for p in parents] == [(b.id, {"v": 2}), (a.id, {"v": 1})]
    assert backend.parents(a.id) == []


def test_pruning_a_finished_workflow_forgets_it(backend: Backend) -> None:
    first = step("a", workflow="wf")
    second = step("b", first, workflow="wf")
    backend.enqueue_workflow("wf", "w", [first, second], T0)
    complete(backend, first.id, now=1)
    complete(backend, second.id, now=2)

    assert backend.prune(at(10), at(10)) == 2

    assert backend.workflow("wf") is None
    assert backend.parents(second.id) == []
    assert backend.list_workflows(1, 10).workflows == []


def test_a_waiting_job_counts_as_waiting(backend: Backend) -> None:
    parent = enqueue_one(backend)
    enqueue(backend, new("child", after=(parent.id,)))

    assert backend.counts().by_state == {"pending": 1, "waiting": 1}


def test_a_job_added_after_a_completed_parent_leaves_its_older_children_alone(
    backend: Backend,
) -> None:
    done, other = new("done", queue="a"), new("other", queue="b")
    older = new("older", after=(done.id, other.id))
    enqueue(backend, done, other, older)
    running = claim_one(backend, at(1), queues=["a"])
    finish(backend, running, JobState.COMPLETED, at(1))
    assert stored(backend, older.id).state is JobState.WAITING  # `other` is still pending

    [later] = enqueue(backend, new("later", after=(done.id,)), now=at(2))

    assert later.state is JobState.PENDING
    assert stored(backend, older.id).state is JobState.WAITING  # not released a second time
    running = claim_one(backend, at(3), queues=["b"])
    finish(backend, running, JobState.COMPLETED, at(3))
    assert stored(backend, older.id).state is JobState.PENDING
