"""The SQLite file: one connection per thread, short transactions, and schema migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from conveyor.backends.sqlite.sql import Q, migrations, split_statements
from conveyor.errors import ConfigurationError, StoreUnavailable

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's transaction

# Errors that mean the file cannot be used (locked, unreadable, not a database), as opposed to
# a bug in a statement (IntegrityError, ProgrammingError, ...), which propagate unchanged.
_UNAVAILABLE = (sqlite3.OperationalError, sqlite3.DatabaseError)


# Connections inherited through fork(): the child must neither use nor close them (closing
# could disturb the parent's locks and WAL), so they are kept here, alive and untouched.
_INHERITED: list[sqlite3.Connection] = []


class _Connection(sqlite3.Connection):
    """A thread's connection: weakly referenceable, closed when its thread drops it, and
    locked while in use so that close() from another thread never frees it mid-call.

    Every call into SQLite on a connection that close() can see (one in Database._connections)
    must hold `in_use`: closing a connection while another thread is inside one of its calls
    leaves that thread's C code with a freed handle and crashes the process (SIGSEGV)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_use = threading.RLock()
        self.pid = os.getpid()
        self.retired = False  # set by Database.close(): never to be used again

    def __del__(self) -> None:
        if getattr(self, "pid", None) == os.getpid():  # never in a forked child (_INHERITED)
            with suppress(Exception):  # explicitly: newer Pythons warn about implicit closes
                self.close()


class _ThreadState(threading.local):
    conn: _Connection | None = None
    watch: _Connection | None = None  # only polls PRAGMA data_version
    version: int | None = None
    generation: int = -1


