"""An app for tests that run real worker processes: `python process_app.py QUEUES N`."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys
import time

import conveyor

app = conveyor.App(
    os.environ["CONVEYOR_URL"],
    heartbeat_interval=0.2,
    lease_seconds=1.0,
    poll_interval=0.2,
    sweep_interval=0.2,
    shutdown_timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "2")),
)
app.queue("serial", concurrency=1)


@app.job
async def record(ctx: conveyor.Context, n: int) -> dict[str, float | int]:
    """Says which process ran it and when, to check overlap and exactly-once."""
    start = time.time()
    await asyncio.sleep(0.001)
    return {"pid": os.getpid(), "start": start, "end": time.time(), "n": n}


@app.job(queue="serial")
async def record_serial(ctx: conveyor.Context, n: int) -> dict[str, float | int]:
    """`record` in the serial queue."""
    start = time.time()
    await asyncio.sleep(0.002)
    return {"pid": os.getpid(), "start": start, "end": time.time(), "n": n}


@app.job(concurrency_key="tenant:{tenant}", key_concurrency=2)
async def record_keyed(ctx: conveyor.Context, tenant: int, n: int) -> dict[str, float | int]:
    """`record` with a key: at most 2 of one tenant run at once, fleet-wide. Its start and
    end lie inside the store's running span (claim to acknowledgement), so an overlap of
    more than 2 of them is a real one."""
    start = time.time()
    await asyncio.sleep(0.01)
    return {"pid": os.getpid(), "start": start, "end": time.time(), "n": n}


@app.job(rate_limit="10/s", rate_key="tenant:{tenant}")
async def record_rated(ctx: conveyor.Context, tenant: int, n: int) -> int:
    """At most 10 of one tenant start in any second, fleet-wide."""
    return os.getpid()


@app.job(max_attempts=3)
async def sleepy(ctx: conveyor.Context, seconds: float) -> int:
    """Holds its slot for a while."""
    ctx.log(f"sleeping in {os.getpid()}")
    await asyncio.sleep(seconds)
    return os.getpid()


@app.job(max_attempts=3)
async def sleepy_first(ctx: conveyor.Context, seconds: float) -> int:
    """Holds its slot on its first attempt only (a rescued run finishes at once)."""
    if ctx.attempt == 1:
        await asyncio.sleep(seconds)
    return os.getpid()


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1)  # a test may ask a stuck worker where it is
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    queues = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] != "all" else None
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    app.worker(queues=queues, concurrency=concurrency).run_forever()
