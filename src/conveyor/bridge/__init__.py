"""The in-process bridge for programs with a main loop (game loop, GUI, simulation, asyncio).

Work runs elsewhere (a thread pool, a process pool, or a private event loop); its result is
applied on the main loop's thread, when the loop drains, in the order work finished. Standard
library only: it does not use the job store. See docs/bridge.md.
"""

from conveyor.bridge.aio import AsyncBridge
from conveyor.bridge.core import BridgeClosed, CancelToken, ShutdownReport, WorkCancelled
from conveyor.bridge.sync import Bridge
from conveyor.scope import Scope

__all__ = [
    "AsyncBridge",
    "Bridge",
    "BridgeClosed",
    "CancelToken",
    "Scope",
    "ShutdownReport",
    "WorkCancelled",
]
