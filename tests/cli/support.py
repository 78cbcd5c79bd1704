"""A project folder with a jobs module on a real SQLite store, a worker to run its jobs, and a
runner for the real `conveyor` entry point (click's CliRunner on the root group)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from click.testing import CliRunner, Result

from conveyor import App
from conveyor.cli.commands import cli

JOBS_MODULE = """
import threading
from datetime import timedelta

import conveyor
from conveyor.model.job import utcnow
from conveyor.model.options import Backoff

URL = "sqlite:///{db}"
OFFSET = [timedelta(0)]  # tests move this app's clock forward
GATE = threading.Event()  # the "slow" job waits for it


def clock():
    return utcnow() + OFFSET[0]


def build(clock=clock):
    app = conveyor.App(URL, clock=clock, poll_interval=0.05, heartbeat_interval=0.2,
                       lease_seconds=5)
    app.queue("serial", concurrency=1)

    @app.job
    def greet(ctx, name):
        ctx.log("greeting " + name)
        return "hello " + name

    @app.job(max_attempts=1)
    def boom(ctx):
        raise ValueError("kaboom")

    @app.job(queue="emails")
    def send(ctx, to):
        return to

    @app.job
    def slow(ctx):
        ctx.progress(50, "halfway")
        ctx.log("step 1")
        GATE.wait(20)
        ctx.log("step 2")
        ctx.progress(100, "done")
        return "ok"

    return app


app = build()
"""


@dataclass
class Project:
    """The folder, the module's name and the imported module."""

    path: Path
    name: str
    module: ModuleType

    @property
    def ref(self) -> str:
        """The MODULE:APP reference."""
        return f"{self.name}:app"

    @property
    def app(self) -> App:
        """The module's App (the one the CLI loads)."""
        app: App = self.module.app
        return app

    def invoke(self, *args: str, app: bool = True) -> Result:
        """Run `conveyor [--app ref] ARGS…` through the real root group."""
        argv = ["--app", self.ref, *args] if app else list(args)
        return CliRunner(env={"COLUMNS": "200"}).invoke(cli, argv, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        """Run a verb with --json; assert it succeeded and return the parsed output."""
        result = self.invoke(*args, "--json")
        assert result.exit_code == 0, result.output + result.stderr
        return json.loads(result.stdout)

    def enqueue(self, job_name: str, /, **args: Any) -> str:
        """Enqueue through the module's app; the job's id."""
        return self.app.enqueue(job_name, args).id


def assert_one_line_error(result: Result, code: int, words: str) -> None:
    """The command failed with `code` and one line on stderr mentioning `words`."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        threading.Event().wait(0.02)


@contextmanager
def running_worker(app: App) -> Iterator[None]:
    """Run a worker of `app` on a thread (its own event loop) while the block runs."""
    started, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        async with app.worker(concurrency=4):
            started.set()
            await asyncio.to_thread(stop.wait)

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported in the test
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(15), "the worker did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(20)
        app.close()
    assert not errors, errors


def run_until_finished(app: App, ids: list[str]) -> None:
    """Run a worker until every job in `ids` is finished."""

    def finished() -> bool:
        return all(app.jobs.require(job_id).is_finished for job_id in ids)

    with running_worker(app):
        wait_for(finished, what=f"jobs {ids} to finish")
