"""What both bridge flavours share: tokens, errors, features, and running work elsewhere.

A work item moves through: queued (its feature is at its limit) -> running -> done, or is
expired (timeout), cancelled (shutdown before it ran) or abandoned (still running when shutdown
timed out). Exactly one callback is delivered for each item, whatever happens to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import BridgeClosed, ConfigurationError
from conveyor.scope import Scope

log = logging.getLogger("conveyor.bridge")

#: Receives exceptions raised by callbacks, and errors of work that has no `on_error`.
ErrorHandler = Callable[[BaseException], None]


class WorkCancelled(Exception):
    """The bridge cancelled this work (shutdown): it did not run, or its result was discarded."""


class CancelToken:
    """Handed to keyed work (`try_schedule`): `cancelled` becomes True when the work should stop
    (its timeout passed, or the bridge is shutting down). Check it in loops."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the work has been told to stop."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Tell the work to stop (idempotent)."""
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or `timeout` seconds pass; returns `cancelled`."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise WorkCancelled if the work has been told to stop."""
        if self._event.is_set():
            raise WorkCancelled("the work was cancelled")

    # A process cannot see another process's Event: a pickled token is a snapshot.
    def __getstate__(self) -> bool:
        return self._event.is_set()

    def __setstate__(self, cancelled: bool) -> None:
        self._event = threading.Event()
        if cancelled:
            self._event.set()

    def __repr__(self) -> str:
        return f"<CancelToken {'cancelled' if self.cancelled else 'active'}>"


@dataclass(slots=True)
class ShutdownReport:
    """What `shutdown` did: how many items finished normally and how many were cancelled."""

    finished: int = 0
    cancelled: int = 0


@dataclass(slots=True, eq=False)
class _Feature:
    name: str
    concurrency: int | None
    running: int = 0
    waiting: deque[_Item] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class _Item:
    work: Callable[..., Any]
    on_result: Callable[[Any], Any] | None
    on_error: Callable[[BaseException], Any] | None
    feature: _Feature | None = None
    key: tuple[str, Hashable] | None = None
    token: CancelToken | None = None
    scoped: bool = False
    is_async: bool = False
    deadline: float | None = None
    timeout: float | None = None
    state: str = "new"
    future: cf.Future[Any] | None = None
    handle: Any = None  # the AsyncBridge's asyncio.Future


