"""Connection failures surface as StoreUnavailable saying where and what to do."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from conveyor.backends import open_backend
from conveyor.backends.postgres import PostgresBackend, PostgresConfig
from conveyor.errors import ConfigurationError, StoreUnavailable
from conveyor.model.job import NewJob
from conveyor.model.settings import Settings
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_unreachable_server_fails_open_with_a_clear_error() -> None:
    store = PostgresBackend.from_url("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")

    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/test") as raised:
        store.open()

    assert "pg_isready" in str(raised.value)
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)


def test_a_store_that_is_not_open_says_so() -> None:
    store = PostgresBackend.from_url(f"{BASE_URL}?schema=never_opened")

    with pytest.raises(StoreUnavailable, match="not open"):
        store.enqueue([NewJob("x")], T0)
    with pytest.raises(StoreUnavailable, match="not open"):
        store.wait_for_jobs(0.01)


def test_a_closed_store_says_so(make_store: MakeStore) -> None:
    store = make_store()
    store.close()

    with pytest.raises(StoreUnavailable):
        store.get("x")


def test_lost_connections_raise_store_unavailable_then_recover(
    make_store: MakeStore, schema: str
) -> None:
    store = make_store(pool_min="2", pool_max="2")
    store.enqueue([NewJob("x")], T0)
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (schema,),
        )

    messages: list[str] = []
    deadline = time.monotonic() + 15
    while True:
        try:
            assert store.counts().by_state == {"pending": 1}
            break
        except StoreUnavailable as exc:
            messages.append(str(exc))
            assert time.monotonic() < deadline, "the pool never recovered"
            time.sleep(0.05)
    # the pool replaces connections the server closed before handing them out, so most often
    # no call fails; a connection killed while in use fails that one call, once
    assert len(messages) <= 2
    assert all("127.0.0.1:5432/test" in message for message in messages)


def test_url_options_are_read_and_the_rest_passed_to_libpq() -> None:
    config = PostgresConfig.from_url(
        "postgresql://u@db.example:6543/app?schema=tenant_a&pool_max=3&sslmode=disable"
    )

    assert (config.schema, config.pool_min, config.pool_max) == ("tenant_a", 1, 3)
    assert "sslmode=disable" in config.conninfo
    assert "schema" not in config.conninfo
    assert config.target == "db.example:6543/app as u"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db?schema=bad-name",
        "postgresql://u@h/db?schema=1abc",
        "postgresql://u@h/db?pool_max=many",
        "postgresql://u@h/db?pool_min=5&pool_max=2",
        "postgresql://u@h/db?stall_timeout=soon",
        "postgresql://u@h/db?stall_timeout=-1",
    ],
)
def test_bad_options_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresConfig.from_url(url)


def test_open_backend_knows_both_schemes() -> None:
    for scheme in ("postgresql", "postgres"):
        store = open_backend(f"{scheme}://u@h/db?schema=s", Settings())
        assert isinstance(store, PostgresBackend)


def test_libpq_options_with_spaces_reach_the_server(make_store: MakeStore) -> None:
    store = make_store(options="-c%20statement_timeout%3D12345")

    with store._db.connection() as conn:
        row = conn.execute("SHOW statement_timeout").fetchone()

    assert row == {"statement_timeout": "12345ms"}


def test_a_session_stalled_inside_a_transaction_is_ended_and_frees_its_locks(
    make_store: MakeStore,
) -> None:
    """A worker stopped mid-transaction (SIGSTOP, a paused VM) must not hold the locks other
    workers wait on for longer than stall_timeout."""
    store = make_store(stall_timeout="0.5")
    default = make_store()
    with default._db.connection() as conn:
        shown = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert shown == {"idle_in_transaction_session_timeout": "10s"}  # the default
    with store._db.connection() as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(4242)")
        # and then this "process" stalls, its transaction open
        with psycopg.connect(BASE_URL, autocommit=True) as other:
            deadline = time.monotonic() + 10
            while not other.execute("SELECT pg_try_advisory_xact_lock(4242)").fetchone()[0]:
                assert time.monotonic() < deadline, "the stalled session kept its lock"
                time.sleep(0.05)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            conn.execute("SELECT 1")  # its session was ended by the server
    assert store.counts().by_state == {}  # the pool replaced the connection
