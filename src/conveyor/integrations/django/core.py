"""The project's App, from `settings.CONVEYOR`, and enqueueing inside Django's transactions.

```python
CONVEYOR = {
    "url": "postgresql://…",     # default: Django's database (when PostgreSQL), else $CONVEYOR_URL
    "database": "default",       # the Django database whose transactions enqueues follow
    "settings": {"concurrency": 8},
    "queues": {"reports": 1, "imports": {"max_size": 10_000, "when_full": "refuse"}},
    "atomic": True,              # enqueue inside transaction.atomic() follows it (default)
}
```
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction

from conveyor.app import App, JobHandle
from conveyor.backends.protocol import Backend, TransactionalEnqueue
from conveyor.errors import ConfigurationError
from conveyor.model.job import NewJob
from conveyor.model.validation import check_new_job, queue_settings_from_config

log = logging.getLogger("conveyor.integrations.django")
KEYS = ("url", "database", "settings", "queues", "atomic")
_made: DjangoApp | None = None
_lock = threading.Lock()


class DjangoApp(App):
    """An App whose enqueues follow Django's transactions (`settings.CONVEYOR["atomic"]`).

    Inside `transaction.atomic()` on the Django database `database`:

    - on PostgreSQL, with the store in that same database (psycopg 3, Django ≥ 4.2), the jobs
      are written on Django's own connection, in its transaction: a rollback (of the block or
      of a savepoint around the enqueue) removes them, a commit keeps them;
    - otherwise they are stored by `transaction.on_commit`: never if the transaction rolls
      back. The handle returned then carries the id the job will have; it is not stored yet.

    Outside a transaction (autocommit), and with `atomic=False`, jobs are stored at once.
    Async enqueues (`enqueue_async`) are stored at once: Django's transactions are per thread.
    """

    def __init__(
        self,
        url: str | None,
        *,
        database: str = DEFAULT_DB_ALIAS,
        atomic: bool = True,
        **options: Any,
    ) -> None:
        self.database = database
        self.atomic = atomic
        self._url_from_django = url is None and _django_postgres(database)
        super().__init__(url or _database_url(database), **options)

    @property
    def backend(self) -> Backend:
        """The store, opened at first use. When its URL comes from Django's database, it is
        read again then: Django's test runner renames the database after startup."""
        if self._url_from_django and self._backend is None:
            self.configure(_database_url(self.database))
        return super().backend

    def enqueue_many(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[JobHandle]:
        """Store jobs, following the Django transaction they are enqueued in (see the class)."""
        if connection is not None or not jobs or not self.atomic:
            return super().enqueue_many(jobs, connection=connection)
        django_connection = connections[self.database]
        if not django_connection.in_atomic_block:
            return super().enqueue_many(jobs)
        joined = self._joinable(django_connection)
        if joined is not None:
            return super().enqueue_many(jobs, connection=joined)
        return self._on_commit(list(jobs))

    def _joinable(self, django_connection: Any) -> Any:
        """Django's psycopg connection, when the jobs can be written in its transaction."""
        if django_connection.vendor != "postgresql":
            return None
        if not isinstance(self.backend, TransactionalEnqueue):
            return None  # the store is not PostgreSQL: wait for the commit
        raw = django_connection.connection
        if raw is None or not type(raw).__module__.startswith("psycopg"):
            return None
        if type(raw).__module__.startswith("psycopg2"):
            return None  # psycopg 2 cannot carry the store's statements: wait for the commit
        if not self._url_from_django:
            store_db = urlsplit(self.url).path.lstrip("/")
            if store_db and store_db != raw.info.dbname:
                raise ConfigurationError(
                    f"CONVEYOR['url'] names the database {store_db!r} but Django's "
                    f"{self.database!r} database is {raw.info.dbname!r}: an enqueue inside "
                    "transaction.atomic() is written on Django's connection, so both must be "
                    "one database (drop CONVEYOR['url'] to use Django's), or set "
                    "CONVEYOR['atomic'] = False"
                )
        return raw

    def _on_commit(self, jobs: list[NewJob]) -> list[JobHandle]:
        now = self.clock()
        for job in jobs:
            check_new_job(job, now)  # refuse bad jobs now, not at the commit

        def store() -> None:
            App.enqueue_many(self, jobs)

        transaction.on_commit(store, using=self.database)
        handles: list[JobHandle] = []
        for job in jobs:
            definition = self._definitions.get(job.name)
            spec = definition.spec if definition is not None else None
            handles.append(JobHandle(self, job.to_job(now), True, spec))
        return handles


def get_app() -> DjangoApp:
    """The project's App from `settings.CONVEYOR`, made once per process."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _from_settings(getattr(settings, "CONVEYOR", {}))
    return _made


def _from_settings(config: object) -> DjangoApp:
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f"settings.CONVEYOR must be a dict like {{'url': 'postgresql://…'}}, got {config!r}"
        )
    unknown = set(config) - set(KEYS)
    if unknown:
        raise ConfigurationError(
            f"settings.CONVEYOR has unknown key(s) {', '.join(sorted(map(repr, unknown)))}; "
            f"the keys are: {', '.join(KEYS)}"
        )
    url = config.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigurationError(f"CONVEYOR['url'] must be a store URL string, got {url!r}")
    database = config.get("database", DEFAULT_DB_ALIAS)
    if database not in settings.DATABASES:
        raise ConfigurationError(
            f"CONVEYOR['database'] is {database!r}, which is not in settings.DATABASES "
            f"({', '.join(settings.DATABASES) or 'none'})"
        )
    atomic = config.get("atomic", True)
    if not isinstance(atomic, bool):
        raise ConfigurationError(f"CONVEYOR['atomic'] must be True or False, got {atomic!r}")
    options = _mapping(config.get("settings", {}), "settings")
    queues = _mapping(config.get("queues", {}), "queues")
    app = DjangoApp(url, database=database, atomic=atomic, **options)
    app.around_sync_jobs(fresh_connections)
    for name, value in queues.items():
        queue = queue_settings_from_config(value, f"CONVEYOR['queues'][{name!r}]")
        app.queue(
            name,
            concurrency=queue.concurrency,
            max_size=queue.max_size,
            when_full=queue.when_full,
        )
    return app


@contextmanager
def fresh_connections() -> Iterator[None]:
    """Around each plain job, on its thread: close the Django connections that are broken or
    past CONN_MAX_AGE, as Django does around each request (its request_started and
    request_finished signals), so that an ORM job never gets a connection the server dropped."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def _mapping(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(name, str) for name in value):
        raise ConfigurationError(
            f"CONVEYOR[{key!r}] must be a dict by name, like {{'reports': 1}}, got {value!r}"
        )
    return dict(value)


def _django_postgres(alias: str) -> bool:
    engine = str(settings.DATABASES.get(alias, {}).get("ENGINE", ""))
    return engine.endswith("postgresql")


def _database_url(alias: str) -> str | None:
    """The store URL of Django's PostgreSQL database `alias` (schema `conveyor`), else None
    (then the App's default: $CONVEYOR_URL, else sqlite:///conveyor.db)."""
    if not _django_postgres(alias):
        return None
    db = connections[alias].settings_dict
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(db.get("HOST") or "")
    host = f"[{host}]" if ":" in host else host
    port = f":{db['PORT']}" if db.get("PORT") else ""
    name = quote(str(db.get("NAME") or ""), safe="")
    return f"postgresql://{credentials}{host}{port}/{name}"


def _reset_for_tests() -> None:
    """Forget the App (tests that change settings.CONVEYOR)."""
    global _made
    with _lock:
        if _made is not None:
            _made.close()
        _made = None


__all__ = ["KEYS", "DjangoApp", "get_app"]
