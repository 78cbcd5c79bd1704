"""Helpers and fixtures for the bridge tests: a bridge per test, a controllable clock, draining."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from conveyor.bridge import Bridge


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Errors:
    """An error handler that records what it receives, with the receiving thread."""

    def __init__(self) -> None:
        self.seen: list[BaseException] = []
        self.threads: list[int] = []

    def __call__(self, exc: BaseException) -> None:
        self.seen.append(exc)
        self.threads.append(threading.get_ident())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def bridge(clock: FakeClock, errors: Errors) -> Iterator[Bridge]:
    b = Bridge(max_workers=8, error_handler=errors, clock=clock)
    yield b
    if not b.closed:
        b.shutdown(timeout=5)


def drain_until(
    bridge: Bridge, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Drain repeatedly (as a main loop would, tick after tick) until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while True:
        bridge.drain()
        if predicate():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.001)  # one "tick" of the simulated main loop


def wait_pending(bridge: Bridge, count: int, timeout: float = 10.0) -> None:
    """Wait, without draining, until `count` callbacks are queued."""
    deadline = time.monotonic() + timeout
    while bridge.pending < count:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {count} queued callbacks ({bridge.pending})")
        time.sleep(0.001)
