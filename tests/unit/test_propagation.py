"""Context propagation: contextvars at enqueue time are set again while the job runs."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import JobState

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
tenant: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("tenant")
traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return "memory://"


@pytest.fixture
def app(url: str) -> Iterator[conveyor.App]:
    application = conveyor.App(url, poll_interval=0.05)
    application.propagate(request_id, tenant, traceparent)
    yield application
    application.close()


def define(app: conveyor.App, seen: list[tuple[str, Any, Any, str]]) -> None:
    @app.job
    async def async_job(ctx: conveyor.Context) -> None:
        seen.append(("async", request_id.get(None), tenant.get(None), traceparent.get() or ""))

    @app.job
    def sync_job(ctx: conveyor.Context) -> None:
        assert threading.current_thread() is not threading.main_thread()
        seen.append(("sync", request_id.get(None), tenant.get(None), traceparent.get() or ""))


def enqueue_in_request(app: conveyor.App, rid: str) -> list[conveyor.JobHandle]:
    """What a web request handler does: set the vars, enqueue; the vars end with the request."""

    def handler() -> list[conveyor.JobHandle]:
        request_id.set(rid)
        tenant.set({"id": 7, "plan": "pro"})
        traceparent.set("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        return [app.enqueue("async_job"), app.enqueue("sync_job")]

    return contextvars.copy_context().run(handler)


def test_values_travel_through_the_store_and_are_set_while_the_job_runs(
    app: conveyor.App,
) -> None:
    seen: list[tuple[str, Any, Any, str]] = []
    define(app, seen)
    handles = enqueue_in_request(app, "req-1")
    assert handles[0].job.metadata["ctx:request_id"] == '"req-1"'
    assert handles[0].job.metadata["ctx:tenant"] == '{"id":7,"plan":"pro"}'
    assert request_id.get(None) is None  # the producer's own context is untouched
    app.testing.drain()
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert sorted(seen) == [
        ("async", "req-1", {"id": 7, "plan": "pro"}, trace),
        ("sync", "req-1", {"id": 7, "plan": "pro"}, trace),
    ]
    assert request_id.get(None) is None  # and nothing leaked into the caller's context


async def test_with_a_worker_in_the_same_process(app: conveyor.App) -> None:
    seen: list[tuple[str, Any, Any, str]] = []
    define(app, seen)
    first = enqueue_in_request(app, "req-A")
    second = enqueue_in_request(app, "req-B")
    async with app.worker(concurrency=4):
        for handle in first + second:
            assert (await handle.wait_async(10)).state is JobState.COMPLETED
    assert sorted((kind, rid) for kind, rid, _, _ in seen) == [
        ("async", "req-A"),
        ("async", "req-B"),
        ("sync", "req-A"),
        ("sync", "req-B"),
    ]


def test_unset_variables_are_not_stored_and_stay_unset(app: conveyor.App) -> None:
    seen: list[tuple[str, Any, Any, str]] = []
    define(app, seen)
    handle = app.enqueue("async_job")
    assert not [key for key in handle.job.metadata if key.startswith("ctx:")]
    app.testing.drain()
    assert seen == [("async", None, None, "")]


def test_a_value_that_is_not_json_is_refused_at_enqueue(app: conveyor.App) -> None:
    define(app, [])

    def handler() -> None:
        request_id.set(object())  # type: ignore[arg-type]
        app.enqueue("async_job")

    with pytest.raises(conveyor.ArgumentsNotSerializable, match="request_id"):
        contextvars.copy_context().run(handler)
    assert app.testing.enqueued() == []


def test_explicit_metadata_wins_over_a_propagated_value(app: conveyor.App) -> None:
    define(app, [])

    def handler() -> conveyor.JobHandle:
        request_id.set("from-context")
        return app.enqueue("async_job", metadata={"ctx:request_id": '"explicit"'})

    handle = contextvars.copy_context().run(handler)
    assert handle.job.metadata["ctx:request_id"] == '"explicit"'


def test_another_process_registers_the_same_names(tmp_path: Path) -> None:
    """The worker side has its own ContextVar objects (another process importing the app);
    they are matched by name. Variables the worker did not register are ignored."""
    url = f"sqlite:///{tmp_path}/jobs.db"
    producer = conveyor.App(url)
    producer.propagate(request_id, tenant)
    producer.declare("report")

    worker_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    consumer = conveyor.App(url)
    consumer.propagate(worker_request_id)
    seen: list[str | None] = []

    @consumer.job
    def report(ctx: conveyor.Context) -> None:
        seen.append(worker_request_id.get(None))

    def handler() -> None:
        request_id.set("req-9")
        tenant.set({"id": 1})
        producer.enqueue("report")

    contextvars.copy_context().run(handler)
    result = consumer.testing.drain()
    assert [job.state for job in result.completed] == [JobState.COMPLETED]
    assert seen == ["req-9"]
    producer.close()
    consumer.close()


def test_two_variables_with_one_name_are_refused() -> None:
    app = conveyor.App("memory://")
    app.propagate(request_id)
    app.propagate(request_id)  # the same variable again is fine
    with pytest.raises(conveyor.ConfigurationError, match="distinct name"):
        app.propagate(contextvars.ContextVar("request_id"))


CHILD = """
import contextvars, os, sys, threading
import conveyor

request_id = contextvars.ContextVar("request_id")
app = conveyor.App(sys.argv[1])
app.propagate(request_id)

@app.job
def whoami(ctx):
    return {"pid": os.getpid(), "request_id": request_id.get(None),
            "thread": threading.current_thread().name}

result = app.testing.drain()
sys.exit(0 if len(result.completed) == 1 else 1)
"""


def test_across_processes(tmp_path: Path) -> None:
    """Enqueued here, run by another Python process that registers the variable by name."""
    url = f"sqlite:///{tmp_path}/jobs.db"
    producer = conveyor.App(url)
    producer.propagate(request_id)
    producer.declare("whoami")

    def handler() -> conveyor.JobHandle:
        request_id.set("req-from-parent")
        return producer.enqueue("whoami")

    handle = contextvars.copy_context().run(handler)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    job = handle.refresh()
    assert job.state is JobState.COMPLETED
    assert job.result["request_id"] == "req-from-parent"
    assert job.result["pid"] != os.getpid()
    producer.close()
