"""Paused queues, queue statistics and throughput, the same on every store."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import T0, at, claim, enqueue, finish, new


def test_a_paused_queue_is_never_claimed_until_resumed(backend: Backend) -> None:
    enqueue(backend, new(queue="mail"), new(queue="reports"))
    backend.set_queue_paused("mail", True, T0)
    assert [j.queue for j in claim(backend, at(1))] == ["reports"]
    assert claim(backend, at(2), queues=["mail"]) == []
    assert claim(backend, at(2), queue_limits={"mail": 1}) == []
    backend.set_queue_paused("mail", False, at(3))
    assert [j.queue for j in claim(backend, at(4))] == ["mail"]


def test_queue_statistics(backend: Backend) -> None:
    enqueue(backend, new(queue="mail"), new(queue="mail"), new(queue="mail", run_at=at(100)))
    enqueue(backend, new(queue="reports"), now=at(5))
    [running] = claim(backend, at(10), queues=["reports"])
    backend.set_queue_paused("idle", True, at(10))
    infos = {q.name: q for q in backend.queues(at(20))}
    assert sorted(infos) == ["idle", "mail", "reports"]
    mail = infos["mail"]
    assert (mail.waiting, mail.due, mail.running, mail.paused) == (3, 2, 0, False)
    assert mail.oldest_due_at == T0
    assert (infos["reports"].running, infos["reports"].waiting) == (1, 0)
    assert infos["idle"].paused and infos["idle"].waiting == 0
    assert running.queue == "reports"


def test_throughput_per_minute(backend: Backend) -> None:
    enqueue(backend, *[new() for _ in range(4)])
    jobs = claim(backend, at(1), limit=4)
    finish(backend, jobs[0], JobState.COMPLETED, at(10))
    finish(backend, jobs[1], JobState.COMPLETED, at(70))
    finish(backend, jobs[2], JobState.FAILED, at(75))
    finish(backend, jobs[3], JobState.CANCELLED, at(80))
    got = [(t.minute, t.completed, t.failed) for t in backend.throughput(T0)]
    assert got == [(T0, 1, 0), (at(60), 1, 1)]
    assert [t.minute for t in backend.throughput(at(60))] == [at(60)]
