"""Enqueue inside the application's own transaction: rolled back means no job."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from conveyor.backends.records import JobFilter
from conveyor.model.job import JobState, NewJob
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_rolled_back_transaction_leaves_no_job(make_store: MakeStore) -> None:
    store = make_store()

    with psycopg.connect(BASE_URL) as conn:
        [enqueued] = store.enqueue_in(conn, [NewJob("send_invoice")], T0)
        conn.rollback()

    assert store.get(enqueued.job.id) is None
    assert store.list_jobs(JobFilter()).total == 0


def test_a_committed_transaction_makes_the_job_visible_only_then(make_store: MakeStore) -> None:
    store = make_store()

    with psycopg.connect(BASE_URL) as conn:
        conn.execute("CREATE TEMP TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (1)")
        [enqueued] = store.enqueue_in(conn, [NewJob("ship", args={"order": 1})], T0)
        assert store.get(enqueued.job.id) is None  # not yet committed
        conn.commit()

    job = store.get(enqueued.job.id)
    assert job is not None
    assert (job.state, job.args) == (JobState.PENDING, {"order": 1})


def test_a_failing_application_transaction_takes_its_jobs_with_it(make_store: MakeStore) -> None:
    store = make_store()

    def place_order(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        with conn.transaction():
            store.enqueue_in(conn, [NewJob("a"), NewJob("b")], T0)
            conn.execute("SELECT 1 / 0")

    with psycopg.connect(BASE_URL) as conn, pytest.raises(psycopg.errors.DivisionByZero):
        place_order(conn)

    assert store.list_jobs(JobFilter()).total == 0


def test_a_commit_wakes_a_worker_listening_in_another_process(make_store: MakeStore) -> None:
    producer, worker = make_store(), make_store()
    assert worker.wait_for_jobs(0.01) is False  # LISTEN is in place before the commit
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(worker.wait_for_jobs(10)))

    with psycopg.connect(BASE_URL) as conn:
        producer.enqueue_in(conn, [NewJob("x")], T0)
        waiting.start()
        conn.commit()
    waiting.join(15)

    assert woke == [True]


def test_unique_keys_hold_inside_a_transaction(make_store: MakeStore) -> None:
    store = make_store()
    [first] = store.enqueue([NewJob("a", unique_key="k")], T0)

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        [again] = store.enqueue_in(conn, [NewJob("a", unique_key="k")], T0)

    assert (again.created, again.job.id) == (False, first.job.id)


def test_an_autocommit_connection_commits_the_jobs_at_once(make_store: MakeStore) -> None:
    store = make_store()

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        results = store.enqueue_in(conn, [NewJob("a"), NewJob("b")], T0)

    assert all(store.get(r.job.id) is not None for r in results)


async def test_async_connections_enqueue_inside_their_transaction(make_store: MakeStore) -> None:
    store = make_store()

    async with await psycopg.AsyncConnection.connect(BASE_URL) as conn:
        [kept] = await store.enqueue_in_async(conn, [NewJob("kept", unique_key="u")], T0)
        await conn.commit()
        [dropped, again] = await store.enqueue_in_async(
            conn, [NewJob("dropped"), NewJob("again", unique_key="u")], T0
        )
        await conn.rollback()

    assert store.get(kept.job.id) is not None
    assert store.get(dropped.job.id) is None
    assert (again.created, again.job.id) == (False, kept.job.id)
