"""What operators see: get, list with filters and pages, counts."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.backends.records import LIST_COUNT_CAP, JobFilter
from conveyor.model.job import JobState
from conveyor.model.settings import Settings

from .support import T0, MakeBackend, at, claim_one, enqueue, finish, job_in, new


def test_get_of_an_unknown_id_is_none(backend: Backend) -> None:
    assert backend.get("no-such-job") is None


def test_list_is_newest_first(backend: Backend) -> None:
    for i in range(3):
        enqueue(backend, new(f"job{i}"), now=at(i))

    page = backend.list_jobs(JobFilter())

    assert [j.name for j in page.jobs] == ["job2", "job1", "job0"]
    assert (page.total, page.page, page.per_page) == (3, 1, 50)


def test_list_breaks_created_at_ties_by_id_descending(backend: Backend) -> None:
    enqueue(backend, new(id="id-b"), new(id="id-c"), new(id="id-a"), now=T0)

    assert [j.id for j in backend.list_jobs(JobFilter()).jobs] == ["id-c", "id-b", "id-a"]


def test_list_filters_by_state_name_and_queue(backend: Backend) -> None:
    enqueue(
        backend,
        new("send", queue="mail", id="id-1"),
        new("send", queue="bulk", id="id-2"),
        new("build", queue="mail", id="id-3"),
        new("send", queue="mail", id="id-4", run_at=at(60)),
    )

    def ids(query: JobFilter) -> set[str]:
        return {j.id for j in backend.list_jobs(query).jobs}

    assert ids(JobFilter(name="send")) == {"id-1", "id-2", "id-4"}
    assert ids(JobFilter(queue="mail")) == {"id-1", "id-3", "id-4"}
    assert ids(JobFilter(states=frozenset({JobState.SCHEDULED}))) == {"id-4"}
    assert ids(JobFilter(states=frozenset({JobState.PENDING}), name="send", queue="mail")) == {
        "id-1"
    }
    assert ids(JobFilter(states=frozenset({JobState.PENDING, JobState.SCHEDULED}))) == {
        "id-1",
        "id-2",
        "id-3",
        "id-4",
    }
    assert ids(JobFilter(name="nothing")) == set()
    assert backend.list_jobs(JobFilter(queue="mail")).total == 3


def test_list_searches_ids_and_names_ignoring_case(backend: Backend) -> None:
    enqueue(
        backend,
        new("send_welcome", id="aaa-111"),
        new("build_report", id="bbb-222"),
        new("cleanup", id="ccc-welcome"),
    )

    def ids(search: str) -> set[str]:
        return {j.id for j in backend.list_jobs(JobFilter(search=search)).jobs}

    assert ids("welcome") == {"aaa-111", "ccc-welcome"}
    assert ids("222") == {"bbb-222"}
    assert ids("REPORT") == {"bbb-222"}
    assert ids("zzz") == set()


def test_list_search_takes_wildcard_characters_literally(backend: Backend) -> None:
    enqueue(backend, new("a_b", id="id-1"), new("axb", id="id-2"), new("100%", id="id-3"))

    assert {j.id for j in backend.list_jobs(JobFilter(search="a_b")).jobs} == {"id-1"}
    assert {j.id for j in backend.list_jobs(JobFilter(search="0%")).jobs} == {"id-3"}


def test_list_pages_through_every_job_once(backend: Backend) -> None:
    for i in range(7):
        enqueue(backend, new(f"job{i}"), now=at(i))

    pages = [backend.list_jobs(JobFilter(page=p, per_page=3)) for p in (1, 2, 3, 4)]

    assert [[j.name for j in p.jobs] for p in pages] == [
        ["job6", "job5", "job4"],
        ["job3", "job2", "job1"],
        ["job0"],
        [],
    ]
    assert [(p.total, p.page, p.per_page) for p in pages] == [(7, n, 3) for n in (1, 2, 3, 4)]


def test_total_counts_all_matches_not_just_the_page(backend: Backend) -> None:
    enqueue(backend, *[new("x", queue="a") for _ in range(4)], new("y", queue="b"))

    page = backend.list_jobs(JobFilter(queue="a", per_page=2))

    assert (len(page.jobs), page.total) == (2, 4)


def test_total_is_capped_past_list_count_cap(make_backend: MakeBackend) -> None:
    backend = make_backend(Settings(max_queue_size=0))  # the memory store's bound is 10,000
    enqueue(backend, *[new("task", id=f"id-{i:05}") for i in range(LIST_COUNT_CAP + 1)])
    enqueue(backend, new("needle", id="id-needle"), now=at(1))  # the newest job

    capped = [
        backend.list_jobs(JobFilter()),
        backend.list_jobs(JobFilter(states=frozenset({JobState.PENDING}))),
        backend.list_jobs(JobFilter(name="task", queue="default")),
        backend.list_jobs(JobFilter(search="TASK")),
        backend.list_jobs(JobFilter(search="id-", states=frozenset({JobState.PENDING}))),
    ]
    exact = backend.list_jobs(JobFilter(search="NEEDLE"))

    assert [(p.total, p.total_exact) for p in capped] == [(LIST_COUNT_CAP, False)] * 5
    newest = ["id-needle", "id-needle", "id-10000", "id-10000", "id-needle"]
    assert [p.jobs[0].id for p in capped] == newest
    assert (exact.total, exact.total_exact, [j.id for j in exact.jobs]) == (1, True, ["id-needle"])


def test_pages_past_the_cap_still_list_their_jobs(make_backend: MakeBackend) -> None:
    backend = make_backend(Settings(max_queue_size=0))
    enqueue(backend, *[new("task", id=f"id-{i:05}") for i in range(LIST_COUNT_CAP + 1)])

    last = LIST_COUNT_CAP // 50 + 1
    pages = [backend.list_jobs(JobFilter(page=last, search=s)) for s in (None, "task", "id-")]

    assert [[j.id for j in p.jobs] for p in pages] == [["id-00000"]] * 3
    assert [(p.total, p.total_exact) for p in pages] == [(LIST_COUNT_CAP, False)] * 3


def test_total_is_exact_up_to_the_cap(make_backend: MakeBackend) -> None:
    backend = make_backend(Settings(max_queue_size=0))
    enqueue(backend, *[new("task", id=f"id-{i:05}") for i in range(LIST_COUNT_CAP)])

    pages = [backend.list_jobs(JobFilter()), backend.list_jobs(JobFilter(search="task", page=400))]

    assert [(p.total, p.total_exact, len(p.jobs)) for p in pages] == [
        (LIST_COUNT_CAP, True, 50),
        (LIST_COUNT_CAP, True, 0),
    ]


def test_counts_by_state_and_by_queue(backend: Backend) -> None:
    enqueue(backend, new(queue="a"), new(queue="a"), new(queue="b", run_at=at(60)))
    enqueue(backend, new(queue="c"))
    running = claim_one(backend, queues=["c"])
    enqueue(backend, new(queue="a"))
    done = claim_one(backend, queues=["a"])
    finish(backend, done, JobState.COMPLETED, at(1))
    finish(backend, running, JobState.FAILED, at(1))
    enqueue(backend, new(queue="c"))
    claim_one(backend, queues=["c"])

    counts = backend.counts()

    assert counts.by_state == {
        "pending": 2,
        "scheduled": 1,
        "running": 1,
        "completed": 1,
        "failed": 1,
    }
    assert counts.by_queue == {
        "a": {"pending": 2, "completed": 1},
        "b": {"scheduled": 1},
        "c": {"failed": 1, "running": 1},
    }


def test_counts_of_an_empty_store(backend: Backend) -> None:
    counts = backend.counts()

    assert (counts.by_state, counts.by_queue) == ({}, {})


def test_counts_follow_deletes(backend: Backend) -> None:
    job = job_in(backend, JobState.COMPLETED, queue="a")

    backend.delete(job.id)

    assert backend.counts().by_state == {}
