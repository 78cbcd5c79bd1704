"""Bridge.try_schedule: de-duplication, features, timeouts (fake clock), shutdown, scopes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conveyor.bridge import Bridge, CancelToken, Scope, WorkCancelled
from conveyor.errors import ConfigurationError

from .support import Errors, FakeClock, drain_until, wait_pending


def gated(gate: threading.Event, value: Any = None) -> Any:
    def work(token: CancelToken) -> Any:
        assert gate.wait(10)
        return value

    return work


def test_a_key_in_flight_is_not_scheduled_twice(bridge: Bridge) -> None:
    gate = threading.Event()
    got: list[str] = []
    assert bridge.try_schedule("path", "unit-7", gated(gate, "route"), got.append)
    assert not bridge.try_schedule("path", "unit-7", gated(gate, "again"), got.append)
    assert bridge.try_schedule("path", "unit-8", gated(gate, "other"), got.append)
    assert bridge.try_schedule("other-feature", "unit-7", gated(gate, "x"), got.append)
    gate.set()
    wait_pending(bridge, 3)
    # finished but not yet applied: still in flight until its callback runs on the main thread
    assert bridge.in_flight("path", "unit-7")
    assert not bridge.try_schedule("path", "unit-7", gated(gate, "again"), got.append)
    bridge.drain()
    assert sorted(got) == ["other", "route", "x"]
    assert not bridge.in_flight("path", "unit-7")
    assert bridge.try_schedule("path", "unit-7", gated(gate, "again"), got.append)
    drain_until(bridge, lambda: "again" in got)


def test_a_failed_key_is_released_too(bridge: Bridge) -> None:
    def boom(token: CancelToken) -> None:
        raise ValueError("no path")

    got: list[BaseException] = []
    assert bridge.try_schedule("path", 1, boom, print, got.append)
    drain_until(bridge, lambda: got)
    assert isinstance(got[0], ValueError)
    assert not bridge.in_flight("path", 1)


def test_feature_concurrency_limits_running_items(bridge: Bridge) -> None:
    bridge.feature("path", concurrency=2)
    lock = threading.Lock()
    running = 0
    peak = 0
    gate = threading.Event()
    started = threading.Semaphore(0)

    def work(token: CancelToken) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        started.release()
        assert gate.wait(10)
        with lock:
            running -= 1
        return 1

    got: list[int] = []
    for key in range(6):
        assert bridge.try_schedule("path", key, work, got.append)
    assert started.acquire(timeout=10)
    assert started.acquire(timeout=10)
    assert not started.acquire(timeout=0.05)  # a third cannot start while two run
    # the unlimited feature next door is not held up by "path"
    assert bridge.try_schedule("other", 0, lambda token: 2, got.append)
    drain_until(bridge, lambda: got == [2])
    gate.set()
    drain_until(bridge, lambda: len(got) == 7)
    assert peak == 2


def test_timeout_cancels_the_token_reports_timeout_and_discards_a_late_result(
    bridge: Bridge, clock: FakeClock
) -> None:
    started = threading.Event()
    finished = threading.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}

    def work(token: CancelToken) -> str:
        started.set()
        assert release.wait(10)
        seen["cancelled"] = token.cancelled
        finished.set()
        return "late"

    results: list[str] = []
    errors: list[BaseException] = []
    assert bridge.try_schedule("path", "k", work, results.append, errors.append, timeout=0.5)
    assert started.wait(10)
    clock.advance(0.4)
    bridge.drain()
    assert errors == []
    clock.advance(0.2)  # past the deadline
    bridge.drain()
    assert len(errors) == 1
    assert isinstance(errors[0], TimeoutError)
    assert "0.5 s" in str(errors[0])
    assert not bridge.in_flight("path", "k")  # may be scheduled again at once
    release.set()
    assert finished.wait(10)
    assert seen["cancelled"] is True
    drain_until(bridge, lambda: bridge.active == 0)
    bridge.drain()
    assert results == []  # the late result was discarded


def test_work_that_honours_its_token_stops_at_the_timeout(bridge: Bridge, clock: FakeClock) -> None:
    stopped = threading.Event()

    def work(token: CancelToken) -> None:
        assert token.wait(10)  # returns as soon as it is told to cancel
        stopped.set()

    errors: list[BaseException] = []
    bridge.try_schedule("path", 1, work, print, errors.append, timeout=1.0)
    clock.advance(1.0)
    bridge.drain()
    assert stopped.wait(10)
    assert isinstance(errors[0], TimeoutError)


def test_queued_work_that_times_out_never_starts(bridge: Bridge, clock: FakeClock) -> None:
    bridge.feature("path", concurrency=1)
    gate = threading.Event()
    ran: list[str] = []

    def second(token: CancelToken) -> None:
        ran.append("second")

    errors: list[BaseException] = []
    bridge.try_schedule("path", 1, gated(gate), print)
    bridge.try_schedule("path", 2, second, print, errors.append, timeout=0.1)
    clock.advance(0.2)
    bridge.drain()
    assert isinstance(errors[0], TimeoutError)
    gate.set()
    drain_until(bridge, lambda: bridge.active == 0)
    assert ran == []


def test_shutdown_finishes_cooperative_work_and_reports_what_was_cancelled(
    clock: FakeClock, errors: Errors
) -> None:
    bridge = Bridge(max_workers=4, error_handler=errors, clock=clock)
    bridge.feature("path", concurrency=1)
    started = threading.Event()

    def cooperative(token: CancelToken) -> str:
        started.set()
        token.wait(10)
        return "partial route"

    results: list[str] = []
    cancelled: list[BaseException] = []
    bridge.try_schedule("path", 1, cooperative, results.append, cancelled.append)
    bridge.try_schedule("path", 2, lambda token: "never", results.append, cancelled.append)
    assert started.wait(10)
    report = bridge.shutdown(timeout=5)
    assert results == ["partial route"]
    assert len(cancelled) == 1
    assert isinstance(cancelled[0], WorkCancelled)
    assert "before this work started" in str(cancelled[0])
    assert report.cancelled == 1
    assert report.finished == 1
    assert errors.seen == []


def test_shutdown_abandons_work_still_running_after_the_timeout(
    clock: FakeClock, errors: Errors
) -> None:
    bridge = Bridge(max_workers=2, error_handler=errors, clock=clock)
    release = threading.Event()
    started = threading.Event()

    def stubborn() -> str:
        started.set()
        release.wait(10)  # ignores cancellation
        return "too late"

    results: list[str] = []
    try:
        bridge.run_in_background(stubborn, results.append)  # reported to the error handler
        assert started.wait(10)
        report = bridge.shutdown(timeout=0.05)
        assert report.cancelled == 1
        assert results == []
        assert len(errors.seen) == 1
        assert isinstance(errors.seen[0], WorkCancelled)
        assert "result will be discarded" in str(errors.seen[0])
    finally:
        release.set()


def test_shutdown_cancels_work_the_pool_had_not_started(clock: FakeClock) -> None:
    bridge = Bridge(max_workers=1, clock=clock)
    release = threading.Event()
    started = threading.Event()

    def first() -> str:
        started.set()
        release.wait(10)
        return "first"

    def second() -> str:
        return "second"

    got: list[Any] = []
    try:
        bridge.run_in_background(first, got.append, got.append)
        bridge.run_in_background(second, got.append, got.append)  # waits for the only thread
        assert started.wait(10)
        report = bridge.shutdown(timeout=0.05)
    finally:
        release.set()
    assert report.cancelled == 2
    assert all(isinstance(g, WorkCancelled) for g in got)
    messages = sorted(str(g) for g in got)
    assert "second: the bridge shut down before this work started" in messages[1]
    assert "result will be discarded" in messages[0]


@contextlib.contextmanager
def tracked(log: list[str], name: str) -> Iterator[str]:
    log.append(f"open {name} on {threading.current_thread().name}")
    try:
        yield name
    finally:
        log.append(f"close {name}")


def test_scoped_work_gets_a_scope_closed_after_it(bridge: Bridge) -> None:
    log: list[str] = []

    def conn() -> contextlib.AbstractContextManager[str]:
        return tracked(log, "conn")

    def client() -> contextlib.AbstractContextManager[str]:
        return tracked(log, "client")

    def work(scope: Scope) -> str:
        a = scope.resource(conn)
        b = scope.resource(client)
        assert scope.resource(conn) is a
        return a + "+" + b

    got: list[str] = []
    bridge.run_in_background(work, got.append, scoped=True)
    drain_until(bridge, lambda: got)
    assert got == ["conn+client"]
    assert [entry.split(" on ")[0] for entry in log] == [
        "open conn",
        "open client",
        "close client",
        "close conn",
    ]
    assert "conveyor-bridge" in log[0]


def test_a_scope_close_error_reaches_the_error_handler_and_keeps_the_result(
    bridge: Bridge, errors: Errors
) -> None:
    @contextlib.contextmanager
    def leaky() -> Iterator[int]:
        yield 1
        raise OSError("close failed")

    def work(token: CancelToken, scope: Scope) -> int:
        return scope.resource(leaky) + 1

    got: list[int] = []
    bridge.try_schedule("f", 1, work, got.append, scoped=True)
    drain_until(bridge, lambda: got and errors.seen)
    assert got == [2]
    assert isinstance(errors.seen[0], OSError)


def test_feature_concurrency_must_be_positive(bridge: Bridge) -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        bridge.feature("f", concurrency=0)


def test_async_work_is_cancelled_at_its_timeout(bridge: Bridge, clock: FakeClock) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def search(token: CancelToken) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    errors: list[BaseException] = []
    assert bridge.try_schedule("path", 1, search, print, errors.append, timeout=0.5)
    assert started.wait(10)
    clock.advance(0.5)
    bridge.drain()
    assert isinstance(errors[0], TimeoutError)
    assert cancelled.wait(10)  # async work is really cancelled, not just told


def test_scoped_async_work_closes_async_resources(bridge: Bridge) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def client() -> AsyncIterator[str]:
        events.append("open")
        yield "client"
        events.append("close")

    async def work(scope: Scope) -> str:
        return await scope.aresource(client)

    got: list[str] = []
    bridge.run_in_background(work, got.append, scoped=True)
    drain_until(bridge, lambda: got)
    assert got == ["client"]
    assert events == ["open", "close"]
