"""The in-process store: jobs in dictionaries and per-queue heaps, for tests and scripts
(`memory://`). `backend.py` holds `MemoryBackend`; the other modules are its parts."""

from conveyor.backends.memory.backend import MemoryBackend

__all__ = ["MemoryBackend"]
