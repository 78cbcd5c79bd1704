"""The machine's own limit for CPU-bound work in processes, without any framework: how many of
bench/executors.py's 20 ms pure-Python jobs one process runs per second, and how many N
processes run together (each its share of the jobs, started at once, timed until the last
ends). Issue 17 asks the process executor for 1.8x the thread pool's throughput on 2 cores;
this says what two processes give at best on this machine.

    .venv/bin/python bench/cpu_scaling.py [--jobs 200] [--milliseconds 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import executor_jobs


def calibrate(milliseconds: float) -> int:
    """Spin rounds that take `milliseconds` on one idle core."""
    rounds = 100_000
    started = time.perf_counter()
    executor_jobs.spin(None, rounds)
    per_round = (time.perf_counter() - started) / rounds
    return max(1, int(milliseconds / 1000 / per_round))


def run_share(jobs: int, rounds: int) -> None:
    for _ in range(jobs):
        executor_jobs.spin(None, rounds)


def throughput(processes: int, jobs: int, rounds: int) -> float:
    """Jobs per second when `processes` processes share `jobs` jobs."""
    context = multiprocessing.get_context("fork")
    shares = [jobs // processes + (1 if i < jobs % processes else 0) for i in range(processes)]
    workers = [context.Process(target=run_share, args=(share, rounds)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return jobs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--milliseconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    rounds = calibrate(options.milliseconds)
    cores = os.cpu_count() or 1
    print(f"load average at start: {os.getloadavg()}; {cores} CPUs; spin rounds: {rounds}")
    figures: dict[int, list[float]] = {1: [], cores: []}
    for _ in range(options.repeat):  # interleaved
        for count in figures:
            figures[count].append(throughput(count, options.jobs, rounds))
    for count, rates in figures.items():
        print(
            f"  {count} process(es): {statistics.median(rates):.1f} jobs/s "
            f"({min(rates):.1f}-{max(rates):.1f})"
        )
    one, all_ = statistics.median(figures[1]), statistics.median(figures[cores])
    print(f"  {cores} processes / 1 process: {all_ / one:.2f}x")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
