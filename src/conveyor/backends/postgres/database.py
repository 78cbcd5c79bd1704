"""The PostgreSQL connections: a pool for the verbs, a dedicated LISTEN connection for
wake-ups, schema migrations under an advisory lock, and errors turned into StoreUnavailable.

Nothing here relies on session state surviving between transactions except LISTEN, which
needs a direct connection to the server (not a transaction-pooling PgBouncer).
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from conveyor.backends.postgres.rows import ADAPTERS
from conveyor.backends.postgres.sql import Q, migrations, quote_identifier, render
from conveyor.errors import ConfigurationError, StoreUnavailable

log = logging.getLogger(__name__)

Conn = psycopg.Connection[dict[str, Any]]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
WAIT_SLICE = 0.25  # seconds a LISTEN wait blocks before checking whether the store closed
# SQLSTATE classes that mean the connection, not the statement, failed: connection exceptions
# (08), the server shutting down or starting (57P01-57P03), too many connections (53300).
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _closed_by_the_server(conn: Conn) -> None:
    """The pool's check of a connection it hands out: raise (so the pool replaces it) when the
    server has closed it, as a restart or failover does to every idle connection. Costs no
    round trip: an idle connection has nothing to read unless the server said goodbye (its
    FATAL message, then end of file) — otherwise the first call after a restart would fail."""
    if conn.closed:
        raise psycopg.OperationalError("the pooled connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        conn.close()  # a connection that still looks fine would be put back in the pool
        raise psycopg.OperationalError("the server closed the pooled connection")


#: The URL options Conveyor reads itself; every other one goes to libpq.
CONVEYOR_URL_OPTIONS = ("schema", "pool_min", "pool_max", "pool_timeout", "prepare", "fast_acks",
                        "migrate", "stall_timeout")  # fmt: skip


def _check_connection_options(options: dict[str, str]) -> None:
    """Refuse URL options that are neither Conveyor's nor libpq's, naming the accepted ones
    (libpq itself would only say "invalid URI query parameter")."""
    known = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(map(repr, unknown))} in the PostgreSQL URL: "
            f"Conveyor's are {', '.join(CONVEYOR_URL_OPTIONS)}; libpq's are "
            f"{', '.join(sorted(known - {'password'}))}"
        )


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """Where the store lives and how it connects, read from a postgresql:// URL.

    Query options the store reads (the others are passed on to libpq): `schema` (default
    conveyor), `pool_min` (1), `pool_max` (10), `pool_timeout` (seconds to wait for a pooled
    connection, 10), `prepare` (true; false when a transaction-pooling PgBouncer older than
    1.21 sits in between, since prepared statements are session state), `fast_acks` (false;
    true lets claims, acknowledgements and heartbeats commit without waiting for the WAL
    flush: a PostgreSQL crash may then forget the last moments of them, and those jobs run
    again; enqueues stay durable), `migrate` (true: open() applies missing migrations;
    false: open() only checks that none is missing, for deployments that migrate as a
    separate step), `stall_timeout` (seconds, 10; 0: none: the server ends a session of the
    store's pool that stays inside a transaction this long without a word, so a worker process
    stopped mid-transaction (SIGSTOP, a VM paused) frees the locks the others wait on).
    `connect_timeout` (libpq's, default 5 s) also bounds open().
    """

    conninfo: str
    schema: str = "conveyor"
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 10.0
    connect_timeout: float = 5.0
    prepare: bool = True
    fast_acks: bool = False
    migrate: bool = True
    stall_timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str) -> PostgresConfig:
        """Parse a postgresql:// (or postgres://) URL and its query options."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigurationError(
                f"not a PostgreSQL URL: {url!r}; write postgresql://user@host:5432/dbname"
            )
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            schema = query.pop("schema", "conveyor")
            pool_min = int(query.pop("pool_min", "1"))
            pool_max = int(query.pop("pool_max", str(max(10, pool_min))))
            pool_timeout = float(query.pop("pool_timeout", "10"))
            prepare = _flag(query.pop("prepare", "true"))
            fast_acks = _flag(query.pop("fast_acks", "false"))
            migrate = _flag(query.pop("migrate", "true"))
            stall_timeout = float(query.pop("stall_timeout", "10"))
            query.setdefault("connect_timeout", "5")
            connect_timeout = float(query["connect_timeout"])
        except ValueError as exc:
            raise ConfigurationError(
                f"bad option in the PostgreSQL URL: {exc}; pool_min and pool_max are whole "
                "numbers, pool_timeout, connect_timeout and stall_timeout seconds"
            ) from exc
        if not 0 <= stall_timeout <= 86_400:
            raise ConfigurationError(
                f"stall_timeout must be from 0 (none) to 86400 seconds, not {stall_timeout:g}"
            )
        _check_connection_options(query)
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError(
                f"bad schema name {schema!r} in the PostgreSQL URL: use letters, digits and "
                "underscores (at most 48, not starting with a digit), e.g. ?schema=conveyor"
            )
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ConfigurationError(
                f"pool_min ({pool_min}) must be at most pool_max ({pool_max}), which is >= 1"
            )
        # quote (not quote_plus): libpq decodes %20 in a URI, but not "+"
        conninfo = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
        return cls(
            conninfo,
            schema,
            pool_min,
            pool_max,
            pool_timeout,
            connect_timeout,
            prepare,
            fast_acks,
            migrate,
            stall_timeout,
        )

    @property
    def commit_mode(self) -> str | None:
        """The synchronous_commit of claims, acknowledgements and heartbeats (None: the
        server's setting)."""
        return "off" if self.fast_acks else None

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this schema's jobs."""
        return f"conveyor_{self.schema}"

    @property
    def target(self) -> str:
        """Where the server is, for messages (never the password)."""
        try:
            params = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        except psycopg.ProgrammingError:
            return "(unparsable URL)"
        host = params.get("host") or "localhost (Unix socket)"
        port = params.get("port") or "5432"
        user = params.get("user") or "(default user)"
        return f"{host}:{port}/{params.get('dbname') or '(default database)'} as {user}"


