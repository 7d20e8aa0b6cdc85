"""Where the store lives: one URL chooses SQLite, PostgreSQL or memory (for unit tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///./tekil.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    read_database_url: str | None = None

    @classmethod
    def from_env(
        cls, database_url: str | None = None, read_database_url: str | None = None
    ) -> Settings:
        return cls(
            database_url=database_url
            or os.environ.get("TEKIL_DATABASE_URL")
            or DEFAULT_DATABASE_URL,
            read_database_url=read_database_url
            or os.environ.get("TEKIL_READ_DATABASE_URL")
            or None,
        )

    @property
    def backend(self) -> str:
        return backend_of(self.database_url)

    @property
    def reads_url(self) -> str:
        return self.read_database_url or self.database_url

    def store_env(self, *, create_tables: bool = False) -> dict[str, str]:
        """The eventsourcing environment for this store."""
        return store_env(self.database_url, create_tables=create_tables)


def backend_of(url: str) -> str:
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme in ("sqlite", "memory"):
        return scheme
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path/file.db or "
        "postgresql://user@host:port/db"
    )


def sqlite_path(url: str) -> str:
    """`sqlite:///./tekil.db` is relative, `sqlite:////var/lib/tekil.db` absolute."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no file: use sqlite:///path/file.db")
    return str(Path(unquote(path.split("?", 1)[0])).expanduser())


def postgres_params(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "schema": query.get("schema", [""])[0],
    }


def store_env(url: str, *, create_tables: bool = False) -> dict[str, str]:
    backend = backend_of(url)
    create = "yes" if create_tables else "no"
    if backend == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if backend == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sqlite_path(url),
            "SQLITE_LOCK_TIMEOUT": "30",
            "CREATE_TABLE": create,
            # Our recorder (domain/sqlitestore.py): a command's events through a connection
            # kept for writing them, instead of the pool's wrapped one.
            "APPLICATION_RECORDER_TOPIC": "domain.sqlitestore:TekilSQLiteRecorder",
            # Embedded: one process writes, so aggregates stay in memory between commands
            # (a save puts them back). A write from another process is caught by the version
            # check at save, and the command is re-decided from the store (domain/core.py).
            "AGGREGATE_CACHE_MAXSIZE": "20000",
            "AGGREGATE_CACHE_FASTFORWARD": "n",
            "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        }
    pg = postgres_params(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": pg["dbname"],
        "POSTGRES_HOST": pg["host"],
        "POSTGRES_PORT": pg["port"],
        "POSTGRES_USER": pg["user"],
        "POSTGRES_PASSWORD": pg["password"],
        "POSTGRES_SCHEMA": pg["schema"],
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "10",
        # Our recorder (domain/pgstore.py): a command's events in one round trip, with the
        # library's table lock, NOTIFY and errors. The factory resolves this topic for the
        # application recorder (eventsourcing.postgres.PostgresFactory.application_recorder).
        "APPLICATION_RECORDER_TOPIC": "domain.pgstore:TekilPostgresRecorder",
        # No round trip per connection checkout: the recorder gives the pool a check that
        # looks at the socket instead (pgstore.check_idle_connection).
        "POSTGRES_PRE_PING": "no",
        # Aggregates stay in memory between commands here too: the store checks with each
        # save that what the command read is still current (domain/pgstore.py), so a write by
        # another process makes the command decide again from the store (domain/core.py).
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        "CREATE_TABLE": create,
    }
