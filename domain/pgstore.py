"""The event store's recorder on PostgreSQL: a command's events in one round trip.

eventsourcing 9.5.6 records events on PostgreSQL with a pipelined transaction of six
statements (BEGIN; SET LOCAL lock_timeout; LOCK TABLE ... IN EXCLUSIVE MODE; NOTIFY; INSERT
... RETURNING; COMMIT), two synchronisations with the server and a Python-level wait loop
around them: about 3 ms for one event where the raw INSERT takes 0.56 ms. This recorder does
the very same statements inside a server-side function, called in autocommit mode: one
statement, one round trip, one implicit transaction. Every guarantee of the library's
recorder is kept:

* the table lock (EXCLUSIVE mode, taken before the insert and held until the commit): the
  transactions that insert events commit one after another, in the order of their
  notification ids, so a reader following the log never passes over a position that is
  filled in later. Readers are not blocked (SELECT takes ACCESS SHARE);
* `lock_timeout` as configured (POSTGRES_LOCK_TIMEOUT), for this transaction only;
* the NOTIFY on the recorder's channel (the table's name), delivered at commit and only on
  commit: the library's subscription and `projections.eventlog.Listener` wake up as before;
* a duplicate (originator_id, originator_version) aborts the whole statement: nothing is
  recorded, nothing is notified, and `eventsourcing.persistence.IntegrityError` is raised;
* the notification ids come back in the order of the events given.

One check more than the library's: the aggregates the command read without changing them
(`reads`, set by domain/core.py around its save) must still be at the versions it read. It runs
under the table lock, so no insert commits between the check and ours: a command's decision
and everything it was based on are consistent, as if commands ran one at a time. A changed one
aborts the statement (nothing recorded) with `StaleRead`, an IntegrityError, on which the
command is re-decided from fresh state. This is what lets a process keep aggregates in memory
between commands on PostgreSQL too (docs/decisions/0006-commands-check-what-they-read.md).

The call itself is a statement prepared once on the connection kept for writing, its
parameters built in PostgreSQL's binary format (domain/pgwire.py): a cursor's per-call work
(its objects, the query's conversion, the adapters, the prepared-statement bookkeeping) was a
third of a command's own CPU (decision 0014).

Unlike the library's POSTGRES_ENABLE_DB_FUNCTIONS (whose function takes no table lock, and
which we must not use) this is a plain `PostgresApplicationRecorder` in every other respect.
The functions are created with the tables, by `tekil db init` (CREATE OR REPLACE FUNCTION in
the store's schema) — never on opening, so that several processes do not race to create
them. A store initialised before they existed keeps working through the library's insert
(with a warning) until `tekil db init` has been run.

Connections: with POSTGRES_PRE_PING=n (domain/settings.py) the pool no longer spends a round
trip on every checkout to ask the server whether a connection still works; instead, this
recorder makes the pool look at the connection's socket (no round trip): a connection the
server has closed or written to while it sat idle in the pool — a restart, an administrator's
or an idle timeout's termination, all of which the server announces before closing — gets the
full check, and is replaced if it fails. See `check_idle_connection`.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

import psycopg
import psycopg.errors
import psycopg_pool
from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import retry
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from domain import pgwire

log = logging.getLogger(__name__)

TOPIC = "domain.pgstore:TekilPostgresRecorder"

# The version of the functions' bodies: a change to them gets new names (and `tekil db init`
# creates them), so that a process never calls a function of another shape.
FUNCTIONS_VERSION = 3

# After finding the functions missing (a store initialised before them), look again this
# often: `tekil db init` may have been run since.
RECHECK_MISSING_FUNCTIONS_AFTER = 60.0


# (aggregate id, version read) of the aggregates the command being saved read and does not
# change; set by domain/core.py around the save.
reads: ContextVar[Sequence[tuple[UUID, int]]] = ContextVar("tekil_reads", default=())


class StaleRead(IntegrityError):
    """An aggregate the command read has changed since: nothing was recorded; decide again."""


STALE_READ_MESSAGE = "tekil: an aggregate read by this command has changed since it was read"

# Under the table lock: has any aggregate the command read got an event after the version it
# read? (The primary key's index answers it.) Then abort, recording nothing.
# Two IFs, not one `IF p_read_ids IS NOT NULL AND EXISTS (...)`: plpgsql evaluates a condition
# with a subquery through the executor (about 8 µs of the server's CPU on every call), a bare
# IS NOT NULL as a simple expression; most commands read nothing they do not change.
CHECK_READS = (  # constants only; the names are composed by psycopg.sql
    "IF p_read_ids IS NOT NULL THEN "  # noqa: S608
    "IF EXISTS ("
    "SELECT 1 FROM unnest(p_read_ids, p_read_versions) "
    "AS r(o, v) JOIN {schema}.{table} e ON e.originator_id = r.o "
    "AND e.originator_version = r.v + 1) THEN "
    "RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = '"
    + STALE_READ_MESSAGE
    + "'; "
    "END IF; "
    "END IF; "
)


def _text_id(value: UUID | str) -> bytes:
    return str(value).encode()


def check_idle_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection before it hands it out, without a round trip.

    A healthy connection idle in the pool has nothing to read: the server speaks only when
    asked. A server that terminates a session (shutdown or restart, `pg_terminate_backend`,
    `idle_session_timeout`, a crash of another backend) first sends the reason and then
    closes the socket; either makes the socket readable. Only then does the connection get
    the full check (an empty query: a round trip), which raises if the connection is broken
    — the pool then discards it and tries the next one, without the caller noticing. (A
    notification for a LISTEN left on a pooled connection also makes it readable: the round
    trip then simply consumes it.)

    A server that closed one idle connection has most likely closed all of them, and
    psycopg_pool waits 1, 2, 4, ... s before each further check within one checkout: finding
    ten dead connections one by one held a request for 15 s, or failed it at the pool's
    timeout. So the first dead one found has the pool check all its idle connections at once
    (tests/reliability/test_database_loss.py).
    """
    try:
        pgconn = conn.pgconn
        if pgconn.status != ConnStatus.OK:
            raise psycopg.OperationalError("the connection is closed")
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        if poller.poll(0):
            ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # set by the pool before it calls its check
        if isinstance(pool, psycopg_pool.ConnectionPool):
            pool.check()
        raise


