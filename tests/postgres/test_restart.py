"""A real PostgreSQL restart under two worker processes and a producer that keeps enqueueing.

The server is restarted with pg_ctlcluster (it is this machine's own server, used only by these
tests and CI), so the test skips where the cluster cannot be controlled from here. Whatever
happens, the server is running again when the test ends.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

import conveyor
from conveyor.errors import StoreUnavailable
from helpers import wait_until
from postgres.processes import Workers
from postgres.server import BASE_URL, url_for

pytestmark = pytest.mark.slow
CLUSTERS = Path("/etc/postgresql")  # Debian's layout: /etc/postgresql/<version>/<cluster>
PACE = 0.01  # seconds between the producer's enqueues: a steady stream of about 100 jobs/s


def cluster_version() -> str | None:
    """The newest PostgreSQL version with a `main` cluster (like `ls | sort -V | tail -1`)."""
    if shutil.which("pg_ctlcluster") is None or not CLUSTERS.is_dir():
        return None
    versions = [path.name for path in CLUSTERS.iterdir() if (path / "main").is_dir()]
    if not versions:
        return None
    return max(versions, key=lambda name: [int(part) for part in re.findall(r"\d+", name)])


def pg_ctl(version: str, action: str, *, check: bool = True) -> None:
    """start, stop or restart the main cluster (as the current user, without systemd)."""
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    done = subprocess.run(command, check=False, timeout=60, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")


def server_ready() -> bool:
    """Whether the test server accepts connections (pg_isready)."""
    where = urlsplit(BASE_URL)
    command = ["pg_isready", "-q", "-h", where.hostname or "127.0.0.1"]
    command += ["-p", str(where.port or 5432)]
    return subprocess.run(command, check=False, timeout=30).returncode == 0


class Producer:
    """A thread enqueueing a `record` job every PACE seconds until stopped: it keeps the ids of
    the jobs enqueued and the StoreUnavailable errors met meanwhile."""

    def __init__(self, app: conveyor.App) -> None:
        self.app = app
        self.ids: list[str] = []
        self.errors: list[StoreUnavailable] = []
        self.unexpected: list[BaseException] = []
        self.last_ok = 0.0  # time.monotonic() of the last enqueue that succeeded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(30)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self.ids.append(self.app.enqueue("record", {"n": n}).id)
                self.last_ok = time.monotonic()
            except StoreUnavailable as exc:
                self.errors.append(exc)
            except BaseException as exc:  # reported by the test
                self.unexpected.append(exc)
                return
            n += 1
            self._stop.wait(PACE)


@pytest.fixture
def version(schema: str) -> Iterator[str]:
    """The cluster to restart; it accepts connections again after the test (before the
    test's schema is dropped)."""
    found = cluster_version()
    if found is None:
        pytest.skip("needs pg_ctlcluster and a cluster under /etc/postgresql")
    try:
        yield found
    finally:
        if not server_ready():
            pg_ctl(found, "start", check=False)
        wait_until(server_ready, 60, "PostgreSQL to accept connections again")


def test_workers_and_producers_ride_out_a_real_server_restart(schema: str, version: str) -> None:
    url = url_for(schema, application_name=schema, connect_timeout="2", pool_timeout="2")
    app = conveyor.App(url)
    app.declare("record")  # a producer only: the workers run process_app.py's `record`
    workers = Workers(url)
    producer = Producer(app)
    try:
        procs = [workers.start(concurrency=4) for _ in range(2)]
        producer.start()

        def completed() -> int:
            return app.jobs.counts().by_state.get("completed", 0)

        # a worker that cannot open the store when it starts exits, by design: the restart
        # must hit running workers
        wait_until(lambda: len(app.jobs.workers()) == 2, 60, "both workers up")
        wait_until(lambda: completed() >= 50, 30, "work to flow before the restart")
        pg_ctl(version, "restart")
        restarted = time.monotonic()
        wait_until(
            lambda: producer.errors or producer.last_ok > restarted,
            30,
            "an enqueue to fail during the restart or to succeed after it",
        )
        errors = list(producer.errors)
        if not errors:  # the restart was too quick to catch: a longer outage, then
            pg_ctl(version, "stop")
            with pytest.raises(StoreUnavailable) as raised:
                app.enqueue("record", {"n": -1})
            errors.append(raised.value)
            pg_ctl(version, "start")
        assert "PostgreSQL" in str(errors[0])  # a clear error, never a silent drop

        wait_until(server_ready, 30, "the server to accept connections")
        back = len(producer.ids)
        wait_until(lambda: len(producer.ids) >= back + 50, 30, "enqueues to succeed again")
        producer.stop()
        assert not producer.unexpected, producer.unexpected

        def all_completed() -> bool:
            states = app.jobs.counts().by_state
            return set(states) == {"completed"} and states["completed"] >= len(producer.ids)

        wait_until(all_completed, 40, "every job to complete, none left running")
        with psycopg.connect(BASE_URL) as conn:
            rows = conn.execute(f'SELECT id FROM "{schema}".jobs WHERE state = %s', ("completed",))
            done = {row[0] for row in rows}
        assert set(producer.ids) <= done  # every job enqueued ran to completion
        dead = [workers.output(proc) for proc in procs if proc.poll() is not None]
        assert not dead, dead  # the workers carried on

        def listening_again() -> bool:
            renewed = re.compile(r"LISTEN connection to .* restored")
            return all(renewed.search(workers.output(proc)) for proc in procs)

        wait_until(listening_again, 20, "each worker to renew its LISTEN")
        logs = "".join(workers.output(proc) for proc in procs)
        assert "PostgreSQL" in logs  # they said what went wrong
        assert "Traceback" not in logs  # in one line each, not a stack per failure
    finally:
        producer.stop()
        workers.stop_all()
        app.close()


def test_the_first_call_after_a_restart_works(schema: str, version: str) -> None:
    app = conveyor.App(url_for(schema, pool_min="2"))
    app.declare("record")
    try:
        first = app.enqueue("record", {"n": 1})
        pg_ctl(version, "restart")
        wait_until(server_ready, 60, "the server to accept connections again")
        # every pooled connection was closed by the restart: the pool must not hand one out
        second = app.enqueue("record", {"n": 2})
        assert {j.id for j in app.jobs.list().jobs} == {first.id, second.id}
    finally:
        app.close()
