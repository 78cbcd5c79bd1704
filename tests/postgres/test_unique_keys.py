"""Unique keys under concurrency: batches sharing keys in any order never deadlock, and a
key whose holder finishes during an enqueue is taken by the new job."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.backends.postgres import enqueue as enqueue_module
from conveyor.model.job import Enqueued, JobState, NewJob
from postgres.conftest import MakeStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROUNDS = 40
KEYS = 12


def test_batches_sharing_keys_in_opposite_orders_never_deadlock(make_store: MakeStore) -> None:
    stores = [make_store(), make_store()]
    start = threading.Barrier(len(stores))
    answers: list[list[list[Enqueued]]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def produce(index: int) -> None:
        try:
            for round_ in range(ROUNDS):
                keys = [f"r{round_}-k{k}" for k in range(KEYS)]
                if index % 2:
                    keys.reverse()  # the other producer's order, backwards
                batch = [NewJob("job", unique_key=key) for key in keys]
                start.wait(timeout=30)  # both send the round's batch at once
                answers[index].append(stores[index].enqueue(batch, T0))
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    for round_ in range(ROUNDS):
        by_key: dict[str, set[str]] = {}
        created = 0
        for producer in answers:
            for result in producer[round_]:
                by_key.setdefault(result.job.unique_key or "", set()).add(result.job.id)
                created += result.created
        assert all(len(ids) == 1 for ids in by_key.values())  # both told of the same job
        assert len(by_key) == KEYS and created == KEYS  # one creator per key


def test_a_key_whose_holder_finishes_during_the_enqueue_goes_to_the_new_job(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = make_store(), make_store()
    holder = store.enqueue([NewJob("job", unique_key="report")], T0)[0].job
    real_execute = enqueue_module._execute
    looked_up = []

    def holder_cancelled_after_the_insert(
        cur: Any, query: str, params: Any, retry: bool = False
    ) -> list[Any]:
        rows = real_execute(cur, query, params, retry)
        if query is store._q["insert_jobs"] and not looked_up:
            looked_up.append(True)
            other.cancel(holder.id, T0)  # finishes before the look-up of the key's holder
        return rows

    monkeypatch.setattr(enqueue_module, "_execute", holder_cancelled_after_the_insert)
    [result] = store.enqueue([NewJob("job", unique_key="report")], T0)

    assert result.created and result.job.id != holder.id
    assert store.get(result.job.id) == result.job
    assert store.get(holder.id).state is JobState.CANCELLED  # type: ignore[union-attr]
