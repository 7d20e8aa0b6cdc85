"""The general ledger as a table: one row per journal line, the entries they belong to, and
the due dates of invoice documents (for the customer statement). Every financial report is a
query over these rows (see projections/financial.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    select,
)

from domain.billing.invoices import Invoice
from domain.ledger.entries import JournalEntry
from projections.engine import Batch, Projection
from projections.explain import Contribution, event_name
from projections.types import Amount


class Ledger(Projection):
    name = "ledger"
    version = 1
    handles = (JournalEntry.Posted, Invoice.Issued)

    def define_tables(self) -> None:
        self.table(
            "entries",
            Column("entry_id", Uuid, primary_key=True),
            Column("position", Integer, nullable=False, index=True),
            Column("entry_date", Date, nullable=False, index=True),
            Column("description", Text, nullable=False),
            Column("source_kind", String(30), nullable=False, index=True),
            Column("source_id", Uuid),
            Column("source_version", Integer),
            Column("document", String(40), index=True),
            Column("posted_by", String(100), nullable=False),
        )
        lines = self.table(
            "lines",
            Column("entry_id", Uuid, primary_key=True),
            Column("line", Integer, primary_key=True),
            Column("position", Integer, nullable=False),
            Column("entry_date", Date, nullable=False),
            Column("account", String(20), nullable=False),
            Column("debit", Amount(), nullable=False),
            Column("credit", Amount(), nullable=False),
            Column("party_id", Uuid),
            Column("source_kind", String(30), nullable=False),
            Column("source_id", Uuid),
            Column("document", String(40)),
            Column("description", Text, nullable=False),
            Column("memo", Text),
        )
        Index(f"{lines.name}_account", lines.c.account, lines.c.entry_date, lines.c.position)
        Index(f"{lines.name}_party", lines.c.party_id, lines.c.entry_date, lines.c.position)
        # Due dates are facts of the invoice, not of its journal entry: kept apart and joined
        # at query time, so nothing depends on which of the two events came first.
        self.table(
            "due_dates",
            Column("document_id", Uuid, primary_key=True),
            Column("due_date", Date, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        match event:
            case JournalEntry.Posted():
                self._posted(event, position, batch)
            case Invoice.Issued():
                batch.insert(
                    self["due_dates"], document_id=event.originator_id, due_date=event.due_date
                )

    def _posted(self, event: JournalEntry.Posted, position: int, batch: Batch) -> None:
        entry_id = event.originator_id
        batch.insert(
            self["entries"],
            entry_id=entry_id,
            position=position,
            entry_date=event.entry_date,
            description=event.description,
            source_kind=event.source_kind,
            source_id=event.source_id,
            source_version=event.source_version,
            document=event.document,
            posted_by=event.meta.get("actor", ""),
        )
        for n, line in enumerate(event.lines, start=1):
            batch.append(
                self["lines"],
                entry_id=entry_id,
                line=n,
                position=position,
                entry_date=event.entry_date,
                account=line["account"],
                debit=line["debit"],
                credit=line["credit"],
                party_id=line.get("party_id"),
                source_kind=event.source_kind,
                source_id=event.source_id,
                document=event.document,
                description=event.description,
                memo=line.get("memo"),
            )


# -- the lines behind a figure (drill-down) ---------------------------------------------------

POSTED = event_name(JournalEntry.Posted)


def journal(conn: Connection, lines: Table, *where: Any) -> list[Any]:
    """Journal lines in ledger order (date, position, line), as figures are explained."""
    query = (
        select(lines.c.position, lines.c.entry_date, lines.c.account, lines.c.debit, lines.c.credit)
        .where(*where)
        .order_by(lines.c.entry_date, lines.c.position, lines.c.line)
    )
    return list(conn.execute(query).all())


def debits(rows: Iterable[Any]) -> list[Contribution]:
    return [Contribution(r.position, POSTED, r.debit) for r in rows if r.debit]


def credits(rows: Iterable[Any]) -> list[Contribution]:
    return [Contribution(r.position, POSTED, r.credit) for r in rows if r.credit]


def signed(rows: Iterable[Any], sign: int = 1) -> list[Contribution]:
    """Each line's debit minus credit (sign 1), or credit minus debit (sign -1)."""
    if sign > 0:
        return [Contribution(r.position, POSTED, r.debit - r.credit) for r in rows]
    return [Contribution(r.position, POSTED, r.credit - r.debit) for r in rows]


def by_account(rows: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        out[r.account].append(r)
    return out


def dated(lines: Table, date_from: date | None, date_to: date | None) -> list[Any]:
    where = []
    if date_from is not None:
        where.append(lines.c.entry_date >= date_from)
    if date_to is not None:
        where.append(lines.c.entry_date <= date_to)
    return where