def _converted(error: psycopg.Error) -> PersistenceError:
    """psycopg's error as the library's datastore converts it (eventsourcing.postgres)."""
    for theirs, ours in (
        (psycopg.InterfaceError, InterfaceError),
        (psycopg.OperationalError, OperationalError),
        (psycopg.DataError, DataError),
        (psycopg.IntegrityError, IntegrityError),
        (psycopg.InternalError, InternalError),
        (psycopg.ProgrammingError, ProgrammingError),
        (psycopg.NotSupportedError, NotSupportedError),
        (psycopg.DatabaseError, DatabaseError),
    ):
        if isinstance(error, theirs):
            return ours(str(error))
    return PersistenceError(str(error))


def use_idle_check(datastore: PostgresDatastore) -> bool:
    """Give the datastore's pool `check_idle_connection`, unless it already has a check
    (POSTGRES_PRE_PING=y gives it the library's round-trip ping, which is then kept).
    psycopg_pool takes its check at construction only, and eventsourcing constructs the pool,
    so this sets the pool's attribute (tests/domain/test_pgstore.py proves it is used)."""
    pool = datastore.pool
    if not hasattr(pool, "_check"):  # pragma: no cover - a psycopg_pool we do not know
        log.warning("psycopg_pool has no _check: idle connections are not checked")
        return False
    if pool._check is None:
        pool._check = check_idle_connection
    return pool._check is check_idle_connection


