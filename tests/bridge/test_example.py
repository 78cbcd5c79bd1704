"""The game-loop example runs, attaches routes on its loop, and keeps its ticks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).parents[2] / "examples" / "game_loop.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("game_loop_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_game_loop_example_attaches_routes() -> None:
    game = load()
    world, stats = game.run(seconds=0.5, units=20, workers=2)
    assert sum(unit.routes_received for unit in world.units.values()) > 0
    assert world.failures == 0
    assert len(stats.overruns) == 30  # 60 Hz for half a second


def test_pathfinding_is_plain_data_in_and_out() -> None:
    game = load()
    path = game.find_path((0, 0), (5, 5), seed=3)
    assert path == [] or (path[0] == (0, 0) and path[-1] == (5, 5))
