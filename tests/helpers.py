"""Helpers shared by the test suites (importable as `helpers`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


async def wait_until_async(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """`wait_until` for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """Counts without the zero entries (stores may or may not list empty states)."""
    return {key: value for key, value in counts.items() if value}
