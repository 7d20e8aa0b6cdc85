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

Checkpoints (copying the WAL's pages into the database file, and syncing it) are not made by
the commit that happens to cross SQLite's threshold of 1,000 pages — which made that
command wait for them: 12-15 ms at a million events, the p99 of issuing an invoice — but by
a thread of the writing process, on a connection of its own (`Checkpointer`, decision
0013).

Everything else (reads, the notification log, tracking, snapshots, creating tables) is the
library's, through its pool. An in-memory database (one the pool's connections share through
its interlock) keeps the library's write path.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteApplicationRecorder

TOPIC = "domain.sqlitestore:TekilSQLiteRecorder"

log = logging.getLogger(__name__)


class Checkpointer:
    """Copies the WAL of the database at `path` into the database file on a thread of its
    own, soon after commits (`wrote`), so that no commit makes the checkpoint itself.

    SQLite starts the WAL file from its beginning again only at a write that begins after
    a checkpoint finished, and one running beside steady writes seldom does (their new
    pages arrive while it copies). So when the WAL holds more than `restart_pages`, the
    checkpoint is finished with this process's writers held back (`hold`, the recorder's
    write lock): a short pause now and then (the pages written since the last checkpoint),
    instead of a WAL file that grows for as long as the writes go on."""

    def __init__(
        self,
        path: str,
        hold: threading.Lock,
        *,
        every: float = 0.25,
        restart_pages: int = 4_000,
        timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.hold = hold
        self.every = every
        self.restart_pages = restart_pages
        self.timeout = timeout
        self.checkpoints = 0
        self._wrote = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tekil-checkpoints", daemon=True)
            self._thread.start()

    def wrote(self) -> None:
        """A commit happened: a checkpoint within `every` seconds."""
        self._wrote.set()

    def stop(self) -> None:
        """Stops the thread after a last checkpoint of what was written."""
        if self._thread is not None:
            self._stop.set()
            self._wrote.set()
            self._thread.join(timeout=self.timeout + 5)
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, uri=True, timeout=self.timeout, isolation_level=None)
        try:
            while True:
                self._wrote.wait()
                if not self._stop.is_set():
                    self._stop.wait(self.every)  # more commits meanwhile: one checkpoint
                self._wrote.clear()
                try:
                    self.checkpoint(conn)
                except sqlite3.Error:
                    log.warning("checkpoint of %s failed; trying again later", self.path)
                if self._stop.is_set():
                    return
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        _, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages > self.restart_pages:
            with self.hold:  # (the pages written while the first pass copied)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1


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
        self.checkpointer = Checkpointer(self.datastore.pool.db_name, self._writing)

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
                        statement,
                        (cast(UUID, s.originator_id).hex, s.originator_version, s.topic, s.state),
                    )
                    positions.append(cast(int, cursor.lastrowid))  # (an INSERT sets it)
                connection.execute("COMMIT")
                self.checkpointer.wrote()
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
        # Its commits leave checkpoints to the checkpointer's thread.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self.checkpointer.start()
        return self._writer

    def close(self) -> None:
        """Closes the connection kept for writing (the pool's are closed with the store),
        after a last checkpoint."""
        self.checkpointer.stop()  # (outside the write lock: its last pass may take it)
        with self._writing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
