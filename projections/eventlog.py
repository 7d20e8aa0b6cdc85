"""Direct reads of the store's notification log where the library has no call for them: the
position of one aggregate event, and a wake-up on PostgreSQL's NOTIFY."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from domain.app import Business
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
