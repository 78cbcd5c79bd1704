"""The durable default store: one SQLite file in WAL mode, shared by a host's workers."""

from conveyor.backends.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
