"""fast_acks: claims, acknowledgements and heartbeats skip the WAL flush wait; enqueue does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor.backends.records import ClaimRequest, Outcome
from conveyor.model.job import JobState, NewJob
from postgres.conftest import MakeStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def commit_mode_of(store: object, query: str, params: dict[str, object]) -> str:
    """synchronous_commit inside a transaction that ran `query` (rolled back after)."""
    db = store._db  # type: ignore[attr-defined]
    with db.connection() as conn, conn.transaction(force_rollback=True):
        conn.execute(db.queries[query], params)
        row = conn.execute("SHOW synchronous_commit").fetchone()
    return str(row["synchronous_commit"])


def test_claims_and_acks_commit_asynchronously_only_when_asked(make_store: MakeStore) -> None:
    params = {
        "now": T0,
        "limit": 1,
        "worker_id": "w",
        "lease_expires_at": T0,
        "excluded": [],
    }
    fast, durable = make_store(fast_acks="true"), make_store()
    fast.enqueue([NewJob("t")], T0)

    assert commit_mode_of(fast, "claim_any", {**params, "commit": "off"}) == "off"
    assert commit_mode_of(durable, "claim_any", {**params, "commit": None}) == "on"
    assert (fast.config.commit_mode, durable.config.commit_mode) == ("off", None)


def test_a_fast_acks_store_runs_jobs_like_any_other(make_store: MakeStore) -> None:
    store = make_store(fast_acks="true")
    store.enqueue([NewJob("t", queue="serial"), NewJob("u")], T0)
    lease = T0 + timedelta(seconds=30)

    jobs = store.claim(ClaimRequest("w", 5, T0, lease, queue_limits={"serial": 1})).jobs
    outcomes = [Outcome(j.id, "w", j.attempt, JobState.COMPLETED, T0) for j in jobs]

    assert len(jobs) == 2
    assert store.finish(outcomes) == []
    assert store.counts().by_state == {"completed": 2}