class Database:
    """Connections to one SQLite file, shared by every thread of a process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        self._local = _ThreadState()
        # Weak: a thread that ends drops its connections (closed when collected), so threads
        # that come and go (e.g. a web server's) do not pile up open files.
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._generation = 0  # bumped by close(), so threads drop their closed connections
        self._pid = os.getpid()
        self._open = False

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the path, switch the file to WAL and apply missing migrations. Idempotent."""
        with self._opening:
            if self._open:
                return
            try:
                self.migrate("cannot open")
            except BaseException:
                self.close()
                raise
            self._open = True

    def migrate(self, failing: str = "cannot migrate") -> list[int]:
        """Check the path, switch the file to WAL and apply missing migrations on a connection
        of its own (open or not); returns the versions applied."""
        self._check_path()
        with self._errors(failing):
            # Private to this call (never registered), so close() cannot touch it.
            conn = self._connect()
            try:
                _switch_to_wal(conn)
                return self._migrate(conn)
            finally:
                conn.close()

    def schema_version(self) -> int | None:
        """The latest migration applied (None before the first, or with no file yet), read
        on a read-only connection of its own: it never creates the file."""
        if not os.path.isfile(self.path):
            return None
        with self._errors("cannot read"):
            conn = sqlite3.connect(f"{Path(self.path).absolute().as_uri()}?mode=ro", uri=True)
            try:
                found = conn.execute(Q["schema_version_table"]).fetchone()
                row = conn.execute(Q["latest_version"]).fetchone() if found else None
            finally:
                conn.close()
        return int(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        """Close every connection of every thread. Idempotent."""
        self._after_fork()
        with self._lock:
            self._open = False
            self._generation += 1
            connections = list(self._connections)
            self._connections.clear()
            for conn in connections:
                conn.retired = True  # a thread about to use it raises instead (see _using)
        for conn in connections:
            # A connection still busy past the busy timeout is left to its thread, which
            # drops it on its next call (closed when collected).
            if conn.in_use.acquire(timeout=BUSY_TIMEOUT + 1):
                try:
                    with suppress(sqlite3.Error):  # best effort: the process may be going away
                        conn.close()
                finally:
                    conn.in_use.release()

    def _check_path(self) -> None:
        if self.path in ("", ":memory:"):
            # Each thread has its own connection, and so would have its own empty database.
            raise ConfigurationError(
                "an in-memory SQLite database cannot be shared by threads or processes: "
                "use memory:// for an in-process store, or sqlite:///path/to/jobs.db"
            )
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StoreUnavailable(
                f"cannot open the SQLite store {self.path!r}: the directory {folder!r} does not "
                "exist; create it first or fix the path in the sqlite:/// URL"
            )
        if os.path.isdir(self.path):
            raise StoreUnavailable(
                f"cannot open the SQLite store {self.path!r}: it is a directory; "
                "give the path of a database file, e.g. sqlite:///jobs.db"
            )

    def _migrate(self, conn: sqlite3.Connection) -> list[int]:
        # BEGIN IMMEDIATE serialises processes opening the same new file at once.
        applied_now: list[int] = []
        with self._transaction(conn):
            conn.execute(Q["create_schema_version"])
            applied = {row[0] for row in conn.execute(Q["applied_versions"])}
            for version, script in migrations():
                if version not in applied:
                    for statement in split_statements(script):
                        conn.execute(statement)
                    conn.execute(Q["record_version"], (version,))
                    applied_now.append(version)
        return applied_now

    @property
    def is_open(self) -> bool:
        """Whether open() succeeded and close() has not been called since."""
        return self._open

    # connections -----------------------------------------------------------------------------
    def _connection(self) -> _Connection:
        local = self._thread()
        if local.conn is None:
            local.conn = self._register(self._connect(), local.generation)
        return local.conn

    def changed(self) -> bool:
        """Whether another connection committed since this thread last asked (False on the
        first call), read from PRAGMA data_version on a connection kept for that alone."""
        local = self._thread()
        with self._errors("cannot read from"):
            if local.watch is None:
                local.watch = self._register(self._connect(), local.generation)
            with self._using(local.watch) as watch:
                version: int = watch.execute(Q["data_version"]).fetchone()[0]
        seen, local.version = local.version, version
        return seen is not None and seen != version

    def _thread(self) -> _ThreadState:
        if not self._open:
            raise StoreUnavailable(
                f"the SQLite store {self.path!r} is not open: call open() before using it"
            )
        self._after_fork()
        local = self._local
        if local.generation != self._generation:
            local.conn = local.watch = None
            local.version = None
            local.generation = self._generation
        return local

    def _after_fork(self) -> None:
        if self._pid == os.getpid():
            return
        # In a forked child: start over with new connections, leaving the parent's alone.
        with self._lock:
            self._pid = os.getpid()
            _INHERITED.extend(self._connections)
            self._connections = weakref.WeakSet()
            self._generation += 1

    def _connect(self) -> _Connection:
        """A new connection, set up while no other thread can see it (see _register)."""
        # check_same_thread=False only so that close() may close other threads' connections.
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(Q["synchronous_normal"])
        except BaseException:
            conn.close()
            raise
        return conn

    def _register(self, conn: _Connection, generation: int) -> _Connection:
        """Make a thread's new connection one that close() closes, unless close() ran since
        the thread's call began (`generation`): then it is closed here and the call fails,
        rather than leaving an open connection behind a closed store."""
        with self._lock:
            if self._open and generation == self._generation:
                self._connections.add(conn)
                return conn
        conn.close()
        raise self._closed_during_the_call()

    @contextmanager
    def _using(self, conn: _Connection) -> Iterator[_Connection]:
        """Hold `conn` for a call; a connection that close() retired meanwhile is refused."""
        with conn.in_use:
            if conn.retired:
                raise self._closed_during_the_call()
            yield conn

    def _closed_during_the_call(self) -> StoreUnavailable:
        return StoreUnavailable(f"the SQLite store {self.path!r} was closed during the call")

    # transactions ----------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short BEGIN IMMEDIATE transaction on the thread's connection."""
        with (
            self._errors("cannot write to"),  # entered first: covers _connection() too
            self._using(self._connection()) as conn,
            self._transaction(conn),
        ):
            yield conn

    @contextmanager
    def read(self, consistent: bool = False) -> Iterator[sqlite3.Connection]:
        """The thread's connection for reads; `consistent` ones share one snapshot."""
        with self._errors("cannot read from"), self._using(self._connection()) as conn:
            if not consistent:
                yield conn
                return
            conn.execute(Q["begin_read"])
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute(Q["commit"])

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute(Q["begin_immediate"])
        try:
            yield
            conn.execute(Q["commit"])
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):  # the original error matters more
                    conn.execute(Q["rollback"])
            raise

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError as exc:
            if self._open:
                raise
            raise self._closed_during_the_call() from exc
        except _UNAVAILABLE as exc:
            if type(exc) not in _UNAVAILABLE:
                raise
            raise StoreUnavailable(
                f"{doing} the SQLite store {self.path!r}: {exc}. Check that the file and its "
                "directory exist and are writable by this user (SQLite also creates -wal and "
                "-shm files next to it) and that no other process holds a long write lock"
            ) from exc


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. While another process is creating the same new file, SQLite can
    answer "database is locked" at once, without its busy handler: retry until BUSY_TIMEOUT."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.005
    while True:
        try:
            conn.execute(Q["journal_wal"])
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