class TekilPostgresRecorder(PostgresApplicationRecorder):
    """`PostgresApplicationRecorder` whose insert is one call of a server-side function
    (lock, notify, insert, return the ids: one round trip), and whose read of an aggregate's
    events is a prepared statement fetched as tuples."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        use_idle_check(datastore)
        schema = Identifier(datastore.schema)
        table = Identifier(self.events_table_name)
        id_type = Identifier(datastore.originator_id_type)
        channel = Identifier(self.channel_name)
        self.insert_one_function_name = f"{self.events_table_name}_insert_one_v{FUNCTIONS_VERSION}"
        self.insert_many_function_name = (
            f"{self.events_table_name}_insert_many_v{FUNCTIONS_VERSION}"
        )
        self.check_identifier_length(self.insert_one_function_name)
        self.check_identifier_length(self.insert_many_function_name)
        one = Identifier(self.insert_one_function_name)
        many = Identifier(self.insert_many_function_name)
        names = dict(schema=schema, table=table, id_type=id_type, channel=channel)

        # The same statements as the library's `_insert_stored_events` (SET LOCAL lock_timeout,
        # LOCK TABLE ... IN EXCLUSIVE MODE, NOTIFY, INSERT ... RETURNING notification_id), in
        # one function each for one event and for several.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{one}("
                "p_originator_id {id_type}, p_originator_version bigint, p_topic text, "
                "p_state bytea, p_lock_timeout text, p_read_ids {id_type}[], "
                "p_read_versions bigint[]) "
                "RETURNS bigint LANGUAGE plpgsql VOLATILE AS $tekil$ "
                "DECLARE new_id bigint; "
                "BEGIN "
                "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                + CHECK_READS
                + "NOTIFY {channel}; "
                "INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "VALUES (p_originator_id, p_originator_version, p_topic, p_state) "
                "RETURNING notification_id INTO new_id; "
                "RETURN new_id; "
                "END $tekil$"
            ).format(one=one, **names)
        )
        # Several events: inserted in the order given (ORDER BY the array index, so their
        # notification ids ascend in that order), and the ids returned in that order (joined
        # back on the primary key, so the answer does not depend on the order of RETURNING).
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{many}("  # noqa: S608 - constants
                "p_originator_ids {id_type}[], p_originator_versions bigint[], "
                "p_topics text[], p_states bytea[], p_lock_timeout text, "
                "p_read_ids {id_type}[], p_read_versions bigint[]) "
                "RETURNS bigint[] LANGUAGE plpgsql VOLATILE AS $tekil$ "
                "DECLARE new_ids bigint[]; "
                "BEGIN "
                "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                + CHECK_READS
                + "NOTIFY {channel}; "
                "WITH given AS ("
                " SELECT * FROM unnest(p_originator_ids, p_originator_versions, p_topics, "
                " p_states) WITH ORDINALITY AS g(o, v, t, s, n)), "
                "inserted AS ("
                " INSERT INTO {schema}.{table} "
                " (originator_id, originator_version, topic, state) "
                " SELECT o, v, t, s FROM given ORDER BY n "
                " RETURNING originator_id, originator_version, notification_id) "
                "SELECT array_agg(inserted.notification_id ORDER BY given.n) INTO new_ids "
                "FROM inserted JOIN given ON inserted.originator_id = given.o "
                "AND inserted.originator_version = given.v; "
                "RETURN new_ids; "
                "END $tekil$"
            ).format(many=many, **names)
        )
        # Called as statements prepared by name on the connection kept for writing, with
        # binary parameters (domain/pgwire.py); their types are those of the functions.
        self._call_one = (
            f"tekil_{self.insert_one_function_name}".encode(),
            SQL("SELECT {schema}.{one}($1, $2, $3, $4, $5, $6, $7)")
            .format(schema=schema, one=one)
            .as_string()
            .encode(),
        )
        self._call_many = (
            f"tekil_{self.insert_many_function_name}".encode(),
            SQL("SELECT {schema}.{many}($1, $2, $3, $4, $5, $6, $7)")
            .format(schema=schema, many=many)
            .as_string()
            .encode(),
        )
        if datastore.originator_id_type == "uuid":
            self._id_oid, self._id_bytes = pgwire.UUID_OID, pgwire.uuid
        else:  # text
            self._id_oid, self._id_bytes = pgwire.TEXT_OID, _text_id
        self._prepared_on: psycopg.Connection[Any] | None = None
        self._lock_timeout = f"{int(datastore.lock_timeout)}s".encode()
        self._functions_missing_until = 0.0
        self._functions_lock = threading.Lock()
        self._writer: psycopg.Connection[Any] | None = None
        self._writing = threading.Lock()

        self._read_changed = (
            SQL(
                "SELECT 1 FROM unnest(%s::{id_type}[], %s::bigint[]) AS r(o, v) "
                "JOIN {schema}.{table} e ON e.originator_id = r.o "
                "AND e.originator_version = r.v + 1 LIMIT 1"
            )
            .format(schema=schema, table=table, id_type=id_type)
            .as_string()
        )
        select = "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        self._select_all = (
            SQL(select + "WHERE originator_id = %s ORDER BY originator_version")
            .format(schema=schema, table=table)
            .as_string()
        )
        self._select_recent = (
            SQL(select + "WHERE originator_id = %s ORDER BY originator_version DESC LIMIT %s")
            .format(schema=schema, table=table)
            .as_string()
        )

    # -- writing ------------------------------------------------------------------------------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if (
            stored_events
            and kwargs.get("tracking") is None
            and not self.datastore.enable_db_functions
            and self._functions_missing_until <= time.monotonic()
        ):
            ids = self._insert_in_one_round_trip(stored_events, reads.get())
            if ids is not None:
                return ids
        # Nothing to insert, a tracking record to write (not for an application recorder),
        # or the functions are not there: the library's way (with its own retries), after
        # checking the reads on their own (not under the table lock: a store without the
        # functions, until `tekil db init`, does not have the one-statement guarantee).
        if stored_events and reads.get():
            self._check_reads(reads.get())
        return super().insert_events(stored_events, **kwargs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _check_reads(self, read: Sequence[tuple[UUID, int]]) -> None:
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(
                self._read_changed,
                ([i for i, _ in read], [v for _, v in read]),
            )
            if curs.fetchone() is not None:
                raise StaleRead(STALE_READ_MESSAGE)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_in_one_round_trip(
        self, stored_events: Sequence[StoredEvent], read: Sequence[tuple[UUID, int]] = ()
    ) -> list[int] | None:
        """The events' notification ids, in order; None if the functions are missing."""
        id_bytes = self._id_bytes
        if read:
            read_ids: bytes | None = pgwire.array(self._id_oid, [id_bytes(i) for i, _ in read])
            read_versions = pgwire.array(pgwire.INT8_OID, [pgwire.int8(v) for _, v in read])
        else:
            read_ids = read_versions = None
        if len(stored_events) == 1:
            (e,) = stored_events
            name = self._call_one[0]
            params = [
                id_bytes(e.originator_id),
                pgwire.int8(e.originator_version),
                e.topic.encode(),
                e.state,
                self._lock_timeout,
                read_ids,
                read_versions,
            ]
        else:
            name = self._call_many[0]
            params = [
                pgwire.array(self._id_oid, [id_bytes(e.originator_id) for e in stored_events]),
                pgwire.array(
                    pgwire.INT8_OID, [pgwire.int8(e.originator_version) for e in stored_events]
                ),
                pgwire.array(pgwire.TEXT_OID, [e.topic.encode() for e in stored_events]),
                pgwire.array(pgwire.BYTEA_OID, [e.state for e in stored_events]),
                self._lock_timeout,
                read_ids,
                read_versions,
            ]
        # The connection kept for writing: one save at a time through it (the table lock
        # lets one insert at a time commit anyway), no checkout from the pool per save.
        with self._writing:
            conn = self._writer_connection()
            try:
                if self._prepared_on is not conn:
                    pgwire.prepare(conn, *self._call_one)
                    pgwire.prepare(conn, *self._call_many)
                    self._prepared_on = conn
                value = pgwire.call(conn, name, params)
            except psycopg.errors.UniqueViolation as error:
                # The statement failed as a whole: nothing recorded, nothing notified. Raised
                # as the library raises it, without the function's context in the message.
                diag = error.diag
                msg = f"{diag.message_primary}\nDETAIL:  {diag.message_detail}"
                raise IntegrityError(msg) from error
            except psycopg.errors.SerializationFailure as error:
                if error.diag.message_primary == STALE_READ_MESSAGE:
                    raise StaleRead(STALE_READ_MESSAGE) from error
                raise _converted(error) from error  # OperationalError: retried
            except psycopg.errors.UndefinedFunction:
                self._functions_missing()
                return None
            except psycopg.errors.InvalidSqlStatementName as error:
                # The prepared statements are gone (a DEALLOCATE on this connection): prepared
                # again by the retry.
                self._prepared_on = None
                raise OperationalError(str(error)) from error
            except psycopg.Error as error:
                if conn.broken or conn.closed:
                    # The server restarted, or dropped the connection: it goes back to the
                    # pool, which discards it, and the retry gets a new one.
                    self._drop_writer()
                raise _converted(error) from error
            except BaseException:
                # Interrupted (psycopg cancels the statement on KeyboardInterrupt): a
                # connection not back at rest is not used again.
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    self._drop_writer()
                raise
        if value is None:  # pragma: no cover - cannot happen
            raise ProgrammingError(f"got no notification id for {len(stored_events)} events")
        ids = [int(value)] if len(stored_events) == 1 else pgwire.int8_array(value)
        if len(ids) != len(stored_events):  # pragma: no cover - cannot happen
            msg = f"got notification ids {ids} for {len(stored_events)} events"
            raise ProgrammingError(msg)
        return ids

    def _writer_connection(self) -> psycopg.Connection[Any]:
        """The connection kept for writing (held under `_writing`): taken from the pool once
        and kept out of it, and looked at as the pool looks at an idle one before each use
        (`check_idle_connection`: no round trip unless the server has spoken)."""
        conn = self._writer
        if conn is not None:
            try:
                check_idle_connection(conn)
            except Exception:
                self._drop_writer()
                conn = None
        if conn is None:
            datastore = self.datastore
            try:
                wait = datastore.pool_open_timeout is not None
                datastore.pool.open(wait, datastore.pool_open_timeout or 30.0)
                conn = datastore.pool.getconn()  # checked by the pool as it hands it out
            except psycopg.Error as error:
                raise _converted(error) from error
            if not conn.autocommit:  # pragma: no cover - the library's pool sets it
                datastore.pool.putconn(conn)
                raise ProgrammingError("the store's connections must be in autocommit mode")
            self._writer = conn
        return conn

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        self._prepared_on = None
        if conn is not None:
            with contextlib.suppress(Exception):
                self.datastore.pool.putconn(conn)

    def close(self) -> None:
        """Gives the connection kept for writing back to the pool (before the store closes)."""
        with self._writing:
            self._drop_writer()

    def _functions_missing(self) -> None:
        with self._functions_lock:
            if self._functions_missing_until > time.monotonic():
                return
            self._functions_missing_until = time.monotonic() + RECHECK_MISSING_FUNCTIONS_AFTER
        log.warning(
            "the store's insert functions %s.%s are missing (a store initialised by an older "
            "tekil): recording through the library's slower insert; run `tekil db init`",
            self.datastore.schema,
            self.insert_one_function_name,
        )

    # -- reading ------------------------------------------------------------------------------

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        if gt is None and lte is None:
            if not desc and limit is None:  # `repository.get` of an aggregate
                return self._select_prepared(self._select_all, (originator_id,))
            if desc and limit is not None:  # its latest (domain/caching.py `Replaying`)
                return self._select_prepared(self._select_recent, (originator_id, limit))
        return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _select_prepared(self, statement: str, params: tuple[Any, ...]) -> list[StoredEvent]:
        """Events of one aggregate, as loads ask for them: a statement composed once and
        prepared on each connection, rows as tuples."""
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(statement, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row[0],
                    originator_version=row[1],
                    topic=row[2],
                    state=bytes(row[3]),
                )
                for row in curs.fetchall()
            ]
