"""The event store's recorder on SQLite: a command's events through a connection kept for
writing them.

eventsourcing 9.5.6 records events on SQLite by taking a connection from its pool (a
reader-writer interlock of conditions and semaphores), wrapping it in a cursor object, a
transaction object and three nested context managers, and running a deferred `BEGIN`, the
INSERTs and the commit. For one event, that wrapping costs about a quarter of what the
write itself does (0.27 ms against 0.20 ms for a raw one-row INSERT of the same table,
bench/command_throughput.py's `recorder` phase). This recorder keeps one connection of its
own for the events and writes through it under a lock: `BEGIN IMMEDIATE`, one INSERT per
event (its rowid is the event's position), `COMMIT`. The guarantees are the library's:

* all of a save's events or none: a failing INSERT (a duplicate (originator_id,
  originator_version): another command saved the aggregate first) rolls the transaction back
  and raises `eventsourcing.persistence.IntegrityError`, on which a command is re-decided;
* positions in the order of the events given, and the order in which they commit: SQLite
  lets one writer at a time hold the database's write lock, and `BEGIN IMMEDIATE` takes it
  before the first INSERT, waiting for it (SQLITE_LOCK_TIMEOUT) while another connection —
  another process, or this process's read-model runner — writes;
* durability: the file is in WAL mode with SQLite's default `synchronous` (FULL) on this
  connection as on the pool's, so the commit returns once the event is on disk.

The same connection tells the aggregate cache whether anybody else wrote since it last
looked: cheaply outside a transaction (`others_wrote`), and exactly inside the save's write
transaction (`in_write`, before the INSERTs: nobody else can commit until this one has), so
that a command decided on a stale cache records nothing and is decided again
(domain/caching.py, domain/core.py).

Everything else (reads, the notification log, tracking, snapshots, creating tables) is the
library's, through its pool. An in-memory database (one the pool's connections share through
its interlock) keeps the library's write path.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteApplicationRecorder

TOPIC = "domain.sqlitestore:TekilSQLiteRecorder"


class TekilSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer: sqlite3.Connection | None = None
        self._version: sqlite3.Cursor  # of the writer, for others_wrote
        self._head_statement = f"SELECT MAX(rowid) FROM {self.events_table_name}"  # noqa: S608
        # Called in each save's write transaction, before its INSERTs, with what tells who
        # else wrote (domain/core.py: the aggregate cache's check); raising rolls it back.
        self.in_write: Callable[[Callable[[], int], Callable[[], int | None]], None] | None = None
        self._writing = threading.Lock()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        pool = self.datastore.pool
        if pool.is_sqlite_memory_mode:
            return super().insert_events(stored_events, **kwargs)
        statement = self.insert_events_statement
        with self._writing:
            connection = self._writer or self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                if self.in_write is not None:
                    self.in_write(self._data_version, self._head)
                positions = []
                for s in stored_events:
                    cursor = connection.execute(
                        statement, (s.originator_id.hex, s.originator_version, s.topic, s.state)
                    )
                    positions.append(cursor.lastrowid)
                connection.execute("COMMIT")
            except BaseException as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.IntegrityError):
                    raise IntegrityError(error) from error
                if isinstance(error, sqlite3.OperationalError):
                    raise OperationalError(error) from error
                raise
        return positions

    def others_wrote(self) -> int | None:
        """A number that changes whenever any connection other than the writing one (another
        process, a read-model runner, the pool's) commits to the database, and not when the
        writing one does (SQLite's PRAGMA data_version): a few microseconds, where reading
        the events table's head on a connection of its own costs about 20. None where the
        library keeps the write path (in-memory)."""
        if self.datastore.pool.is_sqlite_memory_mode:
            return None
        with self._writing:
            if self._writer is None:
                self._connect()
            return self._data_version()

    def head(self) -> int | None:
        """The events table's head, read on the writing connection outside a transaction
        (the cache's look before a load outside commands)."""
        with self._writing:
            if self._writer is None:
                self._connect()
            return self._head()

    def _data_version(self) -> int:
        """The writing connection's data version, in its write transaction."""
        return int(self._version.execute("PRAGMA data_version").fetchone()[0])

    def _head(self) -> int | None:
        """The events table's head, in the writing connection's write transaction."""
        assert self._writer is not None
        row = self._writer.execute(self._head_statement).fetchone()
        return row[0] if row else None

    def _connect(self) -> sqlite3.Connection:
        pool = self.datastore.pool
        self._writer = sqlite3.connect(
            pool.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,  # transactions begun and ended by the statements above
            timeout=pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
        )
        self._version = self._writer.cursor()
        return self._writer

    def close(self) -> None:
        """Closes the connection kept for writing (the pool's are closed with the store)."""
        with self._writing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