def _flag(value: str) -> bool:
    return value.lower() not in ("0", "false", "no", "off")


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` means the server could not be reached or dropped the connection."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(_CONNECTION_STATES)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (libpq's go on over several), else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Database:
    """A connection pool to one database, rendered queries for one schema, and a listener."""

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self.queries = {name: render(sql, config.schema) for name, sql in Q.items()}
        self._pool: ConnectionPool[Conn] | None = None
        self._pid = os.getpid()
        self._opening = threading.Lock()
        self._listener: Conn | None = None
        self._listener_lock = threading.Lock()
        self._listened = False  # a LISTEN connection existed before (a new one reconnects)
        self._listen_down = False  # the failure to LISTEN again was logged
        self._closed = False

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, apply missing migrations and start the pool. Idempotent."""
        with self._opening:
            if self._pool is not None and self._pid == os.getpid():
                return
            if self._pid != os.getpid():
                # A forked child: the parent's pool and LISTEN connection are not ours to use
                # (nor to close); start afresh.
                self._pool, self._listener, self._listened = None, None, False
                self._listener_lock = threading.Lock()
            self._pid = os.getpid()
            self._closed = False
            with self.errors("cannot open"), self.connect() as conn:
                if self.config.migrate:
                    self.migrate(conn)
                else:
                    self.check_migrated(conn)
            pool: ConnectionPool[Conn] = ConnectionPool(
                self.config.conninfo,
                connection_class=cast("type[Conn]", psycopg.Connection),
                kwargs=self._connection_options(),
                min_size=self.config.pool_min,
                max_size=self.config.pool_max,
                timeout=self.config.pool_timeout,
                name=f"conveyor-{self.config.schema}",
                open=False,
                check=_closed_by_the_server,
                configure=self._configure,
            )
            try:
                with self.errors("cannot open"):
                    pool.open(wait=True, timeout=self.config.connect_timeout + 1)
            except BaseException:
                pool.close()
                raise
            self._pool = pool

    def close(self) -> None:
        """Close the pool and the listener. Idempotent."""
        with self._opening:
            self._closed = True
            pool, self._pool = self._pool, None
            if pool is not None and self._pid == os.getpid():
                pool.close()
            # A waiting thread gives the listener back within WAIT_SLICE.
            got = self._listener_lock.acquire(timeout=WAIT_SLICE * 4)
            try:
                listener, self._listener = self._listener, None
                if listener is not None:
                    with suppress(psycopg.Error):
                        listener.close()
            finally:
                if got:
                    self._listener_lock.release()

    @property
    def is_open(self) -> bool:
        """Whether open() succeeded and close() has not been called since."""
        return self._pool is not None

    def _connection_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "context": ADAPTERS,
        }
        if not self.config.prepare:
            options["prepare_threshold"] = None
        return options

    def _configure(self, conn: Conn) -> None:
        """A new pooled connection: the server ends it if it stalls inside a transaction."""
        if self.config.stall_timeout:
            milliseconds = str(round(self.config.stall_timeout * 1000))
            conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (milliseconds,),
                prepare=False,
            )

    def connect(self) -> Conn:
        """A new direct connection (not from the pool), autocommit, rows as dicts."""
        return psycopg.Connection.connect(self.config.conninfo, **self._connection_options())

    def migrate(self, conn: Conn) -> list[int]:
        """Apply the migrations `conn`'s database lacks, one process at a time (an advisory
        lock held by the transaction); returns the versions applied now."""
        q = self.queries
        done: list[int] = []
        with conn.transaction():
            conn.execute(q["migration_lock"], {"schema": self.config.schema})
            conn.execute(q["create_schema"])
            conn.execute(q["create_schema_version"])
            applied = {row["version"] for row in conn.execute(q["applied_versions"])}
            for version, script in migrations():
                if version not in applied:
                    self._apply(conn, version, script)
                    conn.execute(q["record_version"], {"version": version})
                    done.append(version)
        return done

    def _apply(self, conn: Conn, version: int, script: str) -> None:
        """Run one migration; a refusal (a missing extension, a privilege) becomes a
        ConfigurationError with the server's message and hint (the transaction rolls back)."""
        try:
            conn.execute(render(script, self.config.schema).encode())
        except psycopg.Error as exc:
            if is_connection_error(exc):
                raise
            hint = exc.diag.message_hint
            raise ConfigurationError(
                f"migration {version} of the PostgreSQL schema {self.config.schema!r} at "
                f"{self.config.target} failed, nothing was changed: {first_line(exc)}"
                + (f". {hint}" if hint else "")
            ) from exc

    def applied_migrations(self, conn: Conn) -> list[int]:
        """The versions applied to `conn`'s schema, in order (none before the first migrate)."""
        q = self.queries
        found = conn.execute(q["schema_version_exists"], {"schema": self.config.schema})
        row = found.fetchone()
        if row is None or not row["exists"]:
            return []
        return [r["version"] for r in conn.execute(q["applied_versions"])]

    def pending_migrations(self, conn: Conn) -> list[int]:
        """The versions shipped but not applied to `conn`'s schema yet."""
        applied = set(self.applied_migrations(conn))
        return [version for version, _ in migrations() if version not in applied]

    def check_migrated(self, conn: Conn) -> None:
        """Refuse to run on a schema that lacks migrations (when open() does not apply them)."""
        if missing := self.pending_migrations(conn):
            raise ConfigurationError(
                f"the PostgreSQL schema {self.config.schema!r} at {self.config.target} lacks "
                f"migrations {missing}: run `conveyor migrate` (or open the store once "
                "without ?migrate=false) before starting"
            )

    # connections -----------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """A pooled autocommit connection: each statement is its own transaction."""
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            if pool is None:
                raise StoreUnavailable(
                    f"the PostgreSQL store at {self.config.target} is not open: "
                    "call open() before using it"
                )
            self.open()  # a forked child: the parent's pool is not ours to use
            pool = self._pool
            assert pool is not None
        with self.errors("cannot use"), pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A pooled connection inside one transaction, committed at the end of the block."""
        with self.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn connection failures into StoreUnavailable that say where and what to do."""
        config = self.config
        try:
            yield
        except PoolClosed as exc:
            raise StoreUnavailable(
                f"the PostgreSQL store at {config.target} was closed: open it again to use it"
            ) from exc
        except PoolTimeout as exc:
            self._check_pool()
            raise StoreUnavailable(
                f"{doing} the PostgreSQL store at {config.target}: no connection within "
                f"{config.pool_timeout:g} s. The server may be down (check with `pg_isready`) "
                "or every pooled connection busy (raise ?pool_max= in the URL); the call can "
                "be retried"
            ) from exc
        except psycopg.Error as exc:
            if not is_connection_error(exc):
                raise
            self._check_pool()
            reason = first_line(exc)
            raise StoreUnavailable(
                f"{doing} the PostgreSQL store at {config.target}: {reason}. Check that the "
                "server is running and reachable (`pg_isready -h HOST -p PORT`) and that the "
                "URL's host, port, user and database are right; the call can be retried once "
                "it is back"
            ) from exc

    def _check_pool(self) -> None:
        """After a failure, have the pool drop its broken idle connections (in the background:
        the caller gets its error at once)."""
        pool = self._pool
        if pool is None:
            return

        def check() -> None:
            with suppress(Exception):
                pool.check()

        threading.Thread(target=check, name="conveyor-pool-check", daemon=True).start()

    # wake-ups --------------------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` s on LISTEN; True when a notification (or a reconnect, after
        which notifications may have been missed) arrived, False at the timeout or on close."""
        deadline = time.monotonic() + timeout
        if self._pid != os.getpid() and self._pool is not None:
            self.open()  # a forked child
        if not self._listener_lock.acquire(timeout=max(timeout, 0)):
            return False  # another thread is listening and will wake the worker
        try:
            while not self._closed:
                remaining = deadline - time.monotonic()
                if self._listener is None:
                    try:
                        if self._listen():
                            return True  # restored: announcements may have been missed
                    except StoreUnavailable as exc:
                        if not self.is_open:
                            raise
                        self._listen_failed(exc, deadline)
                        return False  # the worker polls meanwhile
                    remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._heard(min(remaining, WAIT_SLICE)):
                    return True
            return False
        finally:
            self._listener_lock.release()

    def _listen_failed(self, exc: StoreUnavailable, deadline: float) -> None:
        """Say once per outage that LISTEN is down, then wait out the call's timeout."""
        if not self._listen_down:
            self._listen_down = True
            log.warning("%s; polling for jobs until LISTEN is back", exc)
        while not self._closed and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, WAIT_SLICE))

    def _listen(self) -> bool:
        """Open the LISTEN connection; True when it replaces one that was lost."""
        if self.is_open is False:
            raise StoreUnavailable(
                f"the PostgreSQL store at {self.config.target} is not open: "
                "call open() before waiting for jobs"
            )
        with self.errors("cannot listen on"):
            conn = self.connect()
            try:
                conn.execute(
                    render(self.queries["listen"], self.config.schema, self.config.channel)
                )
            except BaseException:
                conn.close()
                raise
        self._listener = conn
        reconnected, self._listened = self._listened, True
        if reconnected:
            log.warning("LISTEN connection to %s restored", self.config.target)
        self._listen_down = False
        return reconnected

    def _heard(self, timeout: float) -> bool:
        """Whether a notification arrives within `timeout` s."""
        conn = self._listener
        assert conn is not None
        heard = False
        try:
            # Exhausted, not left early: the generator holds the connection's lock.
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                heard = True
        except psycopg.Error as exc:
            if self._closed:
                return False
            log.warning(
                "lost the LISTEN connection to %s (%s); reconnecting, polling meanwhile",
                self.config.target,
                first_line(exc),
            )
            self._listener = None
            with suppress(psycopg.Error):
                conn.close()
            return True  # work may have arrived while the connection was down
        return heard


__all__ = ["Conn", "Database", "PostgresConfig", "is_connection_error", "quote_identifier"]
