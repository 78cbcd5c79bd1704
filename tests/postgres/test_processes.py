"""Real worker processes on one PostgreSQL schema: many workers, serial queues, SIGKILL,
a paused worker that comes back after its lease was lost, and the database going away."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

import conveyor
from conveyor import JobState
from conveyor.errors import StoreUnavailable
from helpers import peak_running, wait_until
from postgres.processes import APP_DIR, Workers
from postgres.proxy import Proxy
from postgres.server import url_for

pytestmark = pytest.mark.slow


@pytest.fixture
def url(schema: str) -> str:
    return url_for(schema, application_name=schema)


@pytest.fixture
def producer(url: str) -> Iterator[conveyor.App]:
    """The test app (the same jobs as the workers'), producing through its own store."""
    sys.path.insert(0, str(APP_DIR))
    os.environ["CONVEYOR_URL"] = url
    import process_app

    process_app.app.close()
    process_app.app.url = url
    yield process_app.app
    process_app.app.close()
    sys.path.remove(str(APP_DIR))


@pytest.fixture
def workers(url: str) -> Iterator[Workers]:
    pool = Workers(url)
    yield pool
    pool.stop_all()


def test_four_processes_run_5000_jobs_once_and_keep_the_serial_queue_serial(
    producer: conveyor.App, workers: Workers
) -> None:
    requests = [producer.request("record", {"n": n}) for n in range(4900)]
    requests += [producer.request("record_serial", {"n": n}) for n in range(100)]
    handles = producer.enqueue_many(requests)
    for _ in range(4):
        workers.start(concurrency=10)

    def all_done() -> bool:
        return producer.jobs.counts().by_state.get("completed", 0) == len(handles)

    wait_until(all_done, 120, "every job to complete")
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert all(j.attempt == 1 for j in jobs)  # nothing ran twice
    assert len({j.result["pid"] for j in jobs}) == 4  # every process took a share
    serial = sorted((j for j in jobs if j.name == "record_serial"), key=lambda j: j.result["start"])
    assert [j.result["n"] for j in serial] == list(range(100))  # in order
    for before, after in itertools.pairwise(serial):
        assert before.result["end"] <= after.result["start"]  # never overlapping


def test_a_sigkilled_workers_job_is_rescued_and_run_again(
    producer: conveyor.App, workers: Workers
) -> None:
    victim = workers.start()
    handle = producer.enqueue("sleepy", {"seconds": 3})
    wait_until(lambda: handle.refresh().state is JobState.RUNNING, 20, "the first run")

    victim.kill()
    victim.wait(10)
    workers.start()

    wait_until(lambda: handle.refresh().state is JobState.COMPLETED, 30, "the second run")
    job = handle.refresh()
    assert job.attempt == 2
    assert job.errors[0].kind == "lost"
    assert job.result != victim.pid


def test_a_paused_worker_that_lost_its_lease_cannot_overwrite_the_rerun(
    producer: conveyor.App, workers: Workers
) -> None:
    paused = workers.start()
    handle = producer.enqueue("sleepy", {"seconds": 1.5})
    wait_until(lambda: handle.refresh().state is JobState.RUNNING, 20, "the first run")
    paused.send_signal(signal.SIGSTOP)  # a stalled or partitioned process

    other = workers.start()
    wait_until(lambda: handle.refresh().state is JobState.COMPLETED, 30, "the rerun")
    paused.send_signal(signal.SIGCONT)  # it comes back and finishes its stale attempt

    def refused() -> bool:  # the worker logs this once the store refused its stale outcome
        lines = workers.output(paused).lower().splitlines()
        return any(handle.id.lower() in line and "lost" in line for line in lines)

    wait_until(refused, 30, "the stale worker to report its outcome refused")
    job = handle.refresh()
    assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, other.pid)


def test_workers_ride_out_a_database_outage(
    producer: conveyor.App, workers: Workers, schema: str
) -> None:
    proxy = Proxy()
    proxy.up()
    behind = url_for(schema, application_name=schema, connect_timeout="2", pool_timeout="2")
    behind = behind.replace(":5432/", f":{proxy.port}/")
    try:
        procs = [workers.start(concurrency=4, url=behind) for _ in range(2)]
        outsider = conveyor.App(behind)
        outsider.declare("record")
        outsider.enqueue("record", {"n": -1})  # opens its pool through the proxy

        def completed() -> int:
            return producer.jobs.counts().by_state.get("completed", 0)

        # The outage must hit running workers with work left: a worker that cannot open the
        # store when it starts exits with an error, by design. So both must be up before the
        # jobs come, and there are enough of them to outlast the first 100.
        wait_until(lambda: len(producer.jobs.workers()) == 2, 60, "both workers up")
        handles = producer.enqueue_many([producer.request("record", {"n": n}) for n in range(6000)])
        wait_until(lambda: completed() > 100, 60, "work to start")
        proxy.down()
        with pytest.raises(StoreUnavailable, match="PostgreSQL"):
            outsider.enqueue("record", {"n": -2})  # never a silent drop
        assert completed() < len(handles)  # the outage came with work left

        def felt(proc: subprocess.Popen[bytes]) -> bool:  # its store's errors name PostgreSQL
            return "PostgreSQL" in workers.output(proc)

        wait_until(lambda: all(felt(proc) for proc in procs), 60, "both workers to hit the outage")
        proxy.up()

        wait_until(lambda: completed() == len(handles) + 1, 120, "every job after the outage")
        assert producer.jobs.counts().by_state == {"completed": len(handles) + 1}
        dead = [workers.output(proc) for proc in procs if proc.poll() is not None]
        assert not dead, dead  # the workers carried on
        logs = "".join(workers.output(proc) for proc in procs)
        assert "PostgreSQL" in logs  # they said what went wrong
        outsider.close()
    finally:
        proxy.down()


def test_three_processes_honour_a_limit_none_of_them_declared(
    producer: conveyor.App, workers: Workers
) -> None:
    # an operator's limit on a queue no worker's code mentions (conveyor queues set --create)
    producer.jobs.set_queue_settings("partner-api", {"concurrency": 2}, create=True)
    requests = [producer.request("record", {"n": n}, queue="partner-api") for n in range(60)]
    handles = producer.enqueue_many(requests)
    for _ in range(3):
        workers.start(concurrency=10)

    def all_done() -> bool:
        return all(producer.jobs.require(h.id).state is JobState.COMPLETED for h in handles)

    wait_until(all_done, 120, "every job to complete")
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert all(j.attempt == 1 for j in jobs)
    # from the job bodies' own times, which lie inside the store's running span (claim to
    # acknowledgement): the stored started_at is the claimer's time before it waited for the
    # queue's lock, so spans built from it overlap more than the jobs did
    peaks = peak_running((j.queue, j.result["start"], j.result["end"]) for j in jobs)
    assert peaks == {"partner-api": peaks["partner-api"]} and peaks["partner-api"] <= 2, peaks
    assert len({j.result["pid"] for j in jobs}) >= 2  # several processes took a share


# The same checks as on SQLite, with this module's PostgreSQL workers and producer.
from integration.test_processes import (  # noqa: E402
    test_three_processes_never_run_more_of_a_key_than_its_key_concurrency,
    test_three_processes_never_start_more_than_a_rate_allows,
)

__all__ = [
    "test_three_processes_never_run_more_of_a_key_than_its_key_concurrency",
    "test_three_processes_never_start_more_than_a_rate_allows",
]
