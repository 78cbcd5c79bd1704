"""The process executor: plain-function jobs run in reused child processes, so that a job that
hangs can be stopped (SIGTERM, then SIGKILL after a grace period) and one that crashes takes
only its own attempt with it. Children start from a fork server (spawn on macOS), import the
job's module once, and are replaced when they die, are killed, or reach their limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import operator
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.model.job import JOB_FIELDS
from conveyor.runtime import child as child_loop
from conveyor.runtime.registry import JobDefinition

log = logging.getLogger("conveyor.processes")
ReportSink = Callable[[str, "float | None", "str | None", "str | None"], None]
# A job crosses the pipe as the tuple of its fields: pickling the frozen dataclass itself
# cost several times more (its __getstate__ builds a list per job).
_job_values = operator.attrgetter(*JOB_FIELDS)


class ChildCrashed(ConveyorError):
    """The child process running the job died (a segfault, os._exit, the OOM killer...)."""


class RemoteFailure(Exception):
    """A job in a child ended with an exception (or Retry/Fail): how, as the child saw it."""

    def __init__(self, kind: str, message: str, text: str, delay: float | None) -> None:
        super().__init__(message)
        self.kind = kind  # error | retry | fail | arguments | result
        self.message = message
        self.text = text
        self.delay = delay


@dataclass(frozen=True, slots=True)
class ChildLimits:
    """When children are replaced: after `grace` seconds a stopped job's child is killed;
    a child is recycled after `max_tasks` jobs or above `max_memory` bytes (0 = never)."""

    grace: float = 5.0
    max_tasks: int = 0
    max_memory: int = 0


def start_method() -> str:
    """How children start: from a fork server on Linux (no threads or store connections are
    inherited), spawned on macOS and Windows."""
    if sys.platform == "linux":
        return "forkserver"
    return "spawn"


def exit_description(code: int | None) -> str:
    """How a child ended, in words: 'was killed by signal 9 (SIGKILL)'."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


class _Child:
    """One child process and its pipe, seen from the parent's event loop."""

    def __init__(self, context: Any, measure_memory: bool) -> None:
        self._context = context
        self._cancel = context.RawValue("b", 0)
        parent_end, child_end = context.Pipe(duplex=True)
        self.conn: Connection = parent_end
        self.process = context.Process(
            target=child_loop.serve, args=(child_end, self._cancel, measure_memory),
            daemon=True, name="conveyor-child",
        )  # fmt: skip
        self._child_end = child_end
        self.tasks = 0
        self.rss = 0
        self.dead = False
        self._job_id: str | None = None
        self._answer: asyncio.Future[Any] | None = None
        self._sink: ReportSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the process (blocking: call it from a thread)."""
        self.process.start()
        self._child_end.close()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the child's messages on `loop`."""
        self._loop = loop
        loop.add_reader(self.conn.fileno(), self._readable)

    def run(self, job: Any, definition: JobDefinition, sink: ReportSink) -> asyncio.Future[Any]:
        """Send the job; the future resolves with the child's answer (or ChildCrashed)."""
        assert self._loop is not None
        func = definition.func
        self._job_id, self._sink = job.id, sink
        self._answer = answer = self._loop.create_future()
        self.conn.send(("run", _job_values(job), func.__module__, func.__qualname__))
        return answer

    def cancel(self) -> None:
        """Raise the job's `ctx.cancel_requested`."""
        self._cancel.value = 1

    def _readable(self) -> None:
        # One message per call: the loop calls again while the pipe stays readable, and
        # Connection.poll() would build a selector per call.
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self._gone()
        else:
            self._dispatch(message)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        if message[0] == "report":
            _, job_id, pct, text, line = message
            if job_id == self._job_id and self._sink is not None:
                self._sink(job_id, pct, text, line)
        elif message[0] == "done":
            _, job_id, answer, rss = message
            self.rss = rss
            if job_id == self._job_id and self._answer is not None and not self._answer.done():
                self.tasks += 1
                self._answer.set_result(answer)

    def _gone(self) -> None:
        """The pipe closed: the child died. Fail its job with how it ended."""
        self.dead = True
        if self.conn.closed:
            return
        self._detach()
        answer = self._answer
        if answer is None or answer.done() or self._loop is None:
            return

        async def report_exit() -> None:
            code = await asyncio.to_thread(self._exit_code, 5.0)
            if not answer.done():
                answer.set_exception(ChildCrashed(f"the job's process {exit_description(code)}"))

        self._loop.create_task(report_exit())

    def _exit_code(self, timeout: float) -> int | None:
        self.process.join(timeout)
        code: int | None = self.process.exitcode
        return code

    def _detach(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.conn.fileno())
        self.conn.close()

    async def kill(self, grace: float) -> None:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
        self.dead = True
        pid = self.process.pid
        if pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if await asyncio.to_thread(self._exit_code, grace) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await asyncio.to_thread(self._exit_code, 5.0)
        if not self.conn.closed:
            self._detach()
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_exception(
                ChildCrashed(f"the job's process {exit_description(self.process.exitcode)}")
            )

    def retire(self) -> None:
        """Ask an idle child to leave (it exits after reading the message)."""
        self.dead = True
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self._detach()


