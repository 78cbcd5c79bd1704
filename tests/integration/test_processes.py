"""Real worker processes on one SQLite file: SIGKILL, SIGTERM, many workers, serial queues."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from helpers import most_started_in_a_window, peak_running, wait_until

pytest.importorskip("conveyor.backends.sqlite.backend", reason="SQLite store missing")
pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


class Workers:
    """Starts `process_app.py` worker processes and stops any left at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.lines: dict[int, list[str]] = {}
        self.readers: list[threading.Thread] = []

    def start(
        self, queues: str = "all", concurrency: int = 10, **env: str
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "process_app.py"), queues, str(concurrency)],
            env={**os.environ, "CONVEYOR_URL": self.url, "PYTHONPATH": str(HERE), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        lines = self.lines[proc.pid] = []
        reader = threading.Thread(target=self._read, args=(proc, lines), daemon=True)
        reader.start()
        self.readers.append(reader)
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], lines: list[str]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """What the worker has logged so far."""
        return "".join(self.lines[proc.pid])

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for reader in self.readers:
            reader.join(10)
        for proc in self.procs:
            if proc.stderr:
                proc.stderr.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/jobs.db"


@pytest.fixture
def producer(url: str) -> Iterator[conveyor.App]:
    sys.path.insert(0, str(HERE))
    os.environ["CONVEYOR_URL"] = url
    import process_app

    process_app.app.close()
    process_app.app.url = url
    yield process_app.app
    process_app.app.close()
    sys.path.remove(str(HERE))


@pytest.fixture
def workers(url: str) -> Iterator[Workers]:
    pool = Workers(url)
    yield pool
    pool.stop_all()


def test_sigkilled_worker_jobs_are_rescued_and_run_again(
    producer: conveyor.App, workers: Workers
) -> None:
    victim = workers.start()
    handle = producer.enqueue("sleepy", {"seconds": 30})
    wait_until(lambda: handle.refresh().state is JobState.RUNNING, 20, "the job to start")
    assert handle.job.worker_id
    assert f":{victim.pid}:" in handle.job.worker_id
    victim.kill()  # SIGKILL: no cleanup, the lease is left to expire
    victim.wait(10)
    job = handle.refresh()
    assert job.state is JobState.RUNNING
    rescuer = workers.start()
    wait_until(lambda: handle.refresh().attempt == 2, 20, "the rescue")
    job = handle.job
    assert job.errors[0].kind == "lost"
    assert job.worker_id
    assert f":{rescuer.pid}:" in job.worker_id


