"""The distributed store: PostgreSQL (psycopg 3), shared by workers on many hosts.

Needs the `postgres` extra: `pip install "conveyor[postgres]"`.
"""

from conveyor.backends.postgres.backend import PostgresBackend
from conveyor.backends.postgres.database import PostgresConfig

__all__ = ["PostgresBackend", "PostgresConfig"]
