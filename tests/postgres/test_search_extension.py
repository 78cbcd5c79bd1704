"""Migration 13 stops with a clear message when pg_trgm cannot be created or used, and leaves
nothing behind. Each case runs in a database of its own (the test database has the extension
already), as a role that may create schemas, with conveyor_extensions made by someone else."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from conveyor.backends.postgres import PostgresBackend
from conveyor.errors import ConfigurationError
from postgres.server import BASE_URL, require_server

# (what the superuser prepares in conveyor_extensions, what the message says)
CASES = [
    (  # an object in the way: CREATE EXTENSION fails
        [
            "GRANT USAGE, CREATE ON SCHEMA conveyor_extensions TO {role}",
            "CREATE FUNCTION conveyor_extensions.similarity(text, text) RETURNS real"
            " LANGUAGE sql AS 'SELECT 0::real'",
        ],
        ["needs the PostgreSQL extension pg_trgm, which could not be created",
         "CREATE EXTENSION pg_trgm", "conveyor migrate"],
    ),
    (  # installed where the role may not look
        ["CREATE EXTENSION pg_trgm SCHEMA conveyor_extensions"],
        ["installed in schema conveyor_extensions, which this role",
         "GRANT USAGE ON SCHEMA conveyor_extensions TO", "conveyor migrate"],
    ),
]  # fmt: skip


@pytest.fixture(params=CASES, ids=["cannot-create", "cannot-use"])
def bare_database(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """(database = role name, expected words): both dropped at the end."""
    require_server()
    setup, words = request.param
    name = f"conveyor_noext_{secrets.token_hex(4)}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"GRANT CREATE ON DATABASE {name} TO {name}")
    try:
        with psycopg.connect(_in(name), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA conveyor_extensions")
            for statement in setup:
                conn.execute(statement.format(role=name))
        yield name, words
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def _in(database: str, role: str | None = None) -> str:
    """The test server's URL for `database` (as `role`)."""
    server = BASE_URL.split("@", 1)[1].rsplit("/", 1)[0]
    user = role or BASE_URL.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql://{user}@{server}/{database}"


def test_migration_13_says_what_to_do_about_pg_trgm(
    bare_database: tuple[str, list[str]],
) -> None:
    name, words = bare_database
    store = PostgresBackend.from_url(_in(name, role=name) + "?schema=app")

    with pytest.raises(ConfigurationError) as refused:
        store.open()

    message = str(refused.value)
    assert "migration 13 of the PostgreSQL schema 'app'" in message, message
    for word in words:
        assert word in message, message
    with psycopg.connect(_in(name)) as conn:  # the whole migration rolled back
        assert conn.execute("SELECT to_regclass('app.jobs')").fetchone() == (None,)