class ProcessPool:
    """Up to `size` reused children; a job waits for a free one. Start them with `warm_up`
    (or on first use); `close` stops them all."""

    def __init__(self, size: int, limits: ChildLimits = ChildLimits()) -> None:
        self.size = max(1, size)
        self.limits = limits
        self._context = multiprocessing.get_context(start_method())
        self._idle: list[_Child] = []
        self._count = 0
        self._freed: asyncio.Event | None = None
        self._closed = False
        self._all: set[_Child] = set()

    async def warm_up(self) -> None:
        """Start every child now, so that the first jobs do not wait for them."""
        started = [await self._spawn() for _ in range(self.size - self._count)]
        self._idle.extend(started)
        self._signal_freed()

    async def run(
        self,
        job: Any,
        definition: JobDefinition,
        sink: ReportSink,
        stop_reason: Callable[[], str | None],
    ) -> Any:
        """Run `job` in a child and return its result; raises RemoteFailure or ChildCrashed.
        When this coroutine is cancelled (timeout, cancel, shutdown), the child is stopped:
        a cancelled job first sees `ctx.cancel_requested` for `grace` seconds."""
        worker = await self._acquire()
        answer: asyncio.Future[Any] | None = None
        try:
            answer = worker.run(job, definition, sink)
            try:
                result = await answer
            except asyncio.CancelledError:
                await self._stop(worker, answer, stop_reason())
                raise
        finally:
            if answer is not None and not answer.done():
                answer.cancel()  # nobody waits for it any more
            self._release(worker, answered=answer is not None and not answer.cancelled())
        if result[0] == "ok":
            return result[1]
        kind, message, text, delay = result
        raise RemoteFailure(kind, message, text, delay)

    async def _stop(self, worker: _Child, answer: asyncio.Future[Any], reason: str | None) -> None:
        """Stop the job in `worker`: a cancelled job first sees `ctx.cancel_requested` for
        the grace period (its child stays if it returns in time); else SIGTERM, SIGKILL."""
        grace = self.limits.grace
        if reason == "cancelled":
            worker.cancel()
            await asyncio.wait([answer], timeout=grace)
            if answer.done():
                return
        await worker.kill(grace if reason != "shutdown" else min(grace, 1.0))

    async def _acquire(self) -> _Child:
        while True:
            if self._closed:
                raise ChildCrashed("the process pool is closed: the worker is stopping")
            if self._idle:
                return self._idle.pop()
            if self._count < self.size:
                return await self._spawn()
            if self._freed is None:
                self._freed = asyncio.Event()
            self._freed.clear()
            await self._freed.wait()

    async def _spawn(self) -> _Child:
        self._count += 1
        try:
            worker = _Child(self._context, self.limits.max_memory > 0)
            await asyncio.to_thread(worker.start)
        except BaseException:
            self._count -= 1
            raise
        worker.attach(asyncio.get_running_loop())
        self._all.add(worker)
        return worker

    def _release(self, worker: _Child, answered: bool) -> None:
        """Give `worker` back: kept if it answered and is within its limits; else retired
        (idle) or killed (still busy with a job nobody waits for)."""
        limits = self.limits
        worn = (limits.max_tasks and worker.tasks >= limits.max_tasks) or (
            limits.max_memory and worker.rss > limits.max_memory
        )
        if answered and not worker.dead and not worn and not self._closed:
            self._idle.append(worker)
        else:
            if not worker.dead:
                if worn:
                    log.info(
                        "recycling child process %s after %d job(s), %d MiB resident",
                        worker.process.pid, worker.tasks, worker.rss // 2**20,
                    )  # fmt: skip
                if answered:
                    worker.retire()
                else:
                    asyncio.get_running_loop().create_task(worker.kill(self.limits.grace))
            self._all.discard(worker)
            self._count -= 1
        self._signal_freed()

    def _signal_freed(self) -> None:
        if self._freed is not None:
            self._freed.set()

    async def close(self) -> None:
        """Stop every child: idle ones are asked to leave, any still busy are killed."""
        self._closed = True
        self._signal_freed()
        for worker in self._idle:
            worker.retire()
        self._idle.clear()
        busy = [worker for worker in self._all if not worker.dead]
        await asyncio.gather(*(worker.kill(1.0) for worker in busy), return_exceptions=True)
        for worker in list(self._all):
            await asyncio.to_thread(worker._exit_code, 2.0)
        self._all.clear()
