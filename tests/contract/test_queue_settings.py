"""Queue settings kept in the store: claims honour the stored concurrency with no limit in the
request, an operator's change wins over code's until it is reset, the same on every store."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState
from conveyor.model.queues import QueueChange, QueueSettings, StoredQueue

from .support import T0, at, claim, enqueue, finish, new


def code(backend: Backend, name: str, **settings: object) -> StoredQueue:
    """What an app declaring `app.queue(name, **settings)` writes when its store opens."""
    declared = QueueSettings(**settings)  # type: ignore[arg-type]
    return backend.change_queue_settings(name, QueueChange.from_code(declared), T0)


def operator(backend: Backend, name: str, **values: object) -> StoredQueue:
    """What `conveyor queues set NAME ...` writes."""
    return backend.change_queue_settings(name, QueueChange.by_operator(**values), T0)


def listed(backend: Backend) -> dict[str, tuple[QueueSettings, frozenset[str]]]:
    """Each listed queue's stored settings and operator marks."""
    return {q.name: (q.settings, q.operator_set) for q in backend.queues(at(1))}


def test_a_stored_concurrency_limits_claims_that_pass_no_limit(backend: Backend) -> None:
    code(backend, "serial", concurrency=1)
    enqueue(backend, *[new(queue="serial") for _ in range(3)], new(queue="free"))

    first = claim(backend, at(1), worker="w1", limit=10)
    assert sorted(j.queue for j in first) == ["free", "serial"]
    assert claim(backend, at(2), worker="w2", limit=10) == []
    assert claim(backend, at(2), worker="w2", limit=10, queues=["serial"]) == []

    [running] = [j for j in first if j.queue == "serial"]
    finish(backend, running, JobState.COMPLETED, at(3))
    assert [j.queue for j in claim(backend, at(4), worker="w2")] == ["serial"]


def test_a_raised_limit_applies_at_the_next_claim(backend: Backend) -> None:
    code(backend, "reports", concurrency=1)
    enqueue(backend, *[new(queue="reports") for _ in range(4)])
    assert len(claim(backend, at(1), worker="w1")) == 1

    operator(backend, "reports", concurrency=3)

    assert len(claim(backend, at(2), worker="w2")) == 2
    operator(backend, "reports", concurrency=None)
    assert len(claim(backend, at(3), worker="w3")) == 1


def test_a_limit_set_on_a_queue_that_had_none_applies_at_the_next_claim(
    backend: Backend,
) -> None:
    enqueue(backend, *[new(queue="mail") for _ in range(3)])
    assert len(claim(backend, at(1), limit=1)) == 1  # a claim with no limited queue first

    operator(backend, "mail", concurrency=1)

    assert claim(backend, at(2), worker="w2") == []
    operator(backend, "mail", concurrency=2)
    assert len(claim(backend, at(3), worker="w2")) == 1


def test_the_smaller_of_the_stored_and_the_requested_limit_wins(backend: Backend) -> None:
    code(backend, "q", concurrency=3)
    enqueue(backend, *[new(queue="q") for _ in range(5)])

    assert len(claim(backend, at(1), queue_limits={"q": 1})) == 1
    assert len(claim(backend, at(2), worker="w2")) == 2


def test_a_paused_limited_queue_is_not_claimed(backend: Backend) -> None:
    code(backend, "q", concurrency=2)
    enqueue(backend, new(queue="q"))
    backend.set_queue_paused("q", True, at(1))

    assert claim(backend, at(2)) == []
    backend.set_queue_paused("q", False, at(3))
    assert len(claim(backend, at(4))) == 1


def test_code_sets_every_field_an_operator_did_not(backend: Backend) -> None:
    code(backend, "imports", concurrency=2, max_size=100)
    operator(backend, "imports", concurrency=5)

    kept = code(backend, "imports", concurrency=1, max_size=50, when_full="refuse")

    assert kept.settings == QueueSettings(concurrency=5, max_size=50, when_full="refuse")
    assert kept.operator_set == {"concurrency"}
    assert listed(backend)["imports"] == (kept.settings, frozenset({"concurrency"}))


def test_an_operator_may_set_no_limit_and_code_does_not_bring_it_back(
    backend: Backend,
) -> None:
    code(backend, "reports", concurrency=1)
    operator(backend, "reports", concurrency=None)

    code(backend, "reports", concurrency=1)

    enqueue(backend, *[new(queue="reports") for _ in range(3)])
    assert len(claim(backend, at(1))) == 3


def test_a_reset_hands_the_settings_back_to_code(backend: Backend) -> None:
    code(backend, "reports", concurrency=1)
    operator(backend, "reports", concurrency=4, when_full="refuse")

    reset = backend.change_queue_settings(
        "reports", QueueChange.reset(QueueSettings(concurrency=1)), at(1)
    )
    assert reset == StoredQueue("reports", QueueSettings(concurrency=1))

    again = code(backend, "reports", concurrency=2)
    assert again.settings.concurrency == 2 and again.operator_set == frozenset()


def test_queues_with_settings_are_listed_and_defaults_are_not(backend: Backend) -> None:
    code(backend, "plain")
    code(backend, "limited", concurrency=2)
    operator(backend, "marked", when_full="wait")  # the default, but an operator set it

    got = listed(backend)

    assert sorted(got) == ["limited", "marked"]
    assert got["limited"] == (QueueSettings(concurrency=2), frozenset())
    assert got["marked"] == (QueueSettings(), frozenset({"when_full"}))
    enqueue(backend, new(queue="plain"))
    assert listed(backend)["plain"] == (QueueSettings(), frozenset())


def test_pausing_keeps_the_settings(backend: Backend) -> None:
    code(backend, "q", concurrency=2, max_size=10)
    backend.set_queue_paused("q", True, at(1))
    backend.set_queue_paused("q", False, at(2))

    [info] = [q for q in backend.queues(at(3)) if q.name == "q"]

    assert (info.paused, info.settings) == (False, QueueSettings(concurrency=2, max_size=10))
