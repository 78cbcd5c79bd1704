"""The App's transactional enqueue on PostgreSQL, sync and async, and its refusal elsewhere."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

import conveyor
from postgres.server import BASE_URL, drop_schema, new_schema_name, require_server, url_for


@pytest.fixture
def app() -> Iterator[conveyor.App]:
    require_server()
    schema = new_schema_name()
    application = conveyor.App(url_for(schema))

    @application.job(name="welcome")
    async def welcome(ctx: conveyor.Context, user_id: int) -> int:
        return user_id

    yield application
    application.close()
    drop_schema(schema)


def test_rolled_back_means_no_job_committed_means_the_job(app: conveyor.App) -> None:
    with psycopg.connect(BASE_URL) as conn:
        handle = app.enqueue("welcome", {"user_id": 1}, connection=conn)
        conn.rollback()
    assert app.jobs.get(handle.id) is None
    with psycopg.connect(BASE_URL) as conn:
        kept = app.enqueue("welcome", {"user_id": 2}, connection=conn)
        assert app.jobs.get(kept.id) is None  # not visible before the commit
        conn.commit()
    assert app.jobs.require(kept.id).args == {"user_id": 2}


async def test_async_connection_joins_the_transaction(app: conveyor.App) -> None:
    async with await psycopg.AsyncConnection.connect(BASE_URL) as conn:
        handle = await app.enqueue_async("welcome", {"user_id": 3}, connection=conn)
        await conn.rollback()
        kept = await app.enqueue_async("welcome", {"user_id": 4}, connection=conn)
        await conn.commit()
    assert app.jobs.get(handle.id) is None
    async with app.worker():
        assert (await kept.wait_async(20)).result == 4


def test_other_stores_refuse_a_connection() -> None:
    app = conveyor.App("memory://")
    app.declare("welcome")
    with pytest.raises(conveyor.ConfigurationError, match="needs a postgresql:// store"):
        app.enqueue("welcome", {}, connection=object())
