"""A 60 Hz game loop that offloads pathfinding to the bridge and applies routes on the loop.

Run it:  python examples/game_loop.py --seconds 5 --units 200
         python examples/game_loop.py --work cpu --processes --workers 1   (CPU-bound searches)

Each unit that has no route asks for one with `bridge.try_schedule("path", unit_id, ...)`: the
key de-duplicates requests (a unit never has two searches in flight), the "path" feature caps
concurrent searches, and a search that takes too long is cancelled. The loop calls
`bridge.drain(budget_s=...)` once per tick, so routes are attached on the loop's thread, in
the order searches finished, without ever blowing the frame budget. Worker threads never touch
`World`: they get plain inputs and return a plain route.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from conveyor.bridge import Bridge, CancelToken

GRID = 48
TICK_HZ = 60


def find_path(
    start: tuple[int, int],
    goal: tuple[int, int],
    seed: int,
    token: CancelToken | None = None,
) -> list[tuple[int, int]]:
    """Breadth-first search on a grid with random walls: a "pathfinding chunk" (pure Python,
    CPU-bound). Checks the token every few hundred nodes so a cancelled search stops early."""
    rng = random.Random(seed)
    walls = {(rng.randrange(GRID), rng.randrange(GRID)) for _ in range(GRID * GRID // 5)}
    walls.discard(start)
    walls.discard(goal)
    came_from: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    frontier = deque([start])
    visited = 0
    while frontier:
        node = frontier.popleft()
        visited += 1
        if token is not None and visited % 256 == 0 and token.cancelled:
            return []
        if node == goal:
            break
        x, y = node
        for nxt in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            inside = 0 <= nxt[0] < GRID and 0 <= nxt[1] < GRID
            if inside and nxt not in walls and nxt not in came_from:
                came_from[nxt] = node
                frontier.append(nxt)
    if goal not in came_from:
        return []
    path: list[tuple[int, int]] = []
    at: tuple[int, int] | None = goal
    while at is not None:
        path.append(at)
        at = came_from[at]
    path.reverse()
    return path


def wait_for_path(
    start: tuple[int, int], goal: tuple[int, int], seed: int, token: CancelToken
) -> list[tuple[int, int]]:
    """A search that mostly waits (a navmesh service, a database): releases the GIL."""
    delay = 0.005 + (seed % 16) / 1000
    if token.wait(delay):
        return []
    return [start, goal]


@dataclass
class Unit:
    """A game object: owned by the loop's thread only."""

    id: int
    pos: tuple[int, int]
    route: list[tuple[int, int]] = field(default_factory=list)
    routes_received: int = 0


@dataclass
class World:
    """All game state. Only the loop's thread reads or changes it."""

    units: dict[int, Unit]
    rng: random.Random
    failures: int = 0
    timeouts: int = 0

    def attach_route(self, unit_id: int, route: list[tuple[int, int]]) -> None:
        unit = self.units[unit_id]
        unit.route = route[1:] or [unit.pos]
        unit.routes_received += 1

    def path_failed(self, unit_id: int, error: BaseException) -> None:
        if isinstance(error, TimeoutError):
            self.timeouts += 1
        else:
            self.failures += 1  # includes searches cancelled by the shutdown at the end

    def step(self) -> None:
        for unit in self.units.values():
            if unit.route:
                unit.pos = unit.route.pop(0)


@dataclass
class TickStats:
    """Per-tick lateness (start after its scheduled time) and duration, in seconds."""

    overruns: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    callbacks: int = 0
    cancelled_at_exit: int = 0

    def summary(self) -> dict[str, float]:
        """p50, p99 and max of the overrun and of the tick's own duration, in milliseconds."""
        return {
            "ticks": len(self.overruns),
            "in_flight_mean": statistics.fmean(self.in_flight) if self.in_flight else 0.0,
            "overrun_p50_ms": _pct(self.overruns, 50) * 1000,
            "overrun_p99_ms": _pct(self.overruns, 99) * 1000,
            "overrun_max_ms": max(self.overruns, default=0.0) * 1000,
            "tick_p50_ms": _pct(self.durations, 50) * 1000,
            "tick_p99_ms": _pct(self.durations, 99) * 1000,
            "tick_max_ms": max(self.durations, default=0.0) * 1000,
        }


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(
    seconds: float = 3.0,
    units: int = 200,
    work: str = "wait",
    processes: bool = False,
    workers: int = 8,
    budget_ms: float = 2.0,
) -> tuple[World, TickStats]:
    """Run the loop for `seconds`; with `units` > 0, every unit without a route asks for one,
    keeping up to `units` searches in flight. Returns the world and the tick statistics."""
    rng = random.Random(1)
    world = World(
        {i: Unit(i, (rng.randrange(GRID), rng.randrange(GRID))) for i in range(units)}, rng
    )
    bridge = Bridge(max_workers=workers, use_processes=processes)
    bridge.feature("path", concurrency=workers)
    stats = TickStats()
    period = 1.0 / TICK_HZ
    search = find_path if work == "cpu" else wait_for_path
    start = time.perf_counter()
    next_tick = start
    tick = 0
    while next_tick - start < seconds:
        now = time.perf_counter()
        if now < next_tick:
            time.sleep(next_tick - now)
            now = time.perf_counter()
        stats.overruns.append(max(0.0, now - next_tick))
        # -- the tick: ask for routes, apply finished ones within the budget, move -----------
        for unit in world.units.values():
            if not unit.route:
                goal = (rng.randrange(GRID), rng.randrange(GRID))
                bridge.try_schedule(
                    "path",
                    unit.id,
                    partial(search, unit.pos, goal, tick * 1000 + unit.id),
                    partial(world.attach_route, unit.id),
                    partial(world.path_failed, unit.id),
                    timeout=1.0,
                )
        stats.callbacks += bridge.drain(budget_s=budget_ms / 1000)
        world.step()
        stats.durations.append(time.perf_counter() - now)
        stats.in_flight.append(bridge.active + bridge.pending)
        tick += 1
        next_tick = start + tick * period
    report = bridge.shutdown(timeout=2.0)
    world.failures -= report.cancelled  # cancelled at exit, not failed
    stats.cancelled_at_exit = report.cancelled
    return world, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--units", type=int, default=200, help="background searches in flight")
    parser.add_argument("--work", choices=["wait", "cpu"], default="wait")
    parser.add_argument("--processes", action="store_true", help="run searches in processes")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    world, stats = run(args.seconds, args.units, args.work, args.processes, args.workers)
    routes = sum(unit.routes_received for unit in world.units.values())
    print(
        f"{routes} routes attached on the loop ({routes / args.seconds:.0f}/s), "
        f"{world.timeouts} timed out, {world.failures} failed, "
        f"{stats.cancelled_at_exit} cancelled by the shutdown at exit"
    )
    for key, value in stats.summary().items():
        print(f"{key:>16}: {value:.3f}")


if __name__ == "__main__":
    main()
