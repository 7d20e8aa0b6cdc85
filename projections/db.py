"""SQLAlchemy engines for the read side, from the same URL that chooses the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from domain.settings import backend_of, postgres_params, sqlite_path


def sqlalchemy_url(url: str) -> str:
    backend = backend_of(url)
    if backend == "sqlite":
        return f"sqlite+pysqlite:///{sqlite_path(url)}"
    if backend == "memory":
        return "sqlite+pysqlite:///:memory:"
    pg = postgres_params(url)
    auth = pg["user"] + (f":{pg['password']}" if pg["password"] else "")
    return f"postgresql+psycopg://{auth}@{pg['host']}:{pg['port']}/{pg['dbname']}"


def make_engine(url: str, *, writer: bool) -> Engine:
    """A writer engine begins transactions with the write lock already taken (SQLite's
    BEGIN IMMEDIATE), so that a read-then-write batch never fails to upgrade its lock; a
    reader engine reads one consistent snapshot per transaction."""
    backend = backend_of(url)
    if backend == "postgresql":
        schema = postgres_params(url)["schema"]
        connect_args: dict[str, Any] = {"options": f"-csearch_path={schema}"} if schema else {}
        return create_engine(
            sqlalchemy_url(url),
            connect_args=connect_args,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            isolation_level="READ COMMITTED" if writer else "REPEATABLE READ",
        )
    if backend == "memory":
        engine = create_engine(
            sqlalchemy_url(url),
            connect_args={"check_same_thread": False},
            poolclass=StaticPool,
        )
    else:
        engine = create_engine(
            sqlalchemy_url(url),
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=5 if writer else 10,
            max_overflow=10,
        )
    begin = "BEGIN IMMEDIATE" if writer and backend == "sqlite" else "BEGIN"

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (SQLAlchemy's documented
        # recipe), so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if backend == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")
            # Read models can always be rebuilt from the store: they need not wait for fsync.
            cursor.execute("PRAGMA synchronous=NORMAL")
            if writer:
                # A batch of thousands of events dirties thousands of pages; checkpointing the
                # WAL after every such commit (the default is every 1000 pages) copies the same
                # pages again and again. Let it grow to about 40 MB between checkpoints.
                cursor.execute("PRAGMA wal_autocheckpoint=10000")
                # Index pages of a big read model (an audit row per event, keyed by random
                # ids) do not fit SQLite's default 2 MB page cache: a bigger one (taken only
                # as pages are used) makes a rebuild write and re-read fewer pages. 16 MB:
                # since secondary indexes are built after a rebuild, 64 MB wrote no fewer
                # pages at a million events and cost each rebuilding process ~50 MB more.
                cursor.execute("PRAGMA cache_size=-16384")
                # Debian's SQLite (and others) is built to zero every page it frees: dropping
                # a million-event audit trail for a rebuild wrote 1.7 GB of zeros. FAST zeroes
                # deleted rows within the pages it writes anyway, never a page more.
                cursor.execute("PRAGMA secure_delete=FAST")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
