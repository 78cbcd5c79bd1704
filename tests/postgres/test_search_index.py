"""The job search on PostgreSQL: a search reads the jobs_search trigram index (migration 13),
and pg_trgm lives outside every store's schema, so dropping one store leaves the others'."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from conveyor.backends.postgres import PostgresBackend
from conveyor.backends.records import LIST_COUNT_CAP, JobFilter
from conveyor.model.job import NewJob
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def explain(schema: str, store: PostgresBackend, params: dict[str, object]) -> str:
    with psycopg.connect(BASE_URL) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        # as autovacuum would: a bulk load's entries wait in GIN's pending list until merged
        conn.execute("SELECT gin_clean_pending_list('jobs_search')")
        conn.execute("ANALYZE jobs")
        conn.execute("SET plan_cache_mode = force_custom_plan")
        rows = conn.execute("EXPLAIN " + store._q["list_jobs_scan"], params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_a_search_reads_the_trigram_index(make_store: MakeStore, schema: str) -> None:
    store = make_store()
    jobs = [NewJob("send", args={"email": f"user{i}@example.org"}) for i in range(20_000)]
    store.enqueue(jobs, T0)
    nulls = dict.fromkeys(
        ("states", "name", "queue", "created_after", "created_before", "worker", "name_contains",
         "finished_after", "finished_before", "error_kind"),
    )  # fmt: skip
    params = {**nulls, "search": "%user1234@%", "count_limit": 10_001, "limit": 50, "offset": 0}

    plan = explain(schema, store, params)

    assert "Bitmap Index Scan on jobs_search" in plan, plan
    found = store.list_jobs(JobFilter(search="USER1234@"))
    assert [job.args["email"] for job in found.jobs] == ["user1234@example.org"]
    capped = store.list_jobs(JobFilter(search="example.org"))
    assert not capped.total_exact
    assert capped.estimate is not None and capped.estimate > LIST_COUNT_CAP


def test_pg_trgm_lives_outside_the_stores_schema(make_store: MakeStore, schema: str) -> None:
    make_store()
    with psycopg.connect(BASE_URL) as conn:
        row = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        ).fetchone()
    assert row is not None and row[0] != schema
