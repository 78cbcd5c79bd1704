"""The process executor on every store: hung sync jobs are stopped for sure, a dying child
takes only its own attempt, and everything a job does from a child reaches the store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

import conveyor
from conveyor.model.job import JobState
from conveyor.observability import metrics
from conveyor.web import create_app
from helpers import wait_until_async
from integration import process_jobs as jobs

pytestmark = pytest.mark.slow

PROCESS = {"processes": 2, "process_grace": 0.5}


def register(app: conveyor.App, func: Callable[..., Any], **options: Any) -> Any:
    return app.job(executor="process", **options)(func)


def process_app(app: conveyor.App, **settings: Any) -> conveyor.App:
    """An App on the same store, with the process executor's settings."""
    from integration_support import FAST

    return conveyor.App(app.url, **{**FAST, **PROCESS, **settings})


@pytest.fixture
def papp(app: conveyor.App) -> Any:
    other = process_app(app)
    yield other
    other.close()


async def test_a_job_sleeping_past_its_timeout_is_killed_and_the_others_never_notice(
    papp: conveyor.App,
) -> None:
    sleeper = register(papp, jobs.sleep_past_timeout, max_attempts=2, timeout=0.5)
    pid = register(papp, jobs.pid)
    hung = sleeper.enqueue(seconds=60)
    fine = [pid.enqueue() for _ in range(4)]
    async with papp.worker(concurrency=4):
        done = [await handle.wait_async(30) for handle in fine]
        job = await hung.wait_async(30)
        after = await pid.enqueue().wait_async(30)
    assert all(d.state is JobState.COMPLETED and d.result != os.getpid() for d in done)
    assert job.state is JobState.FAILED and [e.kind for e in job.errors] == ["timeout"] * 2
    assert "timed out after 0.5 s" in job.errors[0].message
    assert after.state is JobState.COMPLETED  # the killed child was replaced


async def test_a_loop_in_c_past_its_timeout_is_stopped(papp: conveyor.App) -> None:
    looper = register(papp, jobs.loop_in_c, max_attempts=1, timeout=0.5)
    async with papp.worker():
        job = await looper.enqueue().wait_async(30)
    assert job.state is JobState.FAILED and job.errors[0].kind == "timeout"


async def test_a_child_that_dies_is_a_crashed_attempt_and_the_worker_stays_up(
    papp: conveyor.App,
) -> None:
    killed = register(papp, jobs.kill_itself, max_attempts=2)
    exited = register(papp, jobs.exit_hard, max_attempts=1)
    pid = register(papp, jobs.pid)
    async with papp.worker():
        by_signal = await killed.enqueue().wait_async(30)
        by_exit = await exited.enqueue().wait_async(30)
        still = await pid.enqueue().wait_async(30)
    assert by_signal.state is JobState.FAILED
    assert [e.kind for e in by_signal.errors] == ["crashed", "crashed"]  # retried by policy
    assert "killed by signal 9 (SIGKILL)" in by_signal.errors[0].message
    assert by_exit.errors[0].kind == "crashed" and "exited with code 3" in by_exit.errors[0].message
    assert still.state is JobState.COMPLETED
    # the REST API and the job's page tell a crashed child apart from a dead worker ("lost")
    web = create_app(papp, tokens={"t": {"view"}}, secret="s")
    with TestClient(web, base_url="http://localhost", headers={"Authorization": "Bearer t"}) as c:
        shown = c.get(f"/api/jobs/{by_signal.id}").json()
        page = c.get(f"/jobs/{by_signal.id}").text
    assert [e["kind"] for e in shown["errors"]] == ["crashed", "crashed"]
    assert "crashed" in page and "killed by signal 9 (SIGKILL)" in page


