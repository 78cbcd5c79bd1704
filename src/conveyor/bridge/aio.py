"""AsyncBridge: background work whose callbacks run on a given asyncio event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from conveyor.bridge.core import BridgeCore, CancelToken, ErrorHandler, ShutdownReport, _Item
from conveyor.errors import UsageError


class AsyncBridge(BridgeCore):
    """Like `Bridge`, for an asyncio program: callbacks are delivered on `loop` through
    `call_soon_threadsafe` (no drain), and `run_in_background` / `try_schedule` return an
    `asyncio.Future` to await for the result.

    Call its methods from the loop's thread (`post` works from any thread). Timeouts use the
    loop's clock (`loop.call_later`).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_workers: int | None = None,
        use_processes: bool = False,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        super().__init__(max_workers, use_processes, error_handler)
        self.loop = loop

    def _deliver(self, item: _Item | None, callback: Callable[[], Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(self._run_callback, callback)
        except RuntimeError:  # the loop is closed: nobody is left to apply the result
            self._handle_error(RuntimeError("the AsyncBridge's event loop is closed"))

    def _callback(self, item: _Item, value: Any, error: BaseException | None) -> Callable[[], None]:
        base = super()._callback(item, value, error)

        def deliver() -> None:
            try:
                base()
            finally:
                handle: asyncio.Future[Any] | None = item.handle
                if handle is not None and not handle.done():
                    if error is None:
                        handle.set_result(value)
                    else:
                        handle.set_exception(error)
                        if item.on_error is not None:
                            handle.exception()  # reported to on_error: not "never retrieved"

        return deliver

    def _check_loop(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:
            raise UsageError("call AsyncBridge methods from its event loop's thread")

    def _attach(self, item: _Item, timeout: float | None) -> asyncio.Future[Any]:
        handle: asyncio.Future[Any] = self.loop.create_future()
        item.handle = handle

        def on_done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():  # the caller cancelled the handle: stop the work
                with self._lock:
                    if item.state in ("queued", "running"):
                        self._cancel(item, "its handle was cancelled")
                    if item.is_async and item.future is not None:
                        item.future.cancel()

        handle.add_done_callback(on_done)
        if timeout is not None:
            item.timeout = timeout
            timer = self.loop.call_later(timeout, self._expire_locked, item)
            handle.add_done_callback(lambda _f: timer.cancel())
        return handle

    def _expire_locked(self, item: _Item) -> None:
        with self._lock:
            self._expire(item)

    def run_in_background(
        self,
        work: Callable[..., Any],
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        *,
        scoped: bool = False,
    ) -> asyncio.Future[Any]:
        """Run `work()` on the pool (async work on the bridge's private loop); `on_result` /
        `on_error` run on `loop`; the returned future resolves to the result (or its error).
        Cancelling the future cancels the work (async work) or discards its result."""
        self._check_loop()
        item = self._make_item(work, on_result, on_error, scoped)
        handle = self._attach(item, None)
        self._submit(item)
        return handle

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
    ) -> asyncio.Future[Any] | None:
        """`Bridge.try_schedule` for asyncio: returns the item's future, or None (nothing
        scheduled) while `(feature, key)` is in flight. Past `timeout` seconds (loop time) the
        token is cancelled and `on_error` and the future get a TimeoutError."""
        self._check_loop()
        with self._lock:
            if (feature, key) in self._keys:
                return None
            item = self._make_item(work, on_result, on_error, scoped)
            item.feature = self._feature_named(feature)
            item.key = (feature, key)
            item.token = CancelToken()
            if not self._submit(item):
                return None
            # attached after submitting: the lock keeps the callback from being delivered first
            return self._attach(item, timeout)

    def post(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the loop soon; callable from any thread."""
        with self._lock:
            self._check_open()
            self._deliver(None, fn)

    async def shutdown(self, timeout: float = 5.0) -> ShutdownReport:
        """Stop accepting work; cancel queued work; tell running work to stop and wait up to
        `timeout` seconds; work still running is abandoned. Every item not finished normally gets
        `on_error(WorkCancelled(...))` and its future fails with it. Returns once every callback
        has run on the loop."""
        with self._lock:
            if self._closed:
                return ShutdownReport()
            owed, cancelled_before = len(self._active), self._cancelled
        self._begin_shutdown()
        await asyncio.to_thread(self._wait_running, timeout)
        self._abandon_running(timeout)
        self._release_pools()
        # callbacks are queued on the loop in order: once this one runs, all earlier ones have
        flushed = self.loop.create_future()
        self.loop.call_soon_threadsafe(flushed.set_result, None)
        await flushed
        cancelled = self._cancelled - cancelled_before
        return ShutdownReport(finished=max(owed - cancelled, 0), cancelled=cancelled)


__all__ = ["AsyncBridge"]
