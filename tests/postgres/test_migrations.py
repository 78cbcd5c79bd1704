"""Migrations: versioned files, a version table, harmless twice, safe when started at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from conveyor.backends.postgres.database import Database, PostgresConfig
from conveyor.backends.postgres.sql import migrations, render
from conveyor.errors import ConfigurationError
from conveyor.model.job import NewJob
from postgres.conftest import MakeStore
from postgres.server import BASE_URL, drop_schema, new_schema_name, url_for

CATALOG = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS detail
FROM information_schema.columns WHERE table_schema = %(schema)s
UNION ALL
SELECT 'index', tablename || '.' || indexname,
       replace(indexdef, %(schema)s, 'S')
FROM pg_indexes WHERE schemaname = %(schema)s
ORDER BY 1, 2
"""


def catalog(schema: str) -> list[tuple[Any, ...]]:
    """Every column and index of `schema`, with the schema name masked."""
    with psycopg.connect(BASE_URL) as conn:
        return conn.execute(CATALOG, {"schema": schema}).fetchall()


def versions(schema: str) -> list[int]:
    with psycopg.connect(BASE_URL) as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY 1')
        return [row[0] for row in rows]


def test_open_applies_every_migration_and_records_it(make_store: MakeStore, schema: str) -> None:
    make_store()

    assert versions(schema) == [version for version, _ in migrations()]
    assert any(name == "jobs.id" for _, name, _ in catalog(schema))


def test_opening_again_applies_nothing_and_keeps_the_jobs(make_store: MakeStore) -> None:
    first = make_store()
    [enqueued] = first.enqueue([NewJob("task")], datetime(2026, 1, 1, tzinfo=UTC))
    second = make_store()
    db = Database(second.config)

    with db.connect() as conn:
        assert db.migrate(conn) == []
    assert second.get(enqueued.job.id) == enqueued.job


def test_a_schema_migrated_step_by_step_equals_a_fresh_one(
    make_store: MakeStore, schema: str
) -> None:
    make_store()  # fresh: every migration at once
    stepwise = new_schema_name()
    try:
        (version, script), *later = migrations()
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{stepwise}"')
            conn.execute(render(script, stepwise).encode())
        db = Database(PostgresConfig.from_url(url_for(stepwise)))
        with db.connect() as conn:
            # the version table is created by the runner, so version 1 is recorded first
            conn.execute(db.queries["create_schema_version"])
            conn.execute(db.queries["record_version"], {"version": version})
            assert db.migrate(conn) == [v for v, _ in later]

        assert catalog(stepwise) == catalog(schema)
        assert versions(stepwise) == versions(schema)
    finally:
        drop_schema(stepwise)


def test_concurrent_opens_of_a_new_schema_all_succeed(make_store: MakeStore, schema: str) -> None:
    stores = [make_store(open=False) for _ in range(6)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_one(index: int) -> None:
        start.wait()
        try:
            stores[index].open()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert versions(schema) == [version for version, _ in migrations()]


def test_migrate_false_refuses_an_unmigrated_schema_until_migrated(make_store: MakeStore) -> None:
    store = make_store(open=False, migrate="false")

    assert store.pending_migrations() == [version for version, _ in migrations()]
    with pytest.raises(ConfigurationError, match="conveyor migrate"):
        store.open()

    assert store.migrate() == [version for version, _ in migrations()]
    assert store.migrate() == []
    store.open()
    assert store.pending_migrations() == []