async def test_progress_logs_results_and_errors_come_back_from_the_child(
    papp: conveyor.App,
) -> None:
    reporter = register(papp, jobs.report)
    failing = register(papp, jobs.bad_input, max_attempts=1)
    retried = register(papp, jobs.retry_once)
    given_up = register(papp, jobs.give_up)
    typed = register(papp, jobs.next_day)
    async with papp.worker():
        reported = await reporter.enqueue(steps=3).wait_async(30)
        failed = await failing.enqueue().wait_async(30)
        second = await retried.enqueue().wait_async(30)
        closed = await given_up.enqueue().wait_async(30)
        tomorrow = await typed.enqueue(when=datetime(2026, 12, 31, 23, tzinfo=UTC)).wait_async(30)
    assert reported.result.startswith("3 steps in ")
    assert reported.result != f"3 steps in {os.getpid()}"
    assert reported.progress == 100 and reported.progress_message == "step 3"
    assert [line.message for line in reported.logs] == [f"did step {n}" for n in (1, 2, 3)]
    error = failed.errors[0]
    assert error.message == "ValueError: the input file is empty"
    assert "in bad_input" in error.traceback and "process_jobs.py" in error.traceback
    assert second.state is JobState.COMPLETED and second.result == 2
    assert second.errors[0].kind == "retry"
    assert closed.state is JobState.FAILED and closed.attempt == 1
    assert closed.errors[0].message == "the account is closed"
    assert tomorrow.result == date(2027, 1, 1)  # typed result, rebuilt in the parent


async def test_cancelling_stops_the_job_in_its_child(papp: conveyor.App, tmp_path: Path) -> None:
    polite = register(papp, jobs.until_cancelled)
    stubborn = register(papp, jobs.ignores_cancel)
    async with papp.worker():
        for job_function, name in ((polite, "polite"), (stubborn, "stubborn")):
            started = tmp_path / name
            handle = job_function.enqueue(started=str(started))
            await wait_until_async(started.exists, what=f"{name} job started")
            papp.jobs.cancel(handle.id)
            job = await handle.wait_async(30)
            assert job.state is JobState.CANCELLED, name


async def test_children_are_reused_and_recycled_after_their_task_limit(app: conveyor.App) -> None:
    reused = process_app(app, processes=1)
    recycled = process_app(app, processes=1, max_tasks_per_child=2)
    try:
        for other in (reused, recycled):
            pid = register(other, jobs.pid)
            async with other.worker(concurrency=1):
                pids = [(await pid.enqueue().wait_async(30)).result for _ in range(6)]
            if other is reused:
                assert len(set(pids)) == 1 and pids[0] != os.getpid()
            else:
                assert len(set(pids)) == 3 and pids[0] == pids[1] != pids[2] == pids[3]
    finally:
        reused.close()
        recycled.close()


async def test_a_queue_can_run_its_plain_jobs_in_processes(papp: conveyor.App) -> None:
    papp.queue("cpu", executor="process")
    pid = papp.job(queue="cpu")(jobs.pid)

    @papp.job(queue="cpu")
    async def on_the_loop(ctx: conveyor.Context) -> int:
        return os.getpid()

    async with papp.worker():
        in_child = await pid.enqueue().wait_async(30)
        on_loop = await on_the_loop.enqueue().wait_async(30)
    assert in_child.result != os.getpid() and on_loop.result == os.getpid()


async def test_propagated_context_reaches_the_child(papp: conveyor.App) -> None:
    papp.propagate(jobs.REQUEST_ID)
    job = register(papp, jobs.request_id)
    token = jobs.REQUEST_ID.set("req-42")
    try:
        handle = job.enqueue()
    finally:
        jobs.REQUEST_ID.reset(token)
    async with papp.worker():
        assert (await handle.wait_async(30)).result == "req-42"


async def test_a_workflow_step_in_a_child_reads_its_parents_results(papp: conveyor.App) -> None:
    add = register(papp, jobs.add_parents)
    outside = register(papp, jobs.parents_outside_a_workflow, max_attempts=1)
    wf = papp.workflow("sum")
    first, second = wf.add(add.request(extra=1)), wf.add(add.request(extra=2))
    wf.add(add.request(extra=10), after=[first, second], name="total")
    handle = wf.enqueue()
    async with papp.worker():
        stored = await handle.wait_async(30)
        lonely = await outside.enqueue().wait_async(30)
    assert stored.step("total").result == 10 + 1 + 2
    assert lonely.state is JobState.FAILED
    assert "workflow steps only" in lonely.errors[-1].message


def test_what_cannot_run_in_a_process_is_refused_at_decoration(app: conveyor.App) -> None:
    with pytest.raises(conveyor.ConfigurationError, match="async jobs run on the worker's event"):

        @app.job(executor="process")
        async def on_loop(ctx: conveyor.Context) -> None: ...

    with pytest.raises(conveyor.ConfigurationError, match="top level of a module"):

        @app.job(executor="process")
        def local(ctx: conveyor.Context) -> None: ...

    with pytest.raises(conveyor.ConfigurationError, match="'thread' or 'process'"):
        app.job(executor="fork")(jobs.pid)  # type: ignore[call-overload]


