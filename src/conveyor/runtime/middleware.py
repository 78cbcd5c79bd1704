"""Composable wrappers around a job's execution.

A middleware is `async def mw(ctx, call_next) -> result`: it may act before and after
`await call_next()`, change the result, or raise. The first registered is the outermost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conveyor.context import Context

Call = Callable[[], Awaitable[Any]]
Middleware = Callable[[Context, Call], Awaitable[Any]]


def compose(middleware: Sequence[Middleware], ctx: Context, innermost: Call) -> Call:
    """`innermost` wrapped by every middleware, the first one outermost."""
    call = innermost
    for mw in reversed(middleware):
        call = _bind(mw, ctx, call)
    return call


def _bind(mw: Middleware, ctx: Context, call_next: Call) -> Call:
    def call() -> Awaitable[Any]:
        return mw(ctx, call_next)

    return call
