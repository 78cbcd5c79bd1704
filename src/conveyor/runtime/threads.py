"""A thread pool of daemon threads for sync jobs.

The standard ThreadPoolExecutor joins its threads at interpreter exit, so one hung sync job would
keep a stopped worker process alive forever. These threads are daemons: a worker that has
released its jobs can exit even while a sync job ignores its cancellation.

`run_in_loop` is the worker's way in: results go back to the event loop in batches (one
wake-up of the loop for every call that ended meanwhile), which costs a fraction of a
`loop.run_in_executor` round trip per call when many short sync jobs run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from conveyor.errors import UsageError

P = ParamSpec("P")
T = TypeVar("T")

_Item = Callable[[], None]


class DaemonThreadPool(Executor):
    """Runs callables on up to `max_workers` daemon threads, started on demand."""

    def __init__(self, max_workers: int, name: str = "conveyor-job") -> None:
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._shutdown = False
        self._mailboxes: dict[asyncio.AbstractEventLoop, _Mailbox] = {}

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule `fn(*args, **kwargs)`; returns its Future."""
        future: Future[T] = Future()
        self._put(functools.partial(_run_for_future, future, lambda: fn(*args, **kwargs)))
        return future

    def run_in_loop(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T]
    ) -> asyncio.Future[T]:
        """Schedule `fn()`; its outcome arrives as a future of `loop` (called from the loop).

        Like `loop.run_in_executor(pool, fn)`: cancelling the future before `fn` starts means it
        never runs; once it runs, its outcome is dropped. Outcomes are handed to the loop in
        batches, one wake-up for all the calls that ended since the last one was delivered.
        """
        mailbox = self._mailboxes.get(loop)
        if mailbox is None:
            mailbox = self._mailboxes[loop] = _Mailbox(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._put(functools.partial(mailbox.run, future, fn))
        return future

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._shutdown:
                raise UsageError("the job thread pool is shut down")
            self._queue.put(item)
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            if item is None:
                return
            item()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once their current call returns; never waits for hung calls."""
        with self._lock:
            self._shutdown = True
            for _ in self._threads:
                self._pending += 1
                self._queue.put(None)


def _run_for_future(future: Future[Any], call: Callable[[], Any]) -> None:
    if future.set_running_or_notify_cancel():
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)


class _Mailbox:
    """Outcomes of calls made for one event loop, delivered to it in batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._scheduled = False

    def run(self, future: asyncio.Future[Any], call: Callable[[], Any]) -> None:
        """In a pool thread: run `call` unless its future was cancelled, post the outcome."""
        if future.cancelled():
            return
        outcome: tuple[asyncio.Future[Any], Any, BaseException | None]
        try:
            outcome = (future, call(), None)
        except BaseException as exc:
            outcome = (future, None, exc)
        with self._lock:
            self._outcomes.append(outcome)
            wake, self._scheduled = not self._scheduled, True
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            outcomes, self._outcomes, self._scheduled = self._outcomes, [], False
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            try:
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            except Exception as exc:  # e.g. StopIteration, which a future refuses
                self._loop.call_exception_handler(
                    {"message": "a job thread's outcome could not be delivered", "exception": exc}
                )
