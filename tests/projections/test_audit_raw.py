"""The audit trail reads events as stored (no decoding) where it can: for every event of a
whole demo business, the rows it writes that way are exactly the rows the decoded event gives."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.app import open_business
from domain.settings import Settings
from projections.audit import Audit, _raw_row
from projections.decoding import event_class, parse
from projections.engine import RawEvent
from projections.eventlog import read_log
from replay.demo import load_demo


class Rows:
    """Collects what a read model writes, as comparable tuples."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, tuple[tuple[str, Any], ...]]] = []

    def append(self, table: Any, **values: Any) -> None:
        self.rows.append((table.name, tuple(sorted(values.items()))))

    insert = append

    def get(self, table: Any, key: Any) -> None:
        return None


def test_rows_from_stored_events_equal_rows_from_decoded_events(sqlite_url: str) -> None:
    business = open_business(Settings(database_url=sqlite_url), create_tables=True)
    try:
        business.ensure_defaults()
        load_demo(business, today=date(2026, 11, 27))
        audit = Audit()
        notifications = read_log(business.recorder, 1, 100_000)
        assert len(notifications) > 100
        read_raw = 0
        for n in notifications:
            state, _ = parse(n.state)
            raw = RawEvent(n, event_class(n.topic), state, business.mapper.to_domain_event)
            stored, decoded = Rows(), Rows()
            if not _raw_row(audit, raw, n.id, stored):
                continue
            read_raw += 1
            audit.handle(business.mapper.to_domain_event(n), n.id, decoded)
            assert sorted(stored.rows) == sorted(decoded.rows), n.topic
        assert read_raw == len(notifications)  # none needed decoding in a current store
    finally:
        business.close()
