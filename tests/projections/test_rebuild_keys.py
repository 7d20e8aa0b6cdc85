"""A rebuild keeps the keys it has written to the tables whose rows it looks up before writing
them (running totals, business keys), so that looking up a key it never wrote needs no query;
it keeps none for tables it only inserts into. Whatever it keeps or drops, the rows are those
live processing gave, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Engine, Integer, String, Uuid, event

from api.services import Services
from domain import context
from domain.context import CommandContext
from domain.crm.leads import Lead
from domain.settings import Settings
from projections.engine import Batch, Projection, WrittenKeys
from projections.runner import COMPLETE_KEYS_LIMIT, Runner
from projections.store import ReadStore
from replay.cli import main
from replay.demo import load_demo
from tests.conftest import read_model_rows as dump

Rows = dict[str, list[tuple[Any, ...]]]


@contextmanager
def selects(*engines: Engine) -> Iterator[Counter[str]]:
    """How many SELECTs read rows of each table (the first table a statement names, if it
    selects that table's columns: not the runner's look at whether a table is empty)."""
    seen: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        if words[:1] == ["SELECT"] and "FROM" in words:
            table = words[words.index("FROM") + 1].strip('"').rsplit(".", 1)[-1]
            if f"{table}." in statement:
                seen[table] += 1

    for engine in set(engines):
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in set(engines):
            event.remove(engine, "before_cursor_execute", count)


@pytest.fixture(scope="module")
def demo(shared_services: Services) -> Rows:
    """The demo business (CRM, quotes to cash, stock, ledger), its read models fed live."""
    load_demo(shared_services.business, today=date(2026, 11, 27))
    shared_services.runner.catch_up()
    return dump(shared_services)


def rebuild(services: Services, **kwargs: Any) -> Counter[str]:
    reads = services.reads
    for projection in reads.projections.values():
        reads.reset(projection)
    with selects(reads.reader, reads.writer) as seen:
        Runner(services.business, reads, batch_size=40, **kwargs).catch_up()
    return seen


@pytest.mark.parametrize("keys_limit", [COMPLETE_KEYS_LIMIT, 25, 0])
def test_a_rebuild_gives_the_rows_live_processing_gave_whatever_keys_it_keeps(
    shared_services: Services, demo: Rows, keys_limit: int
) -> None:
    rebuild(shared_services, keys_limit=keys_limit)

    assert dump(shared_services) == demo


def test_a_rebuild_looks_up_no_running_total_it_has_not_written(
    shared_services: Services, demo: Rows
) -> None:
    days = shared_services.reads["ledger"]["days"].name

    kept = rebuild(shared_services)
    dropped = rebuild(shared_services, keys_limit=0)

    assert kept[days] == 0
    assert dropped[days] > 0  # (each new day and account asked for)
    assert dump(shared_services) == demo


class Names(Projection):
    """Lead names, inserted without looking first; one lead's name makes it look up a key
    never written ("Ask")."""

    name = "names"
    handles = (Lead.Captured,)

    def define_tables(self) -> None:
        self.table(
            "names",
            Column("id", Uuid, primary_key=True),
            Column("name", String(200), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        if event.name == "Ask":
            assert batch.get(self["names"], event.originator_id) is None
        batch.insert(self["names"], id=event.originator_id, name=event.name)


def test_a_table_only_inserted_into_keeps_no_keys(services: Services) -> None:
    """Its keys would cost memory for every row and save nothing: a later lookup of a key it
    never wrote asks the database."""
    reads = ReadStore(services.settings.reads_url, [Names()])
    reads.create_tables()
    try:
        for name in ("Ali", "Veli", "Ask"):
            with context.acting(CommandContext(actor="ayse")):
                services.business.capture_lead(name=name)
        with selects(reads.reader, reads.writer) as seen:
            Runner(services.business, reads, batch_size=1).catch_up()
        table = reads["names"]["names"]
        assert seen[table.name] == 1
        with reads.reader.connect() as conn:
            names = sorted(r.name for r in conn.execute(table.select()))
        assert names == ["Ali", "Ask", "Veli"]
    finally:
        reads.dispose()


class Numbers(Projection):
    name = "numbers"

    def define_tables(self) -> None:
        self.table("numbers", Column("n", Integer, primary_key=True), Column("word", String(20)))


def test_a_key_whose_hash_equals_a_written_keys_is_looked_up(services: Services) -> None:
    """Keys are kept as hashes: in CPython hash(-1) == hash(-2), so after writing -2 a lookup
    of -1 must ask the database (and find nothing), while 7 is known absent without asking."""
    reads = ReadStore(services.settings.reads_url, [Numbers()])
    reads.create_tables()
    table = reads["numbers"]["numbers"]
    assert hash((-1,)) == hash((-2,))
    try:
        written = WrittenKeys()
        with reads.writer.begin() as conn:
            batch = Batch(conn)
            batch.insert(table, n=-2, word="minus two")
            batch.flush()
            written.add(batch.written[table] or [])
        with reads.writer.begin() as conn, selects(reads.writer) as seen:
            batch = Batch(conn, complete={table: written})
            assert batch.get(table, 7) is None
            assert seen[table.name] == 0
            assert batch.get(table, -1) is None
            assert seen[table.name] == 1
            row = batch.get(table, -2)
            assert row is not None
            assert row["word"] == "minus two"
        assert written.answered == 1
    finally:
        reads.dispose()


def test_the_invoices_a_payment_settles_are_fetched_with_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payment names the invoices it settles (`Invoices.refers`): the batch fetches them
    with the rows of its own aggregates instead of one query per invoice. (Rows of earlier
    batches are forgotten here, as a big rebuild forgets most of them.)"""
    url = f"sqlite:///{tmp_path / 'year.db'}"
    done = CliRunner().invoke(main, ["demo", "--events", "3000", "--db", url])
    assert done.exit_code == 0, done.output
    monkeypatch.setattr("projections.runner.KNOWN_ROWS_LIMIT", 0)
    services = Services.open(Settings(database_url=url))
    try:
        live = dump(services)
        invoices = services.reads["invoices"]
        table = invoices["invoices"].name
        referred = rebuild(services, keys_limit=0)
        assert dump(services) == live
        saved, invoices.referring = invoices.referring, {}
        try:
            one_by_one = rebuild(services, keys_limit=0)
        finally:
            invoices.referring = saved
        assert dump(services) == live
        # (one query a batch for its invoices, against one for each invoice paid: 54 and 102
        # in batches of 40 events when written)
        assert 0 < referred[table] < one_by_one[table] * 0.7
    finally:
        services.close()
