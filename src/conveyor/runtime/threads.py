"""A thread pool of daemon threads for sync jobs.

The standard ThreadPoolExecutor joins its threads at interpreter exit, so one hung sync job would
keep a stopped worker process alive forever. These threads are daemons: a worker that has
released its jobs can exit even while a sync job ignores its cancellation.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_Item = tuple[Future[Any], Callable[[], Any]]


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

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule `fn(*args, **kwargs)`; returns its Future."""
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the job thread pool is shut down")
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

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
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:
                    future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once their current call returns; never waits for hung calls."""
        with self._lock:
            self._shutdown = True
            for _ in self._threads:
                self._pending += 1
                self._queue.put(None)
