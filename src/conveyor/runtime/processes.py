"""The process executor: plain-function jobs run in reused child processes, so that a job that
hangs can be stopped (SIGTERM, then SIGKILL after a grace period) and one that crashes takes
only its own attempt with it. Children start from a fork server (spawn on macOS), import the
job's module once, and are replaced when they die, are killed, or reach their limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.runtime import child as child_loop
from conveyor.runtime.registry import JobDefinition

log = logging.getLogger("conveyor.processes")
ReportSink = Callable[[str, "float | None", "str | None", "str | None"], None]
# plain pickle rather than Connection.send's ForkingPickler, which copies its reducer table
# for every message; nothing sent needs its reducers (no sockets or shared objects)
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# multiprocessing.Connection's framing, which the child writes with send_bytes
_HEADER, _LONG_HEADER = struct.Struct("!i"), struct.Struct("!Q")
# A fork server reports a child's exit code through a pipe that the first reader consumes,
# and Process.start() polls every earlier child: a start and a join in two threads at once
# could both read it, and one would see 255. Both happen under this lock.
_REAPING = threading.Lock()
_MAIN_GUARD = (
    "a script that starts a worker itself needs `if __name__ == '__main__':` around that "
    "code, since children import the main module (docs/executors.md)"
)


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


@dataclass(eq=False, slots=True)
class _Request:
    """A job waiting for, or running in, a child."""

    job: Any
    definition: JobDefinition
    sink: ReportSink
    answer: asyncio.Future[Any]
    parents: dict[str, Any] | None = None  # a workflow step's parents' results
    child: _Child | None = None
    settled: asyncio.Future[None] | None = None  # set by _stop: resolves when the child answers

    def settle(self) -> None:
        """The child answered or is gone: wake a `_stop` waiting through the grace period."""
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)


class _Child:
    """One child process and its pipe, seen from the parent's event loop. It tells its pool
    when it is free again (`on_free`) or gone (`on_lost`), from the loop's reader callback."""

    def __init__(
        self,
        context: Any,
        measure_memory: bool,
        on_free: Callable[[_Child], None],
        on_lost: Callable[[_Child], None],
    ) -> None:
        self._cancel = context.RawValue("b", 0)
        parent_end, child_end = context.Pipe(duplex=True)
        self.conn: Connection = parent_end
        self.process = context.Process(
            target=child_loop.serve, args=(child_end, self._cancel, measure_memory),
            daemon=True, name="conveyor-child",
        )  # fmt: skip
        self._child_end = child_end
        self._on_free = on_free
        self._on_lost = on_lost
        self.tasks = 0
        self.rss = 0
        self.dead = False
        self.request: _Request | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._buffer = b""

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until it is ready (blocking: call it from a thread).
        Raises ChildCrashed when it dies first, or does not answer within `timeout`."""
        try:
            with _REAPING:
                self.process.start()
        except RuntimeError as exc:  # multiprocessing's "bootstrapping phase" refusal
            raise ChildCrashed(f"the child process could not start: {_MAIN_GUARD}") from exc
        self._child_end.close()
        try:
            ready = self.conn.poll(timeout) and self.conn.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            code = self._exit_code(5.0)
            raise ChildCrashed(
                f"the child process {exit_description(code)} before it was ready: {_MAIN_GUARD}"
            )

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the child's messages on `loop`."""
        self._loop = loop
        self._fd = self.conn.fileno()
        loop.add_reader(self._fd, self._readable)

    def send(self, request: _Request) -> None:
        """Hand `request` to the child; its answer resolves `request.answer`."""
        func = request.definition.func
        request.child, self.request = self, request
        wire = child_loop.job_to_wire(request.job)
        message = ("run", wire, func.__module__, func.__qualname__, request.parents)
        try:
            self.conn.send_bytes(pickle.dumps(message, _PROTOCOL))
        except OSError:
            self._gone()

    def cancel(self, request: _Request) -> None:
        """Raise `ctx.cancel_requested` of `request`'s job, if this child still runs it."""
        if self.request is request:
            self._cancel.value = 1

    def _readable(self) -> None:
        # One read takes whatever the child has written (often several messages): each
        # syscall lets go of the GIL, and getting it back behind the store's threads is what
        # a message costs the worker, so Connection.recv's two reads per message are avoided.
        try:
            data = os.read(self._fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._gone()
            return
        buffer = self._buffer = self._buffer + data if self._buffer else data
        offset, size = 0, len(buffer)
        while size - offset >= 4:
            (length,) = _HEADER.unpack_from(buffer, offset)
            start = offset + 4
            if length == -1:  # Connection's header for a message of 2 GiB or more
                if size - start < 8:
                    break
                (length,) = _LONG_HEADER.unpack_from(buffer, start)
                start += 8
            if size - start < length:
                break
            offset = start + length
            self._dispatch(pickle.loads(buffer[start:offset]))
            if self.conn.closed:
                return
        self._buffer = buffer[offset:]

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        request = self.request
        if request is None:
            return
        if message[0] == "report":
            _, job_id, pct, text, line = message
            if job_id == request.job.id:
                request.sink(job_id, pct, text, line)
        elif message[0] == "done" and message[1] == request.job.id:
            _, _, answer, self.rss = message
            self.tasks += 1
            self.request = None
            if not request.answer.done():
                request.answer.set_result(answer)
            request.settle()
            self._on_free(self)

    def _gone(self) -> None:
        """The pipe closed: the child died. Fail its job with how it ended."""
        if self.conn.closed:
            return
        self.dead = True
        self._detach()
        request, self.request = self.request, None
        loop = self._loop
        if request is not None:
            request.settle()
        if request is not None and not request.answer.done() and loop is not None:
            answer = request.answer

            async def report_exit() -> None:
                code = await asyncio.to_thread(self._exit_code, 5.0)
                if not answer.done():
                    answer.set_exception(
                        ChildCrashed(f"the job's process {exit_description(code)}")
                    )

            loop.create_task(report_exit())
        self._on_lost(self)

    def _exit_code(self, timeout: float) -> int | None:
        """The child's exit code once it has ended (None if not within `timeout`)."""
        multiprocessing.connection.wait([self.process.sentinel], timeout)  # reads nothing
        with _REAPING:
            self.process.join(0)
        code: int | None = self.process.exitcode
        return code

    def _detach(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.conn.fileno())
        self.conn.close()

    async def kill(self, grace: float) -> None:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
        was_dead, self.dead = self.dead, True
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
        request, self.request = self.request, None
        if request is not None:
            request.settle()
        if request is not None and not request.answer.done():
            request.answer.set_exception(
                ChildCrashed(f"the job's process {exit_description(self.process.exitcode)}")
            )
        if not was_dead:
            self._on_lost(self)

    def retire(self) -> None:
        """Ask an idle child to leave (it exits after reading the message)."""
        self.dead = True
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self._detach()


class ProcessPool:
    """Up to `size` reused children. A job goes to an idle child at once, else waits in line;
    a child that answers takes the next job in line from the reader callback itself, so a
    busy pool never idles a child for a turn of the event loop. Start the children with
    `warm_up` (else on first use); `close` stops them all."""

    def __init__(self, size: int, limits: ChildLimits = ChildLimits()) -> None:
        self.size = max(1, size)
        self.limits = limits
        self._context = multiprocessing.get_context(start_method())
        self._idle: list[_Child] = []
        self._line: deque[_Request] = deque()
        self._count = 0  # children alive or starting
        self._closed = False
        self._all: set[_Child] = set()
        self._starting: set[asyncio.Task[None]] = set()

    async def warm_up(self) -> None:
        """Start every child now, so that the first jobs do not wait for them."""
        missing = self.size - self._count
        self._count += missing
        await asyncio.gather(*(self._start_one() for _ in range(missing)))

    async def run(
        self,
        job: Any,
        definition: JobDefinition,
        sink: ReportSink,
        stop_reason: Callable[[], str | None],
        parents: dict[str, Any] | None = None,
    ) -> Any:
        """Run `job` in a child and return its result; raises RemoteFailure or ChildCrashed.
        `parents`: what the job's `ctx.parent_results()` returns there (workflow steps).
        When this coroutine is cancelled (timeout, cancel, shutdown), the child is stopped:
        a cancelled job first sees `ctx.cancel_requested` for `grace` seconds."""
        if self._closed:
            raise ChildCrashed("the process pool is closed: the worker is stopping")
        answer = asyncio.get_running_loop().create_future()
        request = _Request(job, definition, sink, answer, parents)
        if self._idle:
            self._idle.pop().send(request)
        else:
            self._line.append(request)
            if self._count < self.size:
                self._grow()
        try:
            result = await request.answer
        except asyncio.CancelledError:
            if request.child is None:
                with contextlib.suppress(ValueError):
                    self._line.remove(request)  # never started
            else:
                await self._stop(request, stop_reason())
            if not request.answer.done():
                request.answer.cancel()
            raise
        if result[0] == "ok":
            return result[1]
        kind, message, text, delay = result
        raise RemoteFailure(kind, message, text, delay)

    async def _stop(self, request: _Request, reason: str | None) -> None:
        """Stop `request`'s job: a cancelled one first sees `ctx.cancel_requested` for the
        grace period (its child stays if it returns in time); else SIGTERM, then SIGKILL."""
        child, grace = request.child, self.limits.grace
        if child is None or child.request is not request:
            return  # it has answered already
        if reason == "cancelled":
            child.cancel(request)
            request.settled = settled = asyncio.get_running_loop().create_future()
            await asyncio.wait([settled], timeout=grace)
            if settled.done():
                return
        await child.kill(grace if reason != "shutdown" else min(grace, 1.0))

    def _grow(self) -> None:
        """Start one more child in the background; it takes the next job in line."""
        self._count += 1
        task = asyncio.get_running_loop().create_task(self._start_one())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_one(self) -> None:
        try:
            child = _Child(self._context, self.limits.max_memory > 0, self._free, self._lost)
            await asyncio.to_thread(child.start)
        except Exception as exc:
            self._count -= 1
            exc = exc if isinstance(exc, ChildCrashed) else ChildCrashed(" ".join(str(exc).split()))
            log.error("could not start a child process for process jobs: %s", exc)
            if self._count == 0:  # nobody would ever take the jobs in line
                while self._line:
                    answer = self._line.popleft().answer
                    if not answer.done():
                        answer.set_exception(exc)
            return
        child.attach(asyncio.get_running_loop())
        self._all.add(child)
        self._free(child)

    def _free(self, child: _Child) -> None:
        """`child` answered (or just started): give it the next job in line, keep it idle,
        or replace it when it reached its limits."""
        limits = self.limits
        worn = (limits.max_tasks and child.tasks >= limits.max_tasks) or (
            limits.max_memory and child.rss > limits.max_memory
        )
        if self._closed or worn:
            if worn:
                log.info(
                    "recycling child process %s after %d job(s), %d MiB resident",
                    child.process.pid, child.tasks, child.rss // 2**20,
                )  # fmt: skip
            child.retire()
            self._lost(child)
            return
        while self._line:
            request = self._line.popleft()
            if not request.answer.done():
                child.send(request)
                return
        self._idle.append(child)

    def _lost(self, child: _Child) -> None:
        """`child` is gone (died, killed or retired): count it out and replace it."""
        if child not in self._all:
            return
        self._all.discard(child)
        with contextlib.suppress(ValueError):
            self._idle.remove(child)
        self._count -= 1
        if not self._closed:
            self._grow()

    async def close(self) -> None:
        """Stop every child: idle ones are asked to leave, any still busy are killed."""
        self._closed = True
        while self._line:
            answer = self._line.popleft().answer
            if not answer.done():
                answer.set_exception(ChildCrashed("the worker is stopping"))
        for child in self._idle:
            child.retire()
        self._idle.clear()
        for task in list(self._starting):
            task.cancel()
        busy = [child for child in self._all if not child.dead]
        await asyncio.gather(*(child.kill(1.0) for child in busy), return_exceptions=True)
        for child in list(self._all):
            await asyncio.to_thread(child._exit_code, 2.0)
        self._all.clear()
