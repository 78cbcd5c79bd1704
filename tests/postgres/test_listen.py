"""Wake-ups across processes: LISTEN on a dedicated connection, renewed after a loss."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from conveyor.model.job import NewJob
from helpers import wait_until
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

if TYPE_CHECKING:
    from conveyor.backends.postgres import PostgresBackend

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def wait_in_thread(store: PostgresBackend, timeout: float) -> tuple[threading.Thread, list[bool]]:
    """Start `store.wait_for_jobs(timeout)` in a thread; return once it is listening.

    The signal is the store's listener lock: a waiter holds it for the whole wait, and once it
    holds it (and the LISTEN connection exists) its next step is the blocking read of
    notifications. No signal marks the instant that read starts, but none is needed: a
    notification sent before it is buffered on the LISTEN connection and read at once."""
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(store.wait_for_jobs(timeout)))
    thread.start()
    db = store._db
    wait_until(
        lambda: (db._listener_lock.locked() and db._listener is not None) or not thread.is_alive(),
        10,
        "the waiting thread to hold the LISTEN connection",
    )
    return thread, woke


def test_an_enqueue_from_another_store_wakes_the_waiter_at_once(make_store: MakeStore) -> None:
    worker, producer = make_store(), make_store()
    assert worker.wait_for_jobs(0.01) is False  # listening from here on
    thread, woke = wait_in_thread(worker, 30)

    started = time.monotonic()
    producer.enqueue([NewJob("x")], T0)
    thread.join(40)

    assert woke == [True]
    # Generous upper bound (a wake-up takes milliseconds): proves we were woken rather than
    # waiting out the 30 s timeout.
    assert time.monotonic() - started < 5


def test_stores_on_other_schemas_do_not_wake_each_other(make_store: MakeStore) -> None:
    from conveyor.backends.postgres import PostgresBackend
    from postgres.server import fresh_schema, url_for

    worker = make_store()
    assert worker.wait_for_jobs(0.01) is False
    with fresh_schema() as other_schema:
        other = PostgresBackend.from_url(url_for(other_schema))
        other.open()
        try:
            other.enqueue([NewJob("x")], T0)
            assert worker.wait_for_jobs(0.3) is False
        finally:
            other.close()


def test_listen_is_renewed_after_the_connection_is_lost(make_store: MakeStore, schema: str) -> None:
    worker, producer = make_store(), make_store()
    assert worker.wait_for_jobs(0.01) is False
    listener = worker._db._listener
    assert listener is not None
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,))

    # The loss is noticed and reported as a possible wake-up (notifications may be lost)...
    deadline = time.monotonic() + 10
    while worker.wait_for_jobs(0.2) is False:
        assert time.monotonic() < deadline, "the lost LISTEN connection went unnoticed"
    # ...then the renewed LISTEN hears new work again.
    while worker.wait_for_jobs(0.05):
        pass
    thread, woke = wait_in_thread(worker, 10)
    producer.enqueue([NewJob("x")], T0)
    thread.join(15)
    assert woke == [True]
    assert worker._db._listener is not None
    assert worker._db._listener.info.backend_pid != listener.info.backend_pid


def test_close_ends_a_wait(make_store: MakeStore) -> None:
    worker = make_store()
    thread, woke = wait_in_thread(worker, 30)  # holds the LISTEN connection it opened

    started = time.monotonic()
    worker.close()
    thread.join(10)

    assert woke == [False]
    # Generous upper bound (the waiter checks for close every 0.25 s): proves close() ended
    # the wait rather than the 30 s timeout.
    assert time.monotonic() - started < 5


def test_a_forked_child_uses_connections_of_its_own(make_store: MakeStore) -> None:
    import os

    store, producer = make_store(), make_store()
    assert store.wait_for_jobs(0.01) is False  # the parent listens
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: enqueue and wait through the inherited store object
        code = 1
        try:
            store.enqueue([NewJob("from-child")], T0)
            code = 0 if store.counts().by_state == {"pending": 1} else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == bytes([0])
    # the parent's own connections were left intact, and it heard the child's enqueue
    assert store.wait_for_jobs(5) is True
    producer.enqueue([NewJob("x")], T0)
    assert store.counts().by_state == {"pending": 2}
