"""The test PostgreSQL server: where it is, a fresh schema per test, skip or fail if absent.

CONVEYOR_TEST_POSTGRES overrides the server URL. When the server cannot be reached the tests
skip locally and fail in CI (CI=true), where the server must be started first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

BASE_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def _unreachable() -> str | None:
    """Why the server cannot be used, or None when it can (asked once per run)."""
    try:
        import psycopg
    except ImportError:
        return 'psycopg is not installed (pip install -e ".[dev]")'
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {BASE_URL} is not reachable: {str(exc).strip()}"
    return None


def require_server() -> None:
    """Skip the test (locally) or fail it (in CI) when the server is not there."""
    reason = _unreachable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; CI must start PostgreSQL before the tests", pytrace=False)
    pytest.skip(f"{reason}; start it (pg_ctlcluster ... start) to run these tests")


def new_schema_name() -> str:
    """A schema name no other test run uses."""
    return f"conveyor_test_{secrets.token_hex(6)}"


def url_for(schema: str, **options: str) -> str:
    """The store URL of `schema` on the test server."""
    query = "&".join(f"{key}={value}" for key, value in {"schema": schema, **options}.items())
    return f"{BASE_URL}?{query}"


def drop_schema(schema: str) -> None:
    """Remove a test schema and everything in it."""
    import psycopg

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new schema name, dropped at the end (the server must be reachable)."""
    require_server()
    schema = new_schema_name()
    try:
        yield schema
    finally:
        drop_schema(schema)
