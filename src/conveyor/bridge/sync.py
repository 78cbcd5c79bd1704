"""Bridge: background work whose callbacks run on the main loop's thread, when it drains."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from conveyor.bridge.core import (
    BridgeClosed,
    BridgeCore,
    CancelToken,
    ErrorHandler,
    ShutdownReport,
    _Item,
)
from conveyor.errors import UsageError


class Bridge(BridgeCore):
    """Run work on a pool; apply its results on the thread that calls `drain()` once per tick.

    Callbacks (`on_result`, `on_error`, `post`ed functions) run only inside `drain()`, on the
    draining thread, in the order their work finished. Work never touches main-loop state: it
    returns a value, and the callback applies it.

    `clock` (seconds, monotonic) measures drain budgets and try_schedule timeouts; deadlines are
    checked at the start of each `drain()`, so a test can pass a fake clock and advance it.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        use_processes: bool = False,
        error_handler: ErrorHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_workers, use_processes, error_handler)
        self._clock = clock
        self._ready: deque[Callable[[], Any]] = deque()
        self._owner: int | None = None

    def _deliver(self, item: _Item | None, callback: Callable[[], Any]) -> None:
        self._ready.append(callback)

    @property
    def pending(self) -> int:
        """Callbacks waiting for the next `drain()`."""
        return len(self._ready)

    # submitting -------------------------------------------------------------------------------
    def run_in_background(
        self,
        work: Callable[..., Any],
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        *,
        scoped: bool = False,
    ) -> None:
        """Run `work()` on the pool (an async function runs on the bridge's private event loop)
        and queue `on_result(value)` or `on_error(exc)` for the next `drain()`. Without
        `on_error`, a failure goes to the error handler. With `scoped`, `work(scope)` receives a
        `Scope` closed right after it returns."""
        self._submit(self._make_item(work, on_result, on_error, scoped))

    def try_schedule(
        self,
        feature: str,
        key: Hashable,
        work: Callable[..., Any],
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        timeout: float | None = None,
        *,
        scoped: bool = False,
    ) -> bool:
        """Run `work(token)` in `feature`'s queue unless `(feature, key)` is already in flight
        (scheduled and its callback not yet run): then return False and schedule nothing.

        `token.cancelled` turns True past `timeout` seconds (measured from now with the bridge's
        clock, checked by `drain()`); `on_error` then gets a TimeoutError and a late result is
        discarded. The feature's concurrency limit (see `feature()`) caps running items.
        """
        with self._lock:
            if (feature, key) in self._keys:
                return False  # checked first: a main loop asks every tick, cheaply
            item = self._make_item(work, on_result, on_error, scoped)
            item.feature = self._feature_named(feature)
            item.key = (feature, key)
            item.token = CancelToken()
            if timeout is not None:
                item.timeout = timeout
                item.deadline = self._clock() + timeout
            return self._submit(item)

    def post(self, fn: Callable[[], Any]) -> None:
        """Queue `fn()` for the next `drain()`; callable from any thread."""
        with self._lock:
            self._check_open()
            self._ready.append(fn)

    # the main thread's side -------------------------------------------------------------------
    def drain(self, max_callbacks: int | None = None, budget_s: float | None = None) -> int:
        """Run queued callbacks on this thread, oldest first; returns how many ran.

        Stops after `max_callbacks`, or before starting a callback once `budget_s` seconds have
        passed; the rest waits for the next call. An exception in a callback goes to the error
        handler and does not stop the others. Expired timeouts are detected here first.
        """
        self._claim_thread()
        self.check_timeouts()
        start = self._clock() if budget_s is not None else 0.0
        ran = 0
        ready = self._ready
        while ready:
            if max_callbacks is not None and ran >= max_callbacks:
                break
            if budget_s is not None and self._clock() - start >= budget_s:
                break
            self._run_callback(ready.popleft())
            ran += 1
        return ran

    def check_timeouts(self) -> int:
        """Expire keyed work past its deadline (done by `drain()`); returns how many."""
        if not self._timed:
            return 0
        now = self._clock()
        with self._lock:
            due = [i for i in self._timed if i.deadline is not None and i.deadline <= now]
            due.sort(key=lambda i: i.deadline or 0.0)
            for item in due:
                self._expire(item)
        return len(due)

    def _claim_thread(self) -> None:
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise UsageError(
                "drain() was called from another thread than before: callbacks must run on one "
                "thread, the main loop's"
            )

    def shutdown(self, timeout: float = 5.0) -> ShutdownReport:
        """Stop accepting work; cancel queued work; tell running work to stop (tokens) and wait
        up to `timeout` seconds for it. Work still running then is abandoned (its result will be
        discarded). Every item not finished normally gets `on_error(WorkCancelled(...))` (or the
        error handler). Finally runs every queued callback, on this thread."""
        self._claim_thread()
        with self._lock:
            if self._closed:
                return ShutdownReport()
            owed, cancelled_before = len(self._active), self._cancelled
        self._begin_shutdown()
        self._wait_running(timeout)
        self._abandon_running(timeout)
        self._release_pools()
        self.drain()
        cancelled = self._cancelled - cancelled_before
        return ShutdownReport(finished=max(owed - cancelled, 0), cancelled=cancelled)

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.shutdown()


__all__ = ["Bridge", "BridgeClosed", "ShutdownReport"]
