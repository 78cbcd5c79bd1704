"""What the web tests share: a sample app, tokens, waiting on conditions, a live server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

import conveyor

MANAGE_TOKEN = "manage-secret-token"
VIEW_TOKEN = "view-secret-token"
TOKENS = {MANAGE_TOKEN: {"manage"}, VIEW_TOKEN: {"view"}}
EVIL = "<script>alert('pwned')</script>"


def build_app(url: str = "memory://", **settings: Any) -> conveyor.App:
    """An app with a quick job, a failing one, one logging markup, a slow one, and a
    recurring job; `settings` are more App settings."""
    app = conveyor.App(url, heartbeat_interval=0.5, lease_seconds=5, **settings)
    app.queue("reports", concurrency=2)

    @app.job
    def hello(ctx: conveyor.Context, who: str = "world") -> str:
        ctx.log(f"hello {who}")
        return f"hello {who}"

    @app.job(max_attempts=1)
    def boom(ctx: conveyor.Context) -> None:
        raise RuntimeError("boom: the disk is full")

    @app.job
    def evil(ctx: conveyor.Context, note: str = "") -> None:
        ctx.log(EVIL)
        ctx.progress(40, EVIL)

    @app.job(queue="reports")
    async def slow(ctx: conveyor.Context, steps: int = 50, pause: float = 0.2) -> str:
        for step in range(steps):
            ctx.progress(100 * step / steps, f"step {step} of {steps}")
            if step % 5 == 0:
                ctx.log(f"reached step {step}")
            await asyncio.sleep(pause)  # the job's own pace: the test watches it advance
        return "done"

    app.recurring("nightly-report", "0 3 * * *", "hello", kwargs={"who": "night"})
    return app


def sync_recurring(app: conveyor.App) -> None:
    """Store the code-defined recurring jobs without starting a worker."""
    for definition in app.environment().recurring:
        app.recurring_jobs.add(
            definition.name, definition.cron, definition.job_name, args=definition.args
        )


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll until `predicate` returns something truthy (and return it); fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """The dashboard served by uvicorn on a thread, with a worker running on another."""

    app: conveyor.App
    url: str
    server: uvicorn.Server
    server_thread: threading.Thread
    worker_loop: asyncio.AbstractEventLoop
    worker_thread: threading.Thread
    stop_worker: asyncio.Event

    def close(self) -> None:
        self.server.should_exit = True
        self.server_thread.join(10)
        self.worker_loop.call_soon_threadsafe(self.stop_worker.set)
        self.worker_thread.join(15)


def start_live_server(app: conveyor.App, web: FastAPI) -> LiveServer:
    """Serve `web` on a free port and run a worker for `app`; returns once both are up."""
    port = free_port()
    config = uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server_thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    server_thread.start()

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def run_worker() -> None:
        async with app.worker(concurrency=4):
            ready.set()
            await stop.wait()

    def worker_main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run_worker())
        loop.close()

    worker_thread = threading.Thread(target=worker_main, name="web-test-worker", daemon=True)
    worker_thread.start()
    wait_for(lambda: server.started, what="uvicorn to start")
    wait_for(ready.is_set, what="the worker to start")
    return LiveServer(
        app, f"http://127.0.0.1:{port}", server, server_thread, loop, worker_thread, stop
    )
