"""A catch-up fills the audit trail in SQL from the store's events table where the read models
share its database (`Audit.fill`; SQLite and PostgreSQL): exactly the rows the events give it
one by one in Python, events stored by an older version of their class (upcast) included, in
batches shared with read models that take their events in Python."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from domain.app import Business, open_business
from domain.settings import Settings
from projections.audit import Audit
from projections.engine import Projection
from projections.eventlog import shared_log
from projections.ledger import Ledger
from projections.runner import Runner
from projections.store import ReadStore
from replay.cli import main
from replay.demo import load_demo
from replay.transfer import import_lines

SAMPLE = Path(__file__).parent.parent / "fixtures" / "events_v1.jsonl"


class InPython(Audit):
    """The audit trail as live following writes it: event by event."""

    def fills(self, log: Any) -> bool:
        return False


def rows(reads: ReadStore, projection: Projection) -> dict[str, list[tuple[Any, ...]]]:
    with reads.reader.connect() as conn:
        return {
            short: sorted(tuple(row) for row in conn.execute(select(table)))
            for short, table in projection.tables.items()
        }


def rebuilt_both_ways(
    business: Business, url: str, batch_size: int
) -> tuple[dict[str, Any], dict[str, Any], ReadStore]:
    filled, python = Audit(), InPython(variant="python")
    ledger, ledger_alone = Ledger(), Ledger(variant="alone")
    # The audit trail filled in SQL in the same batches as a read model taking its events
    # in Python; beside them, each built alone event by event.
    reads, reads_python, reads_alone = (
        ReadStore(url, projections) for projections in ([filled, ledger], [python], [ledger_alone])
    )
    head = business.recorder.max_notification_id()
    for store in (reads, reads_python, reads_alone):
        store.create_tables()
        Runner(business, store, batch_size=batch_size).catch_up()
        assert set(store.positions().values()) == {head}
    log = shared_log(business, reads.writer)
    assert log is not None
    assert log.dialect == reads.writer.dialect.name
    assert filled.fills(log)
    assert not python.fills(log)
    assert rows(reads, ledger) == rows(reads_alone, ledger_alone)
    found = rows(reads, filled), rows(reads_python, python)
    reads_python.dispose()
    reads_alone.dispose()
    return (*found, reads)


@pytest.mark.parametrize("demo", ["serve --demo", "demo --events"])
def test_the_demo_business_filled_in_sql_equals_event_by_event(
    database_url: str, demo: str
) -> None:
    if demo == "demo --events":  # (times of the business's zone, some of a whole second)
        for command in (["db", "init"], ["demo", "--events", "1500"]):
            done = CliRunner().invoke(main, [*command, "--db", database_url])
            assert done.exit_code == 0, done.output
    business = open_business(Settings(database_url=database_url), create_tables=True)
    try:
        if demo == "serve --demo":
            business.ensure_defaults()
            load_demo(business, today=date(2026, 11, 27))
        head = business.recorder.max_notification_id()
        filled, python, reads = rebuilt_both_ways(business, database_url, batch_size=37)
        assert len(filled["events"]) == head
        assert len(filled["refs"]) > head
        assert len(filled["keys"]) > 20
        assert filled == python
        reads.dispose()
    finally:
        business.close()


def test_events_of_an_older_class_version_are_left_to_handle(database_url: str) -> None:
    business = open_business(Settings(database_url=database_url), create_tables=True)
    try:
        import_lines(business, SAMPLE.read_text().splitlines())
        head = business.recorder.max_notification_id()
        older = [
            n.id
            for n in business.recorder.select_notifications(start=1, limit=head)
            if n.topic.endswith("Party.Registered")
        ]
        assert older
        audit = Audit()
        reads = ReadStore(database_url, [audit])
        reads.create_tables()
        log = shared_log(business, reads.writer)
        assert log is not None
        with reads.writer.connect() as conn:
            audit.prepare(conn.connection.driver_connection, log, 0, head)
            with conn.begin():
                assert audit.fill(conn) == older  # (the others are made)
                written = conn.execute(select(audit["events"].c.position)).scalars().all()
                assert sorted(written) == sorted(set(range(1, head + 1)) - set(older))
                conn.rollback()
        reads.dispose()
        filled, python, reads = rebuilt_both_ways(business, database_url, batch_size=10)
        assert filled == python
        reads.dispose()
    finally:
        business.close()


@pytest.mark.parametrize(
    ("store", "where"),
    [
        ("sqlite", "memory"),
        ("sqlite", "another file"),
        ("sqlite", "postgresql"),
        ("postgresql", "another file"),
        ("postgresql", "another server"),
    ],
)
def test_no_sql_fill_where_the_log_is_not_in_the_read_models_database(
    request: pytest.FixtureRequest, tmp_path: Path, store: str, where: str
) -> None:
    store_url = request.getfixturevalue(f"{store}_url")
    business = open_business(Settings(database_url=store_url), create_tables=True)
    try:
        url = {
            "memory": "memory://",
            "another file": f"sqlite:///{tmp_path / 'reads.db'}",
            "postgresql": request.getfixturevalue("postgresql_url"),
            # (the same server by another name: not known to be the same database)
            "another server": store_url.replace("127.0.0.1", "localhost"),
        }[where]
        reads = ReadStore(url, [Audit()])
        assert shared_log(business, reads.writer) is None
        reads.dispose()
    finally:
        business.close()


def test_on_postgresql_the_log_is_named_with_its_schema(postgresql_url: str) -> None:
    business = open_business(Settings(database_url=postgresql_url), create_tables=True)
    try:
        reads = ReadStore(postgresql_url, [Audit()])
        log = shared_log(business, reads.writer)
        schema = postgresql_url.rsplit("schema=", 1)[1]
        assert log is not None
        assert (log.table, log.dialect) == (f'"{schema}"."business_events"', "postgresql")
        reads.dispose()
    finally:
        business.close()


class Failing(Audit):
    def fill(self, conn: Any) -> list[int]:
        raise ValueError("cannot fill")


def test_a_read_model_that_fails_to_fill_stops_alone(database_url: str) -> None:
    business = open_business(Settings(database_url=database_url), create_tables=True)
    try:
        business.ensure_defaults()
        load_demo(business, today=date(2026, 11, 27))
        ledger = Ledger()
        reads = ReadStore(database_url, [Failing(), ledger])
        reads.create_tables()
        runner = Runner(business, reads, batch_size=100)
        runner.catch_up()
        assert list(runner.failed) == ["audit"]
        head = business.recorder.max_notification_id()
        assert reads.positions() == {"audit": 0, "ledger": head}
        reads.dispose()
    finally:
        business.close()
