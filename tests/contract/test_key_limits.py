"""Per-key concurrency above one (`key_concurrency`), the same on every store."""

from __future__ import annotations

import threading
from collections import Counter

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import at, claim, enqueue, finish, new, stored


def running_per_key(jobs: list[object]) -> Counter[str]:
    return Counter(j.concurrency_key for j in jobs)  # type: ignore[attr-defined]


def test_a_key_runs_up_to_its_limit_at_once(backend: Backend) -> None:
    enqueue(backend, *[new(concurrency_key="t:1", key_concurrency=2) for _ in range(5)])
    first = claim(backend, at(1), limit=10)
    assert len(first) == 2
    assert claim(backend, at(2), limit=10) == []  # the key is full
    finish(backend, first[0], JobState.COMPLETED, at(3))
    [third] = claim(backend, at(4), limit=10)
    assert third.key_concurrency == 2 and third.concurrency_key == "t:1"
    assert claim(backend, at(5), limit=10) == []


def test_a_full_key_does_not_hold_up_other_keys_or_plain_jobs(backend: Backend) -> None:
    busy = [new(concurrency_key="busy", key_concurrency=2, priority=5) for _ in range(20)]
    others = [new(concurrency_key=f"k{i}", key_concurrency=3) for i in range(3)]
    plain = [new(name="plain") for _ in range(2)]
    enqueue(backend, *busy, *others, *plain)
    taken = claim(backend, at(1), limit=4)
    assert running_per_key(taken)["busy"] == 2
    more = claim(backend, at(2), limit=10)
    counts = running_per_key(taken + more)
    assert counts["busy"] == 2  # never above its limit, though it has the highest priority
    assert {counts["k0"], counts["k1"], counts["k2"]} == {1}
    assert counts[None] == 2  # type: ignore[index]


def test_limits_of_one_and_of_several_coexist(backend: Backend) -> None:
    enqueue(
        backend,
        *[new(concurrency_key="serial") for _ in range(3)],
        *[new(concurrency_key="wide", key_concurrency=3) for _ in range(5)],
    )
    taken = claim(backend, at(1), limit=10) + claim(backend, at(2), limit=10)
    assert running_per_key(taken) == Counter({"serial": 1, "wide": 3})


def test_the_limit_is_stored_with_the_job(backend: Backend) -> None:
    [job] = enqueue(backend, new(concurrency_key="k", key_concurrency=7))
    assert job.key_concurrency == 7
    assert stored(backend, job.id).key_concurrency == 7
    [plain] = enqueue(backend, new(concurrency_key="k"))
    assert stored(backend, plain.id).key_concurrency == 1


def test_concurrent_claims_never_pass_a_key_limit(backend: Backend) -> None:
    limit, keys = 3, 4
    enqueue(
        backend,
        *[new(concurrency_key=f"k{i % keys}", key_concurrency=limit) for i in range(keys * 10)],
    )
    taken: list[object] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def claimer(n: int) -> None:
        start.wait()
        for round_ in range(3):
            jobs = claim(backend, at(1 + round_), worker=f"w{n}", limit=3)
            with lock:
                taken.extend(jobs)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = running_per_key(taken)
    assert counts == Counter({f"k{i}": limit for i in range(keys)})