async def test_a_child_above_its_memory_limit_is_recycled_after_its_job(
    app: conveyor.App,
) -> None:
    limited = process_app(app, processes=1, max_memory_per_child=200)
    try:
        holder = register(limited, jobs.hold_memory)
        async with limited.worker(concurrency=1):
            pids = [(await holder.enqueue(mib=90).wait_async(30)).result for _ in range(4)]
    finally:
        limited.close()
    # 90 MiB kept per job: the child passes 200 MiB on its second or third job and is replaced
    assert pids[0] != os.getpid() and len(set(pids)) >= 2
    assert pids[0] == pids[1]


async def test_resources_hooks_and_metrics_around_a_child_job(
    papp: conveyor.App, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    user = register(papp, jobs.use_resource)
    failing = register(papp, jobs.bad_input, max_attempts=1)
    registry = CollectorRegistry()
    metrics.install(papp, registry)
    events: list[tuple[str, int]] = []
    for kind in ("started", "succeeded", "failed"):
        papp.on(kind)(lambda event, kind=kind: events.append((kind, os.getpid())))
    async with papp.worker():
        used = await user.enqueue(path=str(journal)).wait_async(30)
        await failing.enqueue().wait_async(30)
    child = used.result
    assert journal.read_text().splitlines() == [f"open {child}", f"close {child}"]
    assert sorted(kind for kind, _ in events) == ["failed", "started", "started", "succeeded"]
    assert {pid for _, pid in events} == {os.getpid()}  # hooks run in the worker's process
    succeeded = registry.get_sample_value(
        "conveyor_jobs_succeeded_total", {"name": user.name, "queue": "default"}
    )
    failed = registry.get_sample_value(
        "conveyor_jobs_failed_total", {"name": failing.name, "queue": "default"}
    )
    assert (succeeded, failed) == (1.0, 1.0)


async def test_at_shutdown_a_job_still_running_in_a_child_goes_back_to_pending(
    papp: conveyor.App, tmp_path: Path
) -> None:
    stubborn = register(papp, jobs.ignores_cancel)
    started = tmp_path / "started"
    handle = stubborn.enqueue(started=str(started))
    worker = papp.worker()
    await worker.start()
    try:
        await wait_until_async(started.exists, what="the job started in its child")
    finally:
        await worker.stop(timeout=0.2)
    job = papp.jobs.get(handle.id)
    assert job is not None and job.state is JobState.PENDING and job.attempt == 0


def test_drain_runs_process_jobs_in_the_tests_own_process(app: conveyor.App) -> None:
    pid = register(app, jobs.pid)
    handle = pid.enqueue()
    app.testing.drain()
    job = app.jobs.get(handle.id)
    assert job is not None and job.result == os.getpid()


async def test_a_result_that_cannot_leave_the_child_fails_that_attempt_alone(
    papp: conveyor.App,
) -> None:
    bad = register(papp, jobs.unsendable, max_attempts=1)
    pid = register(papp, jobs.pid)
    async with papp.worker():
        failed = await bad.enqueue().wait_async(30)
        fine = await pid.enqueue().wait_async(30)
    assert failed.state is JobState.FAILED and failed.errors[0].kind == "result"
    assert "the result cannot be sent" in failed.errors[0].message
    assert fine.state is JobState.COMPLETED


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_script_without_the_main_guard_gets_a_clear_error_not_a_respawn_storm(
    app: conveyor.App, tmp_path: Path
) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import asyncio, os\n"
        "import conveyor\n"
        f"app = conveyor.App({app.url!r}, processes=1)\n"
        "def where(ctx):\n"
        "    return os.getpid()\n"
        "app.job(name='where', executor='process', max_attempts=1)(where)\n"
        "async def main():\n"
        "    handle = app.enqueue('where')\n"
        "    async with app.worker():\n"
        "        job = await handle.wait_async(30)\n"
        "    print('RESULT', job.state, job.errors[-1].message if job.errors else '')\n"
        "asyncio.run(main())\n"  # no `if __name__ == "__main__":`
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stdout + done.stderr
    assert lines[-1].startswith("RESULT failed")
    assert "if __name__ == '__main__':" in lines[-1]
