"""Finding jobs: text inside arguments, metadata and the last error; a part of the name; time
ranges; the running worker; the last error's kind; all of them combined."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.backends.records import JobFilter
from conveyor.model.job import JobState

from .support import at, claim_one, enqueue, enqueue_one, error, finish, new


def ids(backend: Backend, query: JobFilter) -> set[str]:
    found = backend.list_jobs(query)
    assert found.total == len(found.jobs), "every test here fits on one page"
    return {job.id for job in found.jobs}


def failed(backend: Backend, job_id: str, message: str, kind: str, when: float = 1) -> None:
    """Enqueue `job_id` in a queue of its own, then fail its only attempt."""
    enqueue_one(backend, new("flaky", id=job_id, queue=job_id, max_attempts=1))
    running = claim_one(backend, queues=[job_id])
    finish(backend, running, JobState.FAILED, at(when), error=error(1, message, kind))


def test_search_looks_inside_arguments_and_metadata_ignoring_case(backend: Backend) -> None:
    enqueue(
        backend,
        new("send", id="id-1", args={"email": "Ada@Example.org", "n": 4217}),
        new("send", id="id-2", args={"email": "bob@example.org"}, metadata={"tenant": "Acme"}),
        new("send", id="id-3", args={"nested": {"deep": ["x", "needle-value"]}}),
    )

    assert ids(backend, JobFilter(search="ada@example")) == {"id-1"}
    assert ids(backend, JobFilter(search="4217")) == {"id-1"}
    assert ids(backend, JobFilter(search="EXAMPLE.ORG")) == {"id-1", "id-2"}
    assert ids(backend, JobFilter(search="acme")) == {"id-2"}
    assert ids(backend, JobFilter(search="tenant")) == {"id-2"}  # a key is text too
    assert ids(backend, JobFilter(search="needle-val")) == {"id-3"}
    assert ids(backend, JobFilter(search="no such text")) == set()


def test_search_looks_in_the_last_error_message_only(backend: Backend) -> None:
    enqueue_one(backend, new("flaky", id="id-retried", queue="r", max_attempts=3))
    first = claim_one(backend, queues=["r"])
    again = error(1, "Connection REFUSED by upstream")
    finish(backend, first, JobState.PENDING, at(1), error=again, run_at=at(1))
    second = claim_one(backend, at(2), queues=["r"])
    finish(backend, second, JobState.FAILED, at(3), error=error(2, "disk quota exceeded"))
    failed(backend, "id-other", "connection reset", "error")

    assert ids(backend, JobFilter(search="quota")) == {"id-retried"}
    assert ids(backend, JobFilter(search="refused")) == set()  # an earlier attempt's error
    assert ids(backend, JobFilter(search="connection re")) == {"id-other"}


def test_search_keeps_wildcards_literal_inside_arguments(backend: Backend) -> None:
    enqueue(
        backend,
        new("t", id="id-1", args={"path": "a_b"}),
        new("t", id="id-2", args={"path": "axb"}),
        new("t", id="id-3", args={"ratio": "50%"}),
    )

    assert ids(backend, JobFilter(search="a_b")) == {"id-1"}
    assert ids(backend, JobFilter(search="0%")) == {"id-3"}


def test_name_contains_matches_a_part_of_the_name_ignoring_case(backend: Backend) -> None:
    enqueue(
        backend,
        new("billing.send_invoice", id="id-1"),
        new("billing.refund", id="id-2"),
        new("mail.send_welcome", id="id-3", args={"note": "billing"}),
    )

    assert ids(backend, JobFilter(name_contains="BILLING.")) == {"id-1", "id-2"}
    assert ids(backend, JobFilter(name_contains="send_")) == {"id-1", "id-3"}
    assert ids(backend, JobFilter(name_contains="billing", search="invoice")) == {"id-1"}
    assert ids(backend, JobFilter(name_contains="nothing")) == set()


def test_created_range_includes_its_start_and_excludes_its_end(backend: Backend) -> None:
    for i in range(5):
        enqueue(backend, new("t", id=f"id-{i}"), now=at(i * 60))

    def created(low: float | None, high: float | None) -> set[str]:
        return ids(
            backend,
            JobFilter(
                created_after=None if low is None else at(low),
                created_before=None if high is None else at(high),
            ),
        )

    assert created(60, 180) == {"id-1", "id-2"}
    assert created(61, None) == {"id-2", "id-3", "id-4"}
    assert created(None, 60) == {"id-0"}
    assert created(500, None) == set()
    pending = frozenset({JobState.PENDING})
    assert ids(backend, JobFilter(states=pending, created_after=at(120))) == {
        "id-2",
        "id-3",
        "id-4",
    }


def test_finished_range_leaves_out_unfinished_jobs(backend: Backend) -> None:
    failed(backend, "id-early", "boom", "error", when=10)
    failed(backend, "id-late", "boom", "error", when=100)
    enqueue_one(backend, new("waiting", id="id-pending"))

    assert ids(backend, JobFilter(finished_after=at(50))) == {"id-late"}
    assert ids(backend, JobFilter(finished_before=at(50))) == {"id-early"}
    assert ids(backend, JobFilter(finished_after=at(0), finished_before=at(100))) == {"id-early"}


def test_worker_filter_finds_the_jobs_a_worker_runs(backend: Backend) -> None:
    enqueue(backend, new("t", id="id-a", queue="a"), new("t", id="id-b", queue="b"))
    enqueue_one(backend, new("t", id="id-idle", queue="c"))
    claim_one(backend, worker="worker-1", queues=["a"])
    claim_one(backend, worker="worker-2", queues=["b"])

    assert ids(backend, JobFilter(worker="worker-1")) == {"id-a"}
    assert ids(backend, JobFilter(worker="worker-2", name="t")) == {"id-b"}
    assert ids(backend, JobFilter(worker="worker-1", states=frozenset({JobState.PENDING}))) == set()
    assert ids(backend, JobFilter(worker="worker-9")) == set()


def test_error_kind_is_the_kind_of_the_last_error(backend: Backend) -> None:
    failed(backend, "id-timeout", "took too long", "timeout")
    failed(backend, "id-lost", "worker died", "lost")
    failed(backend, "id-error", "ValueError: bad", "error")
    enqueue_one(backend, new("t", id="id-fine"))

    assert ids(backend, JobFilter(error_kind="timeout")) == {"id-timeout"}
    assert ids(backend, JobFilter(error_kind="lost")) == {"id-lost"}
    assert ids(backend, JobFilter(error_kind="error")) == {"id-error"}
    assert ids(backend, JobFilter(error_kind="crashed")) == set()


def test_filters_combine(backend: Backend) -> None:
    failed(backend, "id-1", "timeout talking to the bank", "timeout", when=10)
    failed(backend, "id-2", "timeout talking to the bank", "error", when=20)
    failed(backend, "id-3", "timeout talking to the bank", "timeout", when=90)
    enqueue_one(backend, new("flaky", id="id-4", args={"bank": "timeout"}))

    both = JobFilter(search="bank", error_kind="timeout")
    assert ids(backend, both) == {"id-1", "id-3"}
    timed = JobFilter(
        search="BANK",
        error_kind="timeout",
        finished_after=at(0),
        finished_before=at(60),
        name_contains="FLAK",
        states=frozenset({JobState.FAILED}),
    )
    assert ids(backend, timed) == {"id-1"}
    assert ids(backend, JobFilter(search="timeout", states=frozenset({JobState.PENDING}))) == {
        "id-4"
    }


def test_pages_of_a_search_hold_every_match_once_newest_first(backend: Backend) -> None:
    for i in range(7):
        enqueue(backend, new("t", id=f"id-{i}", args={"tag": "wanted"}), now=at(i))
        enqueue(backend, new("t", id=f"other-{i}", args={"tag": "other"}), now=at(i))

    pages = [backend.list_jobs(JobFilter(search="wanted", page=p, per_page=3)) for p in (1, 2, 3)]

    assert [[j.id for j in p.jobs] for p in pages] == [
        ["id-6", "id-5", "id-4"],
        ["id-3", "id-2", "id-1"],
        ["id-0"],
    ]
    assert {(p.total, p.total_exact) for p in pages} == {(7, True)}
