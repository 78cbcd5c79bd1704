"""A row written around the validator fails alone at claim time; its neighbours run.

The row is corrupted with the store's own SQL (as a producer in another language, or a hand
edit, could); everything else goes through the public API.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import App, Context, JobState
from postgres.server import BASE_URL, fresh_schema, url_for

Corrupt = Callable[[str, str], None]  # (job id, SQL SET clause)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Corrupt]]:
    """A store URL and a function that rewrites one job's row with raw SQL."""
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"

        def corrupt_sqlite(job_id: str, assignment: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(f"UPDATE conveyor_jobs SET {assignment} WHERE id = ?", (job_id,))

        yield f"sqlite:///{path}", corrupt_sqlite
        return
    import psycopg

    with fresh_schema() as schema:

        def corrupt_postgres(job_id: str, assignment: str) -> None:
            with psycopg.connect(BASE_URL, autocommit=True) as conn:
                conn.execute(
                    f'UPDATE "{schema}".jobs SET {assignment} WHERE id = %s',  # type: ignore[arg-type]
                    (job_id,),
                )

        yield url_for(schema), corrupt_postgres


CORRUPTIONS = {
    "sqlite": ["priority = 'high'", "args = '[1, 2]'", "args = 'not json'", "timeout = 'x'"],
    "postgres": ["args = '[1, 2]'::jsonb", "metadata = '\"text\"'::jsonb"],
}


def test_one_malformed_row_fails_alone_and_the_others_run(
    store: tuple[str, Corrupt], request: pytest.FixtureRequest
) -> None:
    url, corrupt = store
    kind = url.split(":", 1)[0].replace("postgresql", "postgres")
    app = App(url)
    ran: list[int] = []

    @app.job
    def work(ctx: Context, n: int) -> int:
        ran.append(n)
        return n

    try:
        for assignment in CORRUPTIONS[kind]:
            ran.clear()
            handles = [work.enqueue(n=n) for n in range(10)]
            bad = handles[4]
            corrupt(bad.id, assignment)

            app.testing.drain()

            states = {h.id: h.refresh().state for h in handles}
            assert states.pop(bad.id) is JobState.FAILED, assignment
            assert set(states.values()) == {JobState.COMPLETED}, assignment
            assert sorted(ran) == [n for n in range(10) if n != 4]
            failed = app.jobs.get(bad.id)
            assert failed is not None
            [error] = failed.errors
            assert error.kind == "malformed"
            assert "the stored job cannot be run" in error.message
            assert app.jobs.counts().by_state.get("running", 0) == 0
    finally:
        app.close()
