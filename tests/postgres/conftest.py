"""Fixtures for the PostgreSQL store's own tests: a fresh schema per test, and stores on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from postgres.server import fresh_schema, url_for

MakeStore = Callable[..., "PostgresBackend"]

psycopg = pytest.importorskip("psycopg", reason='psycopg missing: pip install -e ".[dev]"')

from conveyor.backends.postgres import PostgresBackend  # noqa: E402


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema name of this test alone, dropped at the end."""
    with fresh_schema() as name:
        yield name


@pytest.fixture
def make_store(schema: str) -> Iterator[MakeStore]:
    """Build stores on the test's schema (opened unless open=False); all closed at the end.

    Each store's connections carry application_name=<schema>, so a test can find (and
    terminate) exactly its own sessions on the shared server."""
    made: list[PostgresBackend] = []

    def make(*, open: bool = True, **options: str) -> PostgresBackend:
        store = PostgresBackend.from_url(url_for(schema, application_name=schema, **options))
        made.append(store)
        if open:
            store.open()
        return store

    yield make
    for store in reversed(made):
        store.close()