def test_sigterm_stops_gracefully_and_returns_the_job_uncounted(
    producer: conveyor.App, workers: Workers
) -> None:
    worker = workers.start(SHUTDOWN_TIMEOUT="0.3")
    handle = producer.enqueue("sleepy", {"seconds": 30})
    wait_until(lambda: handle.refresh().state is JobState.RUNNING, 20, "the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    job = handle.refresh()
    assert job.state is JobState.PENDING
    assert job.attempt == 0


def test_an_operator_s_stop_ends_the_process_with_0_and_loses_no_job(
    producer: conveyor.App, workers: Workers
) -> None:
    worker = workers.start(concurrency=4, SHUTDOWN_TIMEOUT="10")
    wait_until(lambda: len(producer.jobs.workers()) == 1, 20, "the worker to start")
    [info] = producer.jobs.workers()
    assert f":{worker.pid}:" in info.id
    slow = producer.enqueue("sleepy", {"seconds": 0.5})
    wait_until(lambda: slow.refresh().state is JobState.RUNNING, 20, "the slow job to start")
    handles = producer.enqueue_many([producer.request("record", {"n": n}) for n in range(200)])

    producer.jobs.stop_worker(info.id)
    assert worker.wait(15) == 0
    assert "stop requested by an operator" in workers.output(worker)
    assert producer.jobs.workers() == []
    assert slow.refresh().state is JobState.COMPLETED  # finished within its grace
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert {j.state for j in jobs} <= {JobState.COMPLETED, JobState.PENDING}  # none left running
    assert all(j.attempt == 0 for j in jobs if j.state is JobState.PENDING)  # nothing counted

    workers.start()  # the rest run elsewhere, each once

    def all_done() -> bool:
        return producer.jobs.counts().by_state.get("completed", 0) == len(handles) + 1

    wait_until(all_done, 60, "every job to complete")
    assert all(producer.jobs.require(h.id).attempt == 1 for h in handles)


def test_second_signal_exits_at_once_and_the_lease_brings_the_job_back(
    producer: conveyor.App, workers: Workers
) -> None:
    worker = workers.start(SHUTDOWN_TIMEOUT="60")
    handle = producer.enqueue("sleepy", {"seconds": 30})
    wait_until(lambda: handle.refresh().state is JobState.RUNNING, 20, "the job to start")
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping" in workers.output(worker), 10, "the first signal's effect")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(5) != 0  # did not wait the 60 s shutdown timeout
    assert handle.refresh().state is JobState.RUNNING  # until its lease expires
    workers.start()
    wait_until(lambda: handle.refresh().attempt == 2, 20, "the rescue")


def test_many_processes_run_each_job_once_and_keep_the_serial_queue_serial(
    producer: conveyor.App, workers: Workers
) -> None:
    requests = [producer.request("record", {"n": n}) for n in range(600)]
    requests += [producer.request("record_serial", {"n": n}) for n in range(60)]
    handles = producer.enqueue_many(requests)
    for _ in range(3):
        workers.start(concurrency=8)

    def all_done() -> bool:
        return producer.jobs.counts().by_state.get("completed", 0) == len(handles)

    wait_until(all_done, 90, "every job to complete")
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert all(j.attempt == 1 for j in jobs)  # nothing ran twice
    assert len({j.result["pid"] for j in jobs}) > 1  # the work was shared
    serial = sorted((j for j in jobs if j.name == "record_serial"), key=lambda j: j.result["start"])
    assert [j.result["n"] for j in serial] == list(range(60))  # in order
    for before, after in itertools.pairwise(serial):
        assert before.result["end"] <= after.result["start"]  # never overlapping


def test_three_processes_never_run_more_of_a_key_than_its_key_concurrency(
    producer: conveyor.App, workers: Workers
) -> None:
    for _ in range(3):
        workers.start(concurrency=8)
    wait_until(lambda: len(producer.jobs.workers()) == 3, 30, "three workers to start")
    requests = [producer.request("record_keyed", {"tenant": n % 5, "n": n}) for n in range(200)]
    requests += [producer.request("record", {"n": n}) for n in range(100)]
    handles = producer.enqueue_many(requests)

    def all_done() -> bool:
        return producer.jobs.counts().by_state.get("completed", 0) == len(handles)

    wait_until(all_done, 120, "every job to complete")
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert all(j.attempt == 1 for j in jobs)  # nothing lost, nothing ran twice
    keyed = [j for j in jobs if j.concurrency_key is not None]
    peaks = peak_running((j.concurrency_key, j.result["start"], j.result["end"]) for j in keyed)
    assert len(peaks) == 5 and max(peaks.values()) <= 2, peaks
    assert max(peaks.values()) == 2, peaks  # the limit is two, not one
    assert len({j.result["pid"] for j in keyed}) >= 2  # several processes took a share


def test_three_processes_never_start_more_than_a_rate_allows(
    producer: conveyor.App, workers: Workers
) -> None:
    # an operator's rate on a queue no worker's code mentions, and a job's own rate per tenant
    producer.jobs.set_queue_settings("partner-api", {"rate_limit": "15/s"}, create=True)
    for _ in range(3):
        workers.start(concurrency=8)
    wait_until(lambda: len(producer.jobs.workers()) == 3, 30, "three workers to start")
    requests = [producer.request("record", {"n": n}, queue="partner-api") for n in range(45)]
    requests += [producer.request("record_rated", {"tenant": n % 2, "n": n}) for n in range(40)]
    requests += [producer.request("record", {"n": n}) for n in range(50)]  # no rate
    handles = producer.enqueue_many(requests)

    def all_done() -> bool:
        return producer.jobs.counts().by_state.get("completed", 0) == len(handles)

    wait_until(all_done, 120, "every job to complete")
    jobs = [producer.jobs.require(h.id) for h in handles]
    assert all(j.attempt == 1 for j in jobs)  # nothing lost, nothing ran twice

    def starts(pick: Callable[[conveyor.Job], bool]) -> list[datetime]:
        return [j.started_at for j in jobs if pick(j) and j.started_at is not None]

    queued = starts(lambda j: j.queue == "partner-api")
    assert most_started_in_a_window(queued, 1.0) <= 15
    assert max(queued) - min(queued) >= timedelta(seconds=2)  # 45 at 15/s: three windows
    for tenant in ("tenant:0", "tenant:1"):
        rated = starts(lambda j, t=tenant: j.rate_key == t)  # type: ignore[misc]
        assert len(rated) == 20 and most_started_in_a_window(rated, 1.0) <= 10
    assert len({j.result["pid"] if isinstance(j.result, dict) else j.result for j in jobs}) >= 2
