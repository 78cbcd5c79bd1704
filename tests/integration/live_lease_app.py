"""An app with the default lease and heartbeat, for the live-worker lease test."""

from __future__ import annotations

import os
import time

import conveyor

app = conveyor.App(os.environ["CONVEYOR_URL"])


@app.job(max_attempts=1)
def long_job(ctx: conveyor.Context, seconds: float) -> int:
    """A plain function that runs for `seconds`, on a thread, as a report or an export would."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


@app.job(max_attempts=1)
def burn(ctx: conveyor.Context, seconds: float) -> int:
    """Pure-Python CPU work that competes for the GIL with the worker's own loop."""
    deadline = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < deadline:
        spins += sum(range(1000))
    return spins


if __name__ == "__main__":
    app.worker(concurrency=4).run_forever()