class BridgeCore:
    """Thread pool (or process pool), private event loop for async work, features, dedup.

    Subclasses say how a callback reaches the main thread (`_deliver`, called under the lock,
    so callbacks are queued in the order work finished).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        use_processes: bool = False,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        self._max_workers = max_workers
        self._use_processes = use_processes
        self._error_handler = error_handler
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._features: dict[str, _Feature] = {}
        self._keys: dict[tuple[str, Hashable], _Item] = {}
        self._active: set[_Item] = set()  # queued or running: a callback is still owed
        self._timed: set[_Item] = set()  # active items with a deadline
        self._closed = False
        self._cancelled = 0  # items that got WorkCancelled
        self._pool: cf.Executor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    # to implement -----------------------------------------------------------------------------
    def _deliver(self, item: _Item | None, callback: Callable[[], Any]) -> None:
        raise NotImplementedError

    # public helpers ---------------------------------------------------------------------------
    def feature(self, name: str, *, concurrency: int | None = None) -> None:
        """Declare (or change) a feature: a named logical queue for `try_schedule` running at
        most `concurrency` items at once (None = limited only by the pool)."""
        if concurrency is not None and concurrency < 1:
            raise ConfigurationError(f"feature {name!r}: concurrency must be at least 1, or None")
        with self._lock:
            existing = self._features.get(name)
            if existing is None:
                self._features[name] = _Feature(name, concurrency)
            else:
                existing.concurrency = concurrency
        self._start(self._admit_waiting())

    def in_flight(self, feature: str, key: Hashable) -> bool:
        """True while `(feature, key)` is scheduled and its callback has not yet run."""
        with self._lock:
            return (feature, key) in self._keys

    @property
    def active(self) -> int:
        """Work items queued or running."""
        with self._lock:
            return len(self._active)

    @property
    def closed(self) -> bool:
        """True once shutdown began."""
        return self._closed

    # submitting -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BridgeClosed()

    def _make_item(
        self,
        work: Callable[..., Any],
        on_result: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
        scoped: bool,
    ) -> _Item:
        is_async = asyncio.iscoroutinefunction(work)
        if self._use_processes and scoped and is_async:
            raise ConfigurationError("scoped async work cannot run in a process pool")
        return _Item(work, on_result, on_error, scoped=scoped, is_async=is_async)

    def _submit(self, item: _Item) -> bool:
        """Queue or start `item`; False (nothing scheduled) if its key is in flight."""
        with self._lock:
            self._check_open()
            if item.key is not None:
                if item.key in self._keys:
                    return False
                self._keys[item.key] = item
            self._active.add(item)
            if item.deadline is not None:
                self._timed.add(item)
            feature = item.feature
            if feature is not None and (
                feature.concurrency is not None and feature.running >= feature.concurrency
            ):
                item.state = "queued"
                feature.waiting.append(item)
                return True
            if feature is not None:
                feature.running += 1
            item.state = "running"
        self._start([item])
        return True

    def _feature_named(self, name: str) -> _Feature:
        feature = self._features.get(name)
        if feature is None:
            feature = self._features[name] = _Feature(name, None)
        return feature

    def _admit_waiting(self) -> list[_Item]:
        """Under the lock: items that may start now that slots are free."""
        ready = []
        with self._lock:
            for feature in self._features.values():
                while feature.waiting and (
                    feature.concurrency is None or feature.running < feature.concurrency
                ):
                    item = feature.waiting.popleft()
                    feature.running += 1
                    item.state = "running"
                    ready.append(item)
        return ready

    def _start(self, items: list[_Item]) -> None:
        for item in items:
            args: tuple[Any, ...] = () if item.token is None else (item.token,)
            if self._use_processes:
                future = self._executor().submit(
                    _call_in_process, item.work, args, item.scoped, item.is_async
                )
            elif item.is_async:
                loop = self._private_loop()
                future = asyncio.run_coroutine_threadsafe(self._run_async(item, args), loop)
            else:
                future = self._executor().submit(self._run_sync, item, args)
            item.future = future
            future.add_done_callback(functools.partial(self._finished, item))

    def _run_sync(self, item: _Item, args: tuple[Any, ...]) -> Any:
        if not item.scoped:
            return item.work(*args)
        scope = Scope(self._scope_error)
        try:
            value = item.work(*args, scope)
        except BaseException as exc:
            scope.close(exc)
            raise
        scope.close()
        return value

    async def _run_async(self, item: _Item, args: tuple[Any, ...]) -> Any:
        if not item.scoped:
            return await item.work(*args)
        scope = Scope(self._scope_error)
        try:
            value = await item.work(*args, scope)
        except BaseException as exc:
            await scope.aclose(exc)
            raise
        await scope.aclose()
        return value

    def _scope_error(self, factory: Callable[..., Any], error: BaseException) -> None:
        # a resource of background work failed to close: report it on the main thread
        with self._lock:
            self._deliver(None, lambda: self._handle_error(error))

    # finishing --------------------------------------------------------------------------------
    def _finished(self, item: _Item, future: cf.Future[Any]) -> None:
        if future.cancelled():
            self._cancelled += 1
            error: BaseException | None = WorkCancelled(
                f"{_describe(item)}: the bridge shut down before this work started"
            )
            value = None
        else:
            error = future.exception()
            value = None if error is not None else future.result()
        with self._lock:
            if item.feature is not None:
                item.feature.running -= 1
            if item.state == "running":
                item.state = "done"
                self._settle(item)
                self._deliver(item, self._callback(item, value, error))
            elif error is not None and not isinstance(error, WorkCancelled):
                log.debug(
                    "late failure of %s discarded (%s)", item.work, item.state, exc_info=error
                )
            self._changed.notify_all()
        self._start(self._admit_waiting())

    def _settle(self, item: _Item) -> None:
        """Under the lock: `item` owes no more work (its callback is being delivered)."""
        self._active.discard(item)
        self._timed.discard(item)

    def _callback(self, item: _Item, value: Any, error: BaseException | None) -> Callable[[], None]:
        def deliver() -> None:
            if item.key is not None:
                with self._lock:
                    if self._keys.get(item.key) is item:
                        del self._keys[item.key]
            if error is None:
                if item.on_result is not None:
                    item.on_result(value)
            elif item.on_error is not None:
                item.on_error(error)
            else:
                self._handle_error(error)

        return deliver

    def _expire(self, item: _Item) -> None:
        """Under the lock: `item` passed its deadline. The work is told to stop, its caller gets
        a TimeoutError, and a late result will be discarded."""
        if item.state not in ("queued", "running"):
            return
        if item.state == "queued" and item.feature is not None:
            item.feature.waiting.remove(item)
        item.state = "expired"
        if item.token is not None:
            item.token.cancel()
        if item.is_async and item.future is not None:
            item.future.cancel()
        self._settle(item)
        error = TimeoutError(f"{_describe(item)} did not finish within {item.timeout or 0:g} s")
        self._deliver(item, self._callback(item, None, error))

    def _handle_error(self, error: BaseException) -> None:
        handler = self._error_handler
        if handler is not None:
            try:
                handler(error)
                return
            except Exception:
                log.exception("the bridge's error handler failed")
        log.error("error in background work or a bridge callback", exc_info=error)

    def _run_callback(self, callback: Callable[[], Any]) -> None:
        try:
            callback()
        except Exception as exc:
            self._handle_error(exc)

    # shutting down ----------------------------------------------------------------------------
    def _begin_shutdown(self) -> tuple[int, list[_Item]]:
        """Stop accepting; cancel queued work; ask running work to stop. Returns the count of
        cancelled items and the items still running."""
        with self._lock:
            self._closed = True
            cancelled = 0
            for feature in self._features.values():
                while feature.waiting:
                    item = feature.waiting.popleft()
                    self._cancel(item, "the bridge shut down before this work started")
                    cancelled += 1
            running = [item for item in self._active if item.state == "running"]
        for item in running:
            if item.token is not None:
                item.token.cancel()
            if not item.is_async and item.future is not None:
                item.future.cancel()  # succeeds only for work the pool has not started
        return cancelled, running

    def _wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(item.state == "running" for item in self._active):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)

    def _abandon_running(self, timeout: float) -> int:
        with self._lock:
            late = [item for item in self._active if item.state == "running"]
            for item in late:
                self._cancel(
                    item,
                    f"still running {timeout:g} s after the bridge began shutting down: "
                    "it was cancelled and its result will be discarded",
                )
                if item.is_async and item.future is not None:
                    item.future.cancel()
        return len(late)

    def _cancel(self, item: _Item, reason: str) -> None:
        self._cancelled += 1
        item.state = "cancelled"
        if item.token is not None:
            item.token.cancel()
        self._settle(item)
        self._deliver(
            item, self._callback(item, None, WorkCancelled(f"{_describe(item)}: {reason}"))
        )

    def _release_pools(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    # pools ------------------------------------------------------------------------------------
    def _executor(self) -> cf.Executor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    if self._use_processes:
                        self._pool = cf.ProcessPoolExecutor(self._max_workers)
                    else:
                        self._pool = cf.ThreadPoolExecutor(
                            self._max_workers, thread_name_prefix="conveyor-bridge"
                        )
        return self._pool

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    thread = threading.Thread(
                        target=_run_loop, args=(loop,), name="conveyor-bridge-loop", daemon=True
                    )
                    thread.start()
                    self._loop_thread = thread
                    self._loop = loop
        return self._loop


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            # give cancelled work a moment to clean up; a task ignoring it is left behind
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
    finally:
        loop.close()


def _call_in_process(
    work: Callable[..., Any], args: tuple[Any, ...], scoped: bool, is_async: bool
) -> Any:
    """Runs in a pool process: the scope (if any) lives and closes in that process."""
    if is_async:
        return asyncio.run(work(*args))
    if not scoped:
        return work(*args)
    scope = Scope()
    try:
        value = work(*args, scope)
    except BaseException as exc:
        scope.close(exc)
        raise
    scope.close()
    return value


def _describe(item: _Item) -> str:
    name = getattr(item.work, "__qualname__", None) or repr(item.work)
    if item.key is not None:
        return f"{name} ({item.key[0]}: {item.key[1]!r})"
    return name


__all__ = [
    "BridgeClosed",
    "BridgeCore",
    "CancelToken",
    "ErrorHandler",
    "ShutdownReport",
    "WorkCancelled",
]
