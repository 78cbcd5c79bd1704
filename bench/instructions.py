"""Instructions per job (valgrind's callgrind), for before/after comparisons that the noise of
wall-clock figures on a shared 2-core machine would hide.

    .venv/bin/python bench/instructions.py [enqueue|drain] [N]

Runs itself under callgrind twice, with N and 3N no-op async jobs on the memory store (enqueue
only, or enqueue then a 10-slot worker drains them), and prints the difference divided by 2N:
the start-up cancels out. PYTHONHASHSEED is fixed, so the enqueue figure repeats to within
0.1 %; the drain figure varies by about 1 % (batch sizes depend on timing).
Compare two trees by running the script from each (with PYTHONPATH=<tree>/src).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import conveyor


def workload(n: int, mode: str) -> None:
    """Enqueue `n` no-op jobs (and drain them with a worker, for mode "drain")."""
    app = conveyor.App("memory://", max_queue_size=0)

    @app.job
    async def noop(ctx: conveyor.Context) -> None:
        return None

    async def main() -> None:
        app.enqueue_many([noop.request() for _ in range(n)])
        if mode == "enqueue":
            return
        done, finished = asyncio.Event(), [0]

        @app.on("succeeded")
        def count(event: conveyor.JobEvent) -> None:
            finished[0] += 1
            if finished[0] == n:
                done.set()

        async with app.worker(concurrency=10):
            await done.wait()

    asyncio.run(main())


def instructions(n: int, mode: str) -> int:
    """Instructions callgrind counted for one run of the workload."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, "--child", mode, str(n)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found.group(1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        workload(int(sys.argv[3]), sys.argv[2])
    else:
        mode = sys.argv[1] if len(sys.argv) > 1 else "enqueue"
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
        per_job = (instructions(3 * n, mode) - instructions(n, mode)) / (2 * n)
        print(f"{conveyor.__file__}: {mode}: {per_job:,.0f} instructions/job")
