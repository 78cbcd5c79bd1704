"""Jobs for the process executor's tests. They live at the top level of a module so that a
child process can import them; each test registers the ones it needs on its own App."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime

import conveyor

REQUEST_ID: ContextVar[str] = ContextVar("process_test_request_id")
# Importing this module registers the variable, in the tests' process as in each child.
conveyor.App("memory://").propagate(REQUEST_ID)


def pid(ctx: conveyor.Context) -> int:
    """The child's process id."""
    return os.getpid()


def sleep_past_timeout(ctx: conveyor.Context, seconds: float) -> None:
    """Blocked in time.sleep, where no thread could be stopped."""
    time.sleep(seconds)


def loop_in_c(ctx: conveyor.Context) -> int:
    """Never returns, and never runs a line of Python while it loops."""
    return sum(itertools.count())


def kill_itself(ctx: conveyor.Context) -> None:
    """Dies as the OOM killer would kill it."""
    os.kill(os.getpid(), signal.SIGKILL)


def exit_hard(ctx: conveyor.Context) -> None:
    """Leaves without cleaning up."""
    os._exit(3)


def report(ctx: conveyor.Context, steps: int) -> str:
    """Progress and log lines from a child."""
    for step in range(steps):
        ctx.progress(100 * (step + 1) / steps, f"step {step + 1}")
        ctx.log(f"did step {step + 1}")
    return f"{steps} steps in {os.getpid()}"


def until_cancelled(ctx: conveyor.Context, started: str) -> str:
    """Checks ctx.cancel_requested in its loop, as a cancellable sync job should."""
    open(started, "w").close()
    deadline = time.monotonic() + 30
    while not ctx.cancel_requested and time.monotonic() < deadline:
        time.sleep(0.01)
    return "stopped early" if ctx.cancel_requested else "never cancelled"


def ignores_cancel(ctx: conveyor.Context, started: str) -> None:
    """Does not look at ctx.cancel_requested: only a signal stops it."""
    open(started, "w").close()
    time.sleep(60)


def bad_input(ctx: conveyor.Context) -> None:
    """Raises, for the traceback from the child."""
    raise ValueError("the input file is empty")


def retry_once(ctx: conveyor.Context) -> int:
    """Asks for a second attempt, then succeeds."""
    if ctx.attempt == 1:
        raise conveyor.Retry(delay=0, reason="not yet")
    return ctx.attempt


def give_up(ctx: conveyor.Context) -> None:
    """Fails for good, with no retry."""
    raise conveyor.Fail("the account is closed")


def next_day(ctx: conveyor.Context, when: datetime) -> date:
    """Typed arguments and results across the process boundary."""
    return date.fromordinal(when.date().toordinal() + 1)


def request_id(ctx: conveyor.Context) -> str:
    """The propagated context value, as the child sees it."""
    return REQUEST_ID.get("unset")


_HELD: list[bytes] = []


def hold_memory(ctx: conveyor.Context, mib: int) -> int:
    """Keep `mib` MiB alive in the child (until it is recycled) and say which child it is."""
    _HELD.append(os.urandom(mib * 2**20))
    return os.getpid()


@contextmanager
def journal(path: str) -> Iterator[str]:
    """A resource that notes when it is opened and closed, and by which process."""
    with open(path, "a") as out:
        out.write(f"open {os.getpid()}\n")
    try:
        yield path
    finally:
        with open(path, "a") as out:
            out.write(f"close {os.getpid()}\n")


def use_resource(ctx: conveyor.Context, path: str) -> int:
    """Open the journal resource from the job's scope and return the pid."""
    assert ctx.resource(functools.partial(journal, path)) == path
    return os.getpid()


def unsendable(ctx: conveyor.Context) -> object:
    """A result that cannot cross the pipe (nor be stored)."""
    return (n for n in range(3))


def add_parents(ctx: conveyor.Context, extra: int) -> int:
    """A workflow step in a child: its parents' results came with it."""
    return extra + sum(ctx.parent_results().values())


def parents_outside_a_workflow(ctx: conveyor.Context) -> dict[str, object]:
    """Asks for parents' results in a child without being a workflow step."""
    return ctx.parent_results()
