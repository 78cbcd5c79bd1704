"""The worker program of the fault suite: `python -m conveyor.cli worker fault_app:app`.

Its settings come from the environment (FAULT_LEASE_SECONDS, FAULT_SHUTDOWN_TIMEOUT, ...), so
each test picks leases short enough for rescues to happen in a few seconds. Every run of
`record`, `hold` and `hold_sync` appends `start|end JOB_ID ATTEMPT PID TIME` to $FAULT_RUNS:
one write(2) of a short line on a file opened with O_APPEND, which a SIGKILL cannot tear.
"""

from __future__ import annotations

import asyncio
import os
import time

import conveyor


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(f"FAULT_{name.upper()}", default))


app = conveyor.App(
    os.environ["CONVEYOR_URL"],
    lease_seconds=_seconds("lease_seconds", 2.0),
    heartbeat_interval=_seconds("heartbeat_interval", 0.2),
    poll_interval=_seconds("poll_interval", 0.2),
    sweep_interval=_seconds("sweep_interval", 0.2),
    shutdown_timeout=_seconds("shutdown_timeout", 1.0),
)
RUNS = os.environ.get("FAULT_RUNS", "")
MAX_ATTEMPTS = 100  # a job hit by several kills must not fail for lack of attempts


def note(event: str, ctx: conveyor.Context) -> None:
    """Append one line about this run to $FAULT_RUNS."""
    line = f"{event} {ctx.id} {ctx.attempt} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.job(max_attempts=MAX_ATTEMPTS)
async def record(ctx: conveyor.Context, n: int, seconds: float = 0.0) -> dict[str, int]:
    """A short job that notes its start and end."""
    note("start", ctx)
    await asyncio.sleep(seconds)
    note("end", ctx)
    return {"pid": os.getpid(), "n": n}


def gate_open(gate: str) -> bool:
    """Whether the test has created the file `gate` (a local stat: it does not block)."""
    return os.path.exists(gate)


@app.job(max_attempts=MAX_ATTEMPTS)
async def hold(ctx: conveyor.Context, gate: str) -> int:
    """A long job: runs until the file `gate` exists."""
    note("start", ctx)
    # the gate is opened by another process: polling the file is the only signal
    while not gate_open(gate):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    note("end", ctx)
    return os.getpid()


@app.job(max_attempts=MAX_ATTEMPTS)
def hold_sync(ctx: conveyor.Context, gate: str) -> int:
    """`hold` as a plain function on a thread, which a shutdown cannot interrupt."""
    note("start", ctx)
    while not gate_open(gate):
        time.sleep(0.02)
    note("end", ctx)
    return os.getpid()


@app.job
async def noop(ctx: conveyor.Context, n: int) -> None:
    """Nothing at all: the many-queued-jobs memory test."""
