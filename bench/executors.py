"""The process executor against the thread pool (and Celery's prefork pool, when Celery is
installed), with the same job bodies: a no-op, and about 20 ms of pure-Python arithmetic.

    .venv/bin/python bench/executors.py [--jobs 4000] [--cpu-jobs 200] [--repeat 3] [--celery]

Each measurement enqueues its jobs on a fresh SQLite file, then times a worker from its start
(children included) until every job completed, and checks every job completed in the store.
Conveyor's worker runs in this process with the default settings (`concurrency=10`, and
`processes` the CPU count); the jobs are registered with `executor="thread"` or
`executor="process"`. `--celery` runs the
same bodies on Celery's prefork pool (Redis at 127.0.0.1:6379 as broker and result store,
`--concurrency` the CPU count), its worker a separate process, its start-up included too;
install Celery in a separate virtualenv (`pip install celery redis -e .`), never in Conveyor's.
Rounds are interleaved; the median and min-max of each figure are printed, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import executor_jobs

import conveyor


def calibrate(milliseconds: float) -> int:
    """Rounds of `spin` that take about `milliseconds` on this machine."""
    rounds = 100_000
    started = time.perf_counter()
    executor_jobs.spin(None, rounds)
    per_round = (time.perf_counter() - started) / rounds
    return int(milliseconds / 1000 / per_round)


async def conveyor_drain(
    folder: str, executor: str, body: Callable[..., Any], count: int, kwargs: dict[str, Any]
) -> float:
    """Seconds for one worker to run `count` queued jobs of `body` on `executor`."""
    app = conveyor.App(f"sqlite:///{folder}/{executor}-{time.monotonic_ns()}.db")
    try:
        job = app.job(name=body.__name__, executor=executor)(body)  # type: ignore[call-overload]
        for start in range(0, count, 1000):
            app.enqueue_many([job.request(**kwargs) for _ in range(min(1000, count - start))])
        done = asyncio.Event()
        seen = [0]

        def succeeded(event: Any) -> None:
            seen[0] += 1
            if seen[0] == count:
                done.set()

        app.on("succeeded")(succeeded)
        started = time.perf_counter()
        async with app.worker(processes=os.cpu_count()):
            await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
        completed = app.jobs.counts().by_state.get("completed", 0)
        assert completed == count, f"{completed} of {count} jobs completed"
        return elapsed
    finally:
        app.close()


CELERY_APP = """
from celery import Celery
import executor_jobs
app = Celery("bench", broker="redis://127.0.0.1:6379/{db}", backend="redis://127.0.0.1:6379/{db}")
app.conf.worker_hijack_root_logger = False
noop = app.task(name="noop")(executor_jobs.noop)
spin = app.task(name="spin")(executor_jobs.spin)
"""


def celery_drain(folder: str, body: str, count: int, kwargs: dict[str, Any]) -> float:
    """Seconds for a Celery prefork worker (a separate process) to run `count` queued tasks."""
    import redis  # type: ignore[import-not-found]

    db = 9
    redis.Redis(db=db).flushdb()
    module = Path(folder) / "celery_bench.py"
    module.write_text(CELERY_APP.format(db=db))
    sys.path.insert(0, folder)
    import celery_bench  # type: ignore[import-not-found]

    task = getattr(celery_bench, body)
    results = [task.apply_async(kwargs=kwargs) for _ in range(count)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([folder, str(Path(__file__).parent)])}
    command = [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool",
               "prefork", "-c", str(os.cpu_count()), "--loglevel", "warning"]  # fmt: skip
    started = time.perf_counter()
    worker = subprocess.Popen(command, cwd=folder, env=env)
    try:
        for result in results:
            result.get(timeout=600)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(30)
    assert all(result.successful() for result in results)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000, help="no-op jobs per drain")
    parser.add_argument("--cpu-jobs", type=int, default=200, help="CPU-bound jobs per drain")
    parser.add_argument("--milliseconds", type=float, default=20.0, help="CPU per job")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--celery", action="store_true", help="also Celery's prefork pool")
    options = parser.parse_args()
    rounds = calibrate(options.milliseconds)
    cases: list[tuple[str, str, str, int, dict[str, Any]]] = [
        ("no-op", "thread", "noop", options.jobs, {}),
        ("no-op", "process", "noop", options.jobs, {}),
        (
            f"{options.milliseconds:g} ms CPU",
            "thread",
            "spin",
            options.cpu_jobs,
            {"rounds": rounds},
        ),
        (
            f"{options.milliseconds:g} ms CPU",
            "process",
            "spin",
            options.cpu_jobs,
            {"rounds": rounds},
        ),
    ]
    if options.celery:
        cases += [
            ("no-op", "celery prefork", "noop", options.jobs, {}),
            (f"{options.milliseconds:g} ms CPU", "celery prefork", "spin", options.cpu_jobs,
             {"rounds": rounds}),
        ]  # fmt: skip
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"spin rounds for {options.milliseconds:g} ms: {rounds}")
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(options.repeat):
            for label, executor, body, count, kwargs in cases:
                if executor == "celery prefork":
                    seconds = celery_drain(folder, body, count, kwargs)
                else:
                    func = getattr(executor_jobs, body)
                    seconds = asyncio.run(conveyor_drain(folder, executor, func, count, kwargs))
                rates.setdefault((label, executor), []).append(count / seconds)
    print(f"\n{'jobs':<12} {'executor':<16} {'jobs/s median':>14} {'min-max':>18}")
    for (label, executor), values in rates.items():
        spread = f"{min(values):,.0f}-{max(values):,.0f}"
        print(f"{label:<12} {executor:<16} {statistics.median(values):>14,.0f} {spread:>18}")
    for label in dict.fromkeys(label for label, _ in rates):
        thread = statistics.median(rates[label, "thread"])
        process = statistics.median(rates[label, "process"])
        line = f"{label}: process / thread = {process / thread:.2f}"
        if (label, "celery prefork") in rates:
            celery = statistics.median(rates[label, "celery prefork"])
            line += f", process / celery = {process / celery:.2f}"
        print(line)
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
