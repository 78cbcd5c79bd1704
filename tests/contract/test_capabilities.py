"""What every store declares, and the optional capabilities, tested where declared.

A store's kind is never named here: a capability's tests run on every store that declares it
(an `isinstance` check on its runtime_checkable protocol) and skip on the others.
"""

from __future__ import annotations

import pytest

from conveyor.backends import open_backend
from conveyor.backends.protocol import (
    Backend,
    HistoryStore,
    MaintenanceStore,
    Migrating,
    OperatorStore,
    Producing,
    QueueStore,
    RecurringStore,
    StoreLifecycle,
    TransactionalEnqueue,
    WorkerStore,
)
from conveyor.model.settings import Settings

from .support import enqueue_one, stored

REQUIRED = (
    StoreLifecycle,
    Producing,
    WorkerStore,
    MaintenanceStore,
    OperatorStore,
    QueueStore,
    RecurringStore,
    HistoryStore,
    Backend,
)


@pytest.mark.parametrize("protocol", REQUIRED, ids=lambda p: p.__name__)
def test_every_store_implements_every_required_protocol(backend: Backend, protocol: type) -> None:
    assert isinstance(backend, protocol)


def test_a_capability_is_declared_by_every_verb_it_needs(backend: Backend) -> None:
    # isinstance on a protocol only checks the names exist; a declared capability must also
    # have them callable, or a caller would fail later and further from the cause.
    for capability, verbs in (
        (TransactionalEnqueue, ("enqueue_in", "enqueue_in_async")),
        (Migrating, ("migrate", "schema_version")),
    ):
        if isinstance(backend, capability):
            assert all(callable(getattr(backend, verb)) for verb in verbs)


def migrating(backend: Backend) -> Migrating:
    """The store as a Migrating one; skips the test for a store that is not."""
    if not isinstance(backend, Migrating):
        pytest.skip("this store declares no versioned schema (not a Migrating store)")
    return backend


def test_migrate_on_an_up_to_date_store_applies_nothing_and_keeps_the_jobs(
    backend: Backend,
) -> None:
    store = migrating(backend)
    job = enqueue_one(backend)
    version = store.schema_version()

    assert store.migrate() == []

    assert version is not None and version >= 1
    assert store.schema_version() == version
    assert stored(backend, job.id) == job


def test_migrate_before_open_builds_the_schema_open_then_finds(store_url: str) -> None:
    fresh = open_backend(store_url, Settings())
    store = migrating(fresh)
    try:
        applied = store.migrate()
        assert applied and applied == sorted(applied)
        assert store.schema_version() == applied[-1]
        assert store.migrate() == []
        fresh.open()
        assert store.schema_version() == applied[-1]
    finally:
        fresh.close()
