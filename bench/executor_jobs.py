"""The job bodies of bench/executors.py, at the top level of a module so that child processes
(Conveyor's process executor, Celery's prefork pool) import them by name."""

from __future__ import annotations

from typing import Any


def noop(ctx: Any = None) -> None:
    """Nothing: what the executor itself costs."""


def spin(ctx: Any = None, rounds: int = 0) -> int:
    """Pure-Python arithmetic, holding the GIL for the whole time (about 20 ms by default)."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total
