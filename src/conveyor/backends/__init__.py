"""Job stores behind one protocol, chosen by URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from conveyor.backends.protocol import Backend
from conveyor.errors import ConfigurationError
from conveyor.model.settings import Settings

SCHEMES = ("memory://", "sqlite:///path/to/file.db", "postgresql://user@host/db")


def open_backend(url: str, settings: Settings) -> Backend:
    """The store a URL names (not yet opened): memory://, sqlite:///path, postgresql://…"""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("memory", "sqlite") and parts.query:
        raise ConfigurationError(
            f"unknown option(s) in the store URL {url!r}: the {scheme} store takes none "
            "(its settings are App settings); drop the ?… part"
            + (" or write a '?' in a file name as %3F" if scheme == "sqlite" else "")
        )
    if scheme == "memory":
        from conveyor.backends.memory import MemoryBackend

        return MemoryBackend(
            max_queue_size=settings.max_queue_size,
            queue_full=settings.queue_full,
            queue_full_timeout=settings.queue_full_timeout,
        )
    if scheme == "sqlite":
        from conveyor.backends.sqlite import SQLiteBackend

        return SQLiteBackend(sqlite_path(url), queue_full_timeout=settings.queue_full_timeout)
    if scheme in ("postgresql", "postgres"):
        try:
            from conveyor.backends.postgres import PostgresBackend
        except ImportError as exc:
            raise ConfigurationError(
                f"the PostgreSQL store needs psycopg 3 and psycopg-pool ({exc}): "
                'install them with pip install "conveyor[postgres]"'
            ) from exc
        return PostgresBackend.from_url(url, queue_full_timeout=settings.queue_full_timeout)
    raise ConfigurationError(f"unsupported store URL {url!r}: use one of {', '.join(SCHEMES)}")


def sqlite_path(url: str) -> str:
    """The file path in a sqlite:/// URL (sqlite:///rel.db relative, sqlite:////abs absolute)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return unquote(url[len(prefix) :])
