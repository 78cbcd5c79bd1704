"""The claims' cached (generic) plans walk the due index in claim order on a table that was
never analysed, as a burst into a new store meets it: a bitmap scan of every due job and a sort
cost a claim time that grows with the backlog (5 ms at 10,000 due against under 1 ms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from conveyor.backends.postgres import PostgresBackend
from conveyor.backends.records import ClaimRequest
from conveyor.model.job import NewJob
from postgres.conftest import MakeStore
from postgres.server import BASE_URL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def generic_plan(schema: str, store: PostgresBackend, name: str, params: dict[str, Any]) -> str:
    """The plan PostgreSQL caches for the named statement once prepared (as psycopg does from
    a statement's sixth run), executed and explained by auto_explain, read as a notice."""
    notices: list[str] = []
    with psycopg.connect(BASE_URL) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute("SET client_min_messages = log")
        conn.execute(store._q[name], params, prepare=True).fetchall()
        conn.rollback()  # the claim is explained, not kept
    plans = [text for text in notices if "Query Text" in text or "->" in text]
    assert plans, f"auto_explain reported no plan: {notices}"
    return "\n".join(plans)


def claim_params(**extra: Any) -> dict[str, Any]:
    return {
        "now": T0,
        "limit": 30,
        "worker_id": "w",
        "lease_expires_at": T0 + timedelta(minutes=5),
        "commit": None,
        **extra,
    }


@pytest.mark.parametrize(
    ("statement", "extra", "index"),
    [
        ("claim_any", {"excluded": []}, "jobs_due"),
        ("claim_in", {"queues": ["default"]}, "jobs_due_by_queue"),
    ],
)
def test_a_claims_generic_plan_walks_the_due_index_in_order(
    make_store: MakeStore, schema: str, statement: str, extra: dict[str, Any], index: str
) -> None:
    store = make_store()
    store.enqueue([NewJob("t", run_at=T0 - timedelta(seconds=1)) for _ in range(3000)], T0)
    plan = generic_plan(schema, store, statement, claim_params(**extra))
    assert f"Index Scan using {index} on jobs j " in plan, plan
    assert "Bitmap Heap Scan on jobs j " not in plan, plan


def test_a_claim_of_all_queues_reads_around_a_paused_queues_backlog(
    make_store: MakeStore, schema: str
) -> None:
    store = make_store()
    store.set_queue_paused("held", True, T0)
    earlier = T0 - timedelta(hours=1)  # first in claim order
    store.enqueue([NewJob("b", queue="held", run_at=earlier) for _ in range(3000)], T0)
    store.enqueue([NewJob("f", queue="fast") for _ in range(10)], T0)
    store.enqueue([NewJob("s", queue="slow") for _ in range(10)], T0)
    first = store.claim(request("w", 5))
    assert {job.queue for job in first.jobs} <= {"fast", "slow"} and len(first.jobs) == 5
    # a paused queue is there: the claims of all queues read the others one by one
    assert store._excluding
    with psycopg.connect(BASE_URL) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        waiting = [row[0] for row in conn.execute(store._q["waiting_queues"], {"most": 33})]
    assert sorted(waiting) == ["fast", "slow"]
    plan = generic_plan(schema, store, "claim_in", claim_params(queues=waiting))
    assert "held" not in plan
    then = store.claim(request("w", 30))
    assert sorted(job.queue for job in then.jobs) == ["fast"] * 5 + ["slow"] * 10
    store.set_queue_paused("held", False, T0)
    resumed = store.claim(request("w", 30))  # learns the pause is over, and walks again
    assert not store._excluding and len(resumed.jobs) == 30


def request(worker: str, limit: int) -> ClaimRequest:
    return ClaimRequest(worker, limit, T0, T0 + timedelta(minutes=5))
