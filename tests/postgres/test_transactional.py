"""Enqueue inside the application's own transaction: rolled back means no job."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from conveyor.backends.records import JobFilter
from conveyor.errors import QueueFull
from conveyor.model.job import JobState, NewJob
from conveyor.model.queues import QueueChange, QueueSettings
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


def _bound(store: Any, queue: str, size: int) -> None:
    settings = QueueSettings(max_size=size, when_full="wait")
    store.change_queue_settings(queue, QueueChange.from_code(settings), T0)


def test_a_full_queue_refuses_inside_a_transaction_and_keeps_the_callers_work(
    make_store: MakeStore,
) -> None:
    store = make_store()
    _bound(store, "imports", 2)

    with psycopg.connect(BASE_URL) as conn:
        conn.execute("CREATE TEMP TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (1)")
        [first] = store.enqueue_in(conn, [NewJob("load", queue="imports")], T0)
        with pytest.raises(QueueFull, match=r"queue 'imports' is full .*max_size=2"):
            # a full queue refuses at once in the caller's transaction, even in wait mode
            store.enqueue_in(conn, [NewJob("load", queue="imports") for _ in range(2)], T0)
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()
        assert orders == (1,)  # the caller's transaction goes on: only the batch was undone
        conn.commit()

    assert store.get(first.job.id) is not None
    assert store.list_jobs(JobFilter(queue="imports")).total == 1


def test_large_and_autocommit_batches_in_the_callers_connection_are_bounded(
    make_store: MakeStore,
) -> None:
    store = make_store()
    _bound(store, "bulk", 300)

    with psycopg.connect(BASE_URL) as conn:
        store.enqueue_in(conn, [NewJob("load", queue="bulk") for _ in range(250)], T0)
        with pytest.raises(QueueFull, match="'bulk'"):
            store.enqueue_in(conn, [NewJob("load", queue="bulk") for _ in range(250)], T0)
        conn.commit()
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        store.enqueue_in(conn, [NewJob("load", queue="bulk") for _ in range(50)], T0)
        with pytest.raises(QueueFull):
            store.enqueue_in(conn, [NewJob("load", queue="bulk")], T0)

    assert store.list_jobs(JobFilter(queue="bulk")).total == 300


async def test_async_connections_are_bounded_too(make_store: MakeStore) -> None:
    store = make_store()
    _bound(store, "imports", 1)

    async with await psycopg.AsyncConnection.connect(BASE_URL) as conn:
        await store.enqueue_in_async(conn, [NewJob("load", queue="imports")], T0)
        with pytest.raises(QueueFull, match="'imports'"):
            await store.enqueue_in_async(conn, [NewJob("load", queue="imports")], T0)
        await conn.commit()

    assert store.list_jobs(JobFilter(queue="imports")).total == 1
