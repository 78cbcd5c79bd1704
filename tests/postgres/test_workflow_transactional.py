"""A workflow stored inside the application's own transaction: all its steps, or none."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from conveyor.errors import InvalidWorkflow
from conveyor.model.job import JobState, NewJob
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def steps(workflow_id: str) -> list[NewJob]:
    first = NewJob("fetch", workflow_id=workflow_id, step="fetch")
    return [first, NewJob("publish", after=(first.id,), workflow_id=workflow_id, step="publish")]


def test_a_rolled_back_transaction_leaves_no_workflow(make_store: MakeStore) -> None:
    store = make_store()

    with psycopg.connect(BASE_URL) as conn:
        store.enqueue_workflow_in(conn, "wf-1", "nightly", steps("wf-1"), T0)
        assert store.workflow("wf-1") is None  # not committed yet
        conn.rollback()

    assert store.workflow("wf-1") is None
    assert store.counts().by_state == {}


def test_a_committed_transaction_stores_every_step(make_store: MakeStore) -> None:
    store = make_store()

    with psycopg.connect(BASE_URL) as conn:
        conn.execute("CREATE TEMP TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (1)")
        store.enqueue_workflow_in(conn, "wf-2", "nightly", steps("wf-2"), T0)
        conn.commit()

    stored = store.workflow("wf-2")
    assert stored is not None
    assert [job.state for job in stored.steps] == [JobState.PENDING, JobState.WAITING]


def test_an_unknown_parent_fails_the_callers_transaction_cleanly(make_store: MakeStore) -> None:
    store = make_store()
    bad = [NewJob("x", after=("no-such-job",), workflow_id="wf-3", step="x")]

    with psycopg.connect(BASE_URL) as conn:
        conn.execute("CREATE TEMP TABLE orders (id int)")
        with pytest.raises(InvalidWorkflow, match="no-such-job"):
            store.enqueue_workflow_in(conn, "wf-3", "bad", bad, T0)
        conn.execute("INSERT INTO orders VALUES (1)")  # the caller's transaction still works
        conn.commit()

    assert store.workflow("wf-3") is None


def test_a_job_waiting_on_another_joins_the_callers_transaction(make_store: MakeStore) -> None:
    store = make_store()
    [parent] = store.enqueue([NewJob("parent")], T0)

    with psycopg.connect(BASE_URL) as conn:
        [child] = store.enqueue_in(conn, [NewJob("child", after=(parent.job.id,))], T0)
        assert store.get(child.job.id) is None
        conn.commit()

    stored = store.get(child.job.id)
    assert stored is not None and stored.state is JobState.WAITING
    assert [p.id for p in store.parents(child.job.id)] == [parent.job.id]
