"""Bulk enqueue: large batches take a COPY and keep every field, order and key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.backends.postgres.enqueue import COPY_THRESHOLD
from conveyor.backends.records import JobFilter
from conveyor.errors import DuplicateJobId
from conveyor.model.job import JobState, LogLine, NewJob
from postgres.conftest import MakeStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_large_batch_keeps_every_field_and_its_order(make_store: MakeStore) -> None:
    store = make_store()
    line = LogLine(T0, "made in bulk")
    requests = [
        NewJob(
            f"job{i}",
            queue=("a", "b")[i % 2],
            args={"i": i, "nested": {"x": [1.5, None, "é"]}},
            metadata={"trace": str(i)} if i % 3 == 0 else {},
            priority=i % 4,
            timeout=2.5 if i % 5 == 0 else None,
            run_at=T0 + timedelta(seconds=60) if i % 7 == 0 else None,
            concurrency_key=f"k{i}" if i % 11 == 0 else None,
            logs=(line,) if i % 13 == 0 else (),
        )
        for i in range(COPY_THRESHOLD * 2)
    ]

    results = store.enqueue(requests, T0)

    assert [r.job.name for r in results] == [f"job{i}" for i in range(len(requests))]
    assert all(r.created for r in results)
    for result in results[:40]:
        assert store.get(result.job.id) == result.job
    assert store.get(results[7].job.id).state is JobState.SCHEDULED  # type: ignore[union-attr]


def test_a_large_batch_keeps_the_characters_that_copy_escapes(make_store: MakeStore) -> None:
    store = make_store()
    tricky = "back\\slash\ttab\nnewline\rreturn \\N é \U0001f680"
    requests = [
        NewJob(
            f"job {tricky} {i}",
            id=f"id-{i}-{tricky}",
            queue=tricky,
            args={"text": tricky, "list": [tricky, "\\N"], tricky: None},
            metadata={"note": tricky},
            unique_key=None,
            concurrency_key=tricky if i == 0 else None,
            logs=(LogLine(T0, tricky),),
        )
        for i in range(COPY_THRESHOLD)
    ]

    results = store.enqueue(requests, T0)

    for request, result in zip(requests, results, strict=True):
        stored = store.get(request.id)
        assert stored == result.job
        assert stored is not None
        assert (stored.name, stored.queue, stored.args) == (request.name, tricky, request.args)
        assert stored.metadata == {"note": tricky}
        assert [line.message for line in stored.logs] == [tricky]


def test_unique_keys_in_a_large_batch_resolve_to_the_first_or_the_stored_job(
    make_store: MakeStore,
) -> None:
    store = make_store()
    [stored] = store.enqueue([NewJob("old", unique_key="held")], T0)
    requests = [NewJob(f"plain{i}") for i in range(COPY_THRESHOLD)]
    requests += [NewJob("first", unique_key="new"), NewJob("second", unique_key="new")]
    requests += [NewJob("dup", unique_key="held")]

    *plain, first, second, dup = store.enqueue(requests, T0)

    assert all(r.created for r in plain) and first.created
    assert (second.created, second.job.id) == (False, first.job.id)
    assert (dup.created, dup.job.id) == (False, stored.job.id)
    assert store.list_jobs(JobFilter()).total == COPY_THRESHOLD + 2


def test_a_repeated_id_is_refused_by_name_and_nothing_is_stored(make_store: MakeStore) -> None:
    store = make_store()
    store.enqueue([NewJob("a", id="taken")], T0)
    small = [NewJob("b", id="fresh"), NewJob("c", id="taken")]
    large = [NewJob("d") for _ in range(COPY_THRESHOLD)] + [NewJob("e", id="taken")]

    for batch in (small, large):
        with pytest.raises(DuplicateJobId, match="'taken' already exists"):
            store.enqueue(batch, T0)

    assert store.list_jobs(JobFilter()).total == 1
