"""Direct reads of the store's notification log where the library has no call for them (the
position of one aggregate event, a wake-up on PostgreSQL's NOTIFY) or is slower than it need
be (reading the log in bulk on SQLite)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from sqlalchemy import Engine

from domain.app import Business
from domain.ids import uuid_from_hex
from domain.settings import postgres_params

log = logging.getLogger(__name__)


def position_of(business: Business, originator_id: UUID, version: int) -> int | None:
    """The notification id of one stored event (for answering an idempotent repeat)."""
    recorder = business.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {recorder.events_table_name} "  # noqa: S608 - library's name
                "WHERE originator_id=? AND originator_version=?",
                (originator_id.hex, version),
            )
            row = c.fetchone()
            return int(row[0]) if row else None
    if isinstance(recorder, PostgresApplicationRecorder):
        schema = recorder.datastore.schema
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                f'SELECT notification_id FROM "{schema}"."{recorder.events_table_name}" '  # noqa: S608
                "WHERE originator_id=%s AND originator_version=%s",
                (originator_id, version),
            )
            found = curs.fetchone()
            return int(found["notification_id"]) if found else None
    # In memory (unit tests): scan.
    start = 1
    while True:
        page = recorder.select_notifications(start=start, limit=1000)
        for n in page:
            if n.originator_id == originator_id and n.originator_version == version:
                return n.id
        if len(page) < 1000:
            return None
        start = page[-1].id + 1


def analyze_log(recorder: Any) -> bool:
    """Have PostgreSQL gather the statistics of the events table now; True if it did (False
    elsewhere). Without them — a store just restored or copied in, or grown far past its
    last autovacuum's ANALYZE — the planner takes a page of the log (`position >= start ...
    ORDER BY position LIMIT n`) for a few rows: it gathered every row from `start` to the
    head and sorted them on disk, for each page of a rebuild. A million events, pages of
    20,000: 1.05 s a page, 91 ms with statistics."""
    if not isinstance(recorder, PostgresApplicationRecorder):
        return False
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        conn.execute(f'ANALYZE "{schema}"."{recorder.events_table_name}"')
    return True


class LogEntry:
    """One notification of the log, as `select_notifications` gives it (the same attributes),
    made cheaply: a rebuild reads every event of the log, a million of them at a time."""

    __slots__ = ("id", "originator_id", "originator_version", "state", "topic")

    def __init__(
        self, id: int, originator_id: UUID, originator_version: int, topic: str, state: bytes
    ) -> None:
        self.id = id
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.topic = topic
        self.state = state


def read_log(
    recorder: Any,
    start: int,
    limit: int,
    stop: int | None = None,
    topics: Sequence[str] = (),
) -> Sequence[Any]:
    """The notifications from `start` (inclusive) up to `stop`, at most `limit` of them, only
    of `topics` if given: `recorder.select_notifications`, with a plain SELECT on SQLite (no
    row objects, no frozen dataclasses: about three times as fast)."""
    if (
        isinstance(recorder, SQLiteApplicationRecorder)
        and recorder.datastore.originator_id_type == "uuid"
    ):
        rows = read_raw(recorder, start, limit, stop, topics) or []
        return [LogEntry(i, uuid_from_hex(o), v, t, s) for i, o, v, t, s in rows]
    return recorder.select_notifications(start=start, limit=limit, stop=stop, topics=topics)


def read_raw(
    recorder: Any,
    start: int,
    limit: int,
    stop: int | None = None,
    topics: Sequence[str] = (),
) -> list[tuple[int, str, int, str, bytes]] | None:
    """(position, aggregate id as stored, version, topic, state) from `start` up to `stop`, at
    most `limit`, only of `topics` if given, on SQLite; None elsewhere (use
    `select_notifications`)."""
    if not isinstance(recorder, SQLiteApplicationRecorder):
        return None
    sql = (
        "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
        f"FROM {recorder.events_table_name} WHERE rowid >= ?"
    )
    params: list[Any] = [start]
    if stop is not None:
        sql += " AND rowid <= ?"
        params.append(stop)
    if topics:
        sql += f" AND topic IN ({','.join('?' * len(topics))})"
        params += list(topics)
    sql += " ORDER BY rowid LIMIT ?"
    params.append(limit)
    with recorder.datastore.transaction(commit=False) as c:
        cursor = c.sqlite_cursor if hasattr(c, "sqlite_cursor") else c
        cursor.row_factory = None
        cursor.execute(sql, params)
        return cursor.fetchall()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SharedLog:
    """The store's events table, where the read models' writer can read it in SQL (the same
    SQLite file, or the same PostgreSQL database): what a read model may make its rows from
    (`Projection.prepare`). The events are plain JSON there, their ids stored as hex, and
    `transcodings` names every kind of encoded value (`{"_type_": name, "_data_": ...}`)
    their JSON may hold. `table` is the events table's name as the writer's SQL names it
    (schema-qualified and quoted on PostgreSQL); `dialect` the database's."""

    table: str
    transcodings: frozenset[str]
    dialect: str = "sqlite"


def shared_log(business: Business, writer: Engine) -> SharedLog | None:
    """The store's log as `writer` reads it in SQL, if it can: an SQLite file of the store's
    that holds the read models too (`tekil`'s default) or a PostgreSQL database holding both,
    events neither encrypted nor compressed. None elsewhere (read models on a database of
    their own, in memory)."""
    recorder, mapper = business.recorder, business.mapper
    if mapper.cipher is not None or mapper.compressor is not None:
        return None
    names = getattr(mapper.transcoder, "names", None)
    if not isinstance(names, dict):
        return None
    if isinstance(recorder, PostgresApplicationRecorder):
        return _shared_on_postgres(recorder, writer, frozenset(names))
    if not (
        isinstance(recorder, SQLiteApplicationRecorder)
        and recorder.datastore.originator_id_type == "uuid"
        and writer.dialect.name == "sqlite"
    ):
        return None
    store, reads = recorder.datastore.pool.db_name, writer.url.database
    if not (store and reads and os.path.exists(store) and os.path.exists(reads)):
        return None  # (in memory)
    if not os.path.samefile(store, reads):
        return None
    return SharedLog(recorder.events_table_name, frozenset(names))


def _shared_on_postgres(
    recorder: PostgresApplicationRecorder, writer: Engine, transcodings: frozenset[str]
) -> SharedLog | None:
    """The store's events table where the read models' writer is connected to the same
    PostgreSQL server and database (their schemas may differ: the table is named with its)."""
    datastore = recorder.datastore
    if writer.dialect.name != "postgresql" or datastore.originator_id_type != "uuid":
        return None
    store = getattr(datastore.pool, "kwargs", {})
    url = writer.url
    if (store.get("dbname"), str(store.get("host")), str(store.get("port"))) != (
        url.database,
        url.host,
        str(url.port or 5432),
    ):
        return None
    quote = writer.dialect.identifier_preparer.quote_identifier
    table = f"{quote(datastore.schema or 'public')}.{quote(recorder.events_table_name)}"
    return SharedLog(table, transcodings, "postgresql")


def max_position(business: Business) -> int:
    return business.recorder.max_notification_id() or 0


class Listener:
    """Calls `on_notify` whenever an event is recorded on PostgreSQL (by any process)."""

    def __init__(self, database_url: str, channel: str, on_notify: Callable[[], None]) -> None:
        pg = postgres_params(database_url)
        self.conninfo = {k: pg[k] for k in ("dbname", "host", "port", "user", "password")}
        self.channel = channel
        self.on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="tekil-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self.conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.on_notify()
            except Exception:  # a dropped connection: wake the runner, then listen again
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                self.on_notify()
                self._stop.wait(1.0)
