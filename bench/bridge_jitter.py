"""Tick-time jitter of a 60 Hz main loop, with and without 200 bridge jobs in flight.

    python bench/bridge_jitter.py                      # every scenario, 10 s each, 3 rounds
    python bench/bridge_jitter.py --seconds 5 --rounds 1 --scenario wait-threads

The loop sleeps until each tick's scheduled time, then: keeps `--in-flight` keyed jobs in flight
with `try_schedule` (a new one for every key whose callback ran), drains callbacks with a 2 ms
budget, and does 0.3 ms of "game update". It records how late each tick starts (the overrun)
and how long the tick's own work takes. Scenarios, run interleaved so machine noise hits all:

- idle:           no background work (the floor: OS sleep and scheduling jitter)
- wait-threads:   200 jobs that mostly wait (I/O, a service) on 8 threads
- cpu-processes:  200 pure-Python CPU chunks on a process pool (cores - 1 processes)
- cpu-threads:    the same chunks on 8 threads: the GIL makes the loop wait (shown as a warning)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from typing import Any

from conveyor.bridge import Bridge, CancelToken

TICK = 1 / 60


def wait_chunk(ms: float, token: CancelToken) -> int:
    """Background work that waits (releases the GIL), e.g. a network call."""
    token.wait(ms / 1000)
    return 1


def cpu_chunk(n: int, token: CancelToken) -> int:
    """A slice of pure-Python work (a pathfinding chunk): holds the GIL while it runs."""
    total = 0
    for i in range(n):
        total += (i * i) % 7
        if i % 4096 == 0 and token.cancelled:
            break
    return total


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(scenario: str, seconds: float, in_flight: int) -> dict[str, Any]:
    """One run of the loop; returns its figures in milliseconds."""
    cores = os.cpu_count() or 2
    if scenario == "cpu-processes":
        bridge = Bridge(max_workers=max(1, cores - 1), use_processes=True)
        work = partial(cpu_chunk, 60_000)
    elif scenario == "cpu-threads":
        bridge = Bridge(max_workers=8)
        work = partial(cpu_chunk, 60_000)
    else:
        bridge = Bridge(max_workers=8)
        work = partial(wait_chunk, 20.0)
    jobs = in_flight if scenario != "idle" else 0
    done = failed = 0

    def finished(_value: object) -> None:
        nonlocal done
        done += 1

    def failure(_error: BaseException) -> None:
        nonlocal failed
        failed += 1  # timeouts, and the work cancelled by the shutdown at the end

    skipped = 0
    overruns: list[float] = []
    durations: list[float] = []
    counts: list[int] = []
    start = time.perf_counter()
    tick = 0
    next_tick = start
    while next_tick - start < seconds:
        now = time.perf_counter()
        if now < next_tick:
            time.sleep(next_tick - now)
            now = time.perf_counter()
        overruns.append(max(0.0, now - next_tick))
        for key in range(jobs):
            bridge.try_schedule("chunks", key, work, finished, failure, timeout=5.0)
        bridge.drain(budget_s=0.002)
        update_until = time.perf_counter() + 0.0003  # the game's own update
        while time.perf_counter() < update_until:
            pass
        durations.append(time.perf_counter() - now)
        counts.append(bridge.active + bridge.pending)
        tick += 1
        next_tick = start + tick * TICK
        late = time.perf_counter() - next_tick
        if late > TICK:  # a whole frame behind: drop frames rather than accumulate lateness
            dropped = int(late / TICK)
            skipped += dropped
            tick += dropped
            next_tick = start + tick * TICK
    report = bridge.shutdown(timeout=5.0)
    skip = 30  # the first half second: pools starting up
    over, dur = overruns[skip:], durations[skip:]
    return {
        "scenario": scenario,
        "ticks": len(over),
        "in_flight_mean": round(statistics.fmean(counts[skip:]), 1),
        "jobs_done_per_s": round(done / seconds),
        "failed": failed - report.cancelled,
        "cancelled_at_exit": report.cancelled,
        "frames_dropped": skipped,
        "overrun_p50_ms": round(percentile(over, 50) * 1000, 3),
        "overrun_p99_ms": round(percentile(over, 99) * 1000, 3),
        "overrun_max_ms": round(max(over) * 1000, 3),
        "tick_p50_ms": round(percentile(dur, 50) * 1000, 3),
        "tick_p99_ms": round(percentile(dur, 99) * 1000, 3),
        "tick_max_ms": round(max(dur) * 1000, 3),
    }


def main() -> None:
    scenarios = ["idle", "wait-threads", "cpu-processes", "cpu-threads"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--scenario", choices=scenarios, action="append")
    parser.add_argument("--json", help="write every run's figures to this file")
    args = parser.parse_args()
    chosen = args.scenario or scenarios
    runs: list[dict[str, Any]] = []
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    for round_no in range(args.rounds):
        for scenario in chosen:
            result = run(scenario, args.seconds, args.in_flight)
            result["round"] = round_no + 1
            runs.append(result)
            print(json.dumps(result))
    print("\nmedian over rounds (ms):")
    header = ("in flight", "ov p50", "ov p99", "ov max", "tick p99")
    print(f"{'scenario':<15}{header[0]:>10}" + "".join(f"{h:>9}" for h in header[1:]))
    for scenario in chosen:
        mine = [r for r in runs if r["scenario"] == scenario]

        def med(key: str, rows: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(r[key] for r in rows))

        print(
            f"{scenario:<15}{med('in_flight_mean'):>10.0f}{med('overrun_p50_ms'):>9.3f}"
            f"{med('overrun_p99_ms'):>9.3f}{med('overrun_max_ms'):>9.3f}{med('tick_p99_ms'):>10.3f}"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(runs, out, indent=1)


if __name__ == "__main__":
    main()
