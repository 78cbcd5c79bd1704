"""Bridge: threads, ordering, budgets, error routing."""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import pytest

from conveyor.bridge import Bridge, BridgeClosed
from conveyor.errors import UsageError

from .support import Errors, FakeClock, drain_until, wait_pending


def test_work_runs_elsewhere_and_callbacks_only_on_the_draining_thread(bridge: Bridge) -> None:
    main = threading.get_ident()
    work_threads: list[int] = []
    callback_threads: list[int] = []

    def work(n: int) -> int:
        work_threads.append(threading.get_ident())
        return n * 2

    results: list[int] = []
    for n in range(20):

        def on_result(value: int) -> None:
            callback_threads.append(threading.get_ident())
            results.append(value)

        bridge.run_in_background(functools.partial(work, n), on_result)
    wait_pending(bridge, 20)
    assert results == []  # nothing is applied until the main loop drains
    bridge.drain()
    assert sorted(results) == [n * 2 for n in range(20)]
    assert set(callback_threads) == {main}
    assert main not in work_threads


def test_posted_callbacks_run_on_the_draining_thread_only(bridge: Bridge) -> None:
    ran: list[int] = []
    poster = threading.Thread(target=lambda: bridge.post(lambda: ran.append(threading.get_ident())))
    poster.start()
    poster.join()
    assert ran == []
    assert bridge.drain() == 1
    assert ran == [threading.get_ident()]


def test_callbacks_run_in_the_order_work_finished(bridge: Bridge) -> None:
    gates = [threading.Event() for _ in range(4)]
    order: list[int] = []
    for i, gate in enumerate(gates):

        def work(i: int = i, gate: threading.Event = gate) -> int:
            assert gate.wait(10)
            return i

        bridge.run_in_background(work, order.append)
    for finished, i in enumerate([2, 0, 3, 1], start=1):
        gates[i].set()
        wait_pending(bridge, finished)  # i's work has finished and its callback is queued
    bridge.drain()
    assert order == [2, 0, 3, 1]


def test_posts_and_results_share_one_queue_in_arrival_order(bridge: Bridge) -> None:
    order: list[str] = []
    bridge.post(lambda: order.append("post-1"))
    bridge.run_in_background(lambda: "work", order.append)
    wait_pending(bridge, 2)
    bridge.post(lambda: order.append("post-2"))
    bridge.drain()
    assert order == ["post-1", "work", "post-2"]


def test_drain_stops_at_the_budget_and_the_rest_waits(bridge: Bridge, clock: FakeClock) -> None:
    ran: list[int] = []

    def slow(i: int) -> None:
        ran.append(i)
        clock.advance(0.004)  # each callback "takes" 4 ms

    for i in range(5):
        bridge.post(functools.partial(slow, i))
    assert bridge.drain(budget_s=0.010) == 3  # started at 0, 4 and 8 ms; stopped at 12 ms
    assert ran == [0, 1, 2]
    assert bridge.pending == 2
    assert bridge.drain(budget_s=0.010) == 2
    assert ran == [0, 1, 2, 3, 4]


def test_drain_max_callbacks(bridge: Bridge) -> None:
    ran: list[int] = []
    for i in range(5):
        bridge.post(functools.partial(ran.append, i))
    assert bridge.drain(max_callbacks=2) == 2
    assert bridge.drain(max_callbacks=2) == 2
    assert bridge.drain() == 1
    assert ran == [0, 1, 2, 3, 4]


def test_a_failing_callback_goes_to_the_error_handler_and_the_others_run(
    bridge: Bridge, errors: Errors
) -> None:
    ran: list[str] = []
    bridge.post(lambda: ran.append("a"))
    bridge.post(lambda: 1 / 0)
    bridge.post(lambda: ran.append("c"))
    assert bridge.drain() == 3
    assert ran == ["a", "c"]
    assert [type(e) for e in errors.seen] == [ZeroDivisionError]
    assert errors.threads == [threading.get_ident()]


def test_work_errors_go_to_on_error_or_else_the_error_handler(
    bridge: Bridge, errors: Errors
) -> None:
    def boom() -> None:
        raise ValueError("bad chunk")

    got: list[BaseException] = []
    bridge.run_in_background(boom, lambda _v: pytest.fail("no result expected"), got.append)
    bridge.run_in_background(boom, lambda _v: None)  # no on_error: the error handler gets it
    drain_until(bridge, lambda: got and errors.seen)
    assert isinstance(got[0], ValueError)
    assert isinstance(errors.seen[0], ValueError)


def test_a_failing_error_handler_is_logged_not_raised(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(exc: BaseException) -> None:
        raise RuntimeError("handler broke")

    bridge = Bridge(error_handler=handler, clock=clock)
    bridge.post(lambda: 1 / 0)
    assert bridge.drain() == 1
    assert "error handler failed" in caplog.text
    bridge.shutdown(1)


def test_drain_from_another_thread_is_refused(bridge: Bridge) -> None:
    bridge.drain()
    failure: list[BaseException] = []

    def other() -> None:
        try:
            bridge.drain()
        except UsageError as exc:
            failure.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert failure
    assert "another thread" in str(failure[0])


def test_async_work_runs_on_a_private_loop(bridge: Bridge) -> None:
    import asyncio

    loops: list[Any] = []

    async def work() -> str:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return "done"

    got: list[str] = []
    bridge.run_in_background(work, got.append)
    drain_until(bridge, lambda: got)
    assert got == ["done"]
    assert loops and loops[0].is_running()


def test_process_pool_for_cpu_bound_work(clock: FakeClock) -> None:
    got: list[int] = []
    main = threading.get_ident()
    threads: list[int] = []

    def on_result(value: int) -> None:
        threads.append(threading.get_ident())
        got.append(value)

    with Bridge(max_workers=2, use_processes=True, clock=clock) as bridge:
        for n in (10, 12):
            bridge.run_in_background(functools.partial(math.factorial, n), on_result)
        drain_until(bridge, lambda: len(got) == 2, timeout=60)
    assert sorted(got) == [math.factorial(10), math.factorial(12)]
    assert threads == [main, main]


def test_after_shutdown_nothing_is_accepted(bridge: Bridge) -> None:
    bridge.shutdown(timeout=1)
    with pytest.raises(BridgeClosed):
        bridge.run_in_background(lambda: 1, print)
    with pytest.raises(BridgeClosed):
        bridge.post(lambda: None)
    with pytest.raises(BridgeClosed):
        bridge.try_schedule("f", 1, lambda token: 1, print)


def test_the_bridges_are_importable_from_the_package_root() -> None:
    import conveyor
    import conveyor.bridge

    assert conveyor.Bridge is conveyor.bridge.Bridge
    assert conveyor.AsyncBridge is conveyor.bridge.AsyncBridge
