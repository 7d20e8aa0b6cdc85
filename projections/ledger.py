"""The general ledger as a table: one row per journal line, the entries they belong to, and
the due dates of invoice documents (for the customer statement). Beside the lines, running
debit and credit totals per account and kind of source, per day and per month: the financial
reports sum those (see projections/financial.py), so that they cost the same however many
documents a day the business posts; drill-down and the general ledger read the lines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
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
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.explain import Contribution, event_name
from projections.types import Amount


class Ledger(Projection):
    name = "ledger"
    version = 4  # v4: lines counted in the totals; the account index ends with the line
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
        # In ledger order (date, position, line): a general ledger's page found by the index.
        Index(
            f"{lines.name}_account",
            lines.c.account,
            lines.c.entry_date,
            lines.c.position,
            lines.c.line,
        )
        Index(f"{lines.name}_party", lines.c.party_id, lines.c.entry_date, lines.c.position)
        # Totals of the lines: per day for the edges of a period, per month for the rest, so
        # that a report over a year reads about twelve rows per account and kind of source.
        days = self.table("days", *_totals_columns("day"))
        months = self.table("months", *_totals_columns("month"))
        lines.info[TOTALS] = (days, months)
        # Per party, account and month: what a statement's opening balance is carried from
        # (the lines of the months before its first, added up as they were posted).
        lines.info[PARTY_TOTALS] = self.table(
            "party_months",
            Column("party_id", Uuid, primary_key=True),
            Column("account", String(20), primary_key=True),
            Column("month", Date, primary_key=True),
            Column("debit", Amount(), nullable=False),
            Column("credit", Amount(), nullable=False),
        )
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
        self._add_up(event.entry_date, event.source_kind, event.lines, batch)
        self._add_up_parties(event.entry_date, event.lines, batch)

    def _add_up(
        self, day: date, source_kind: str, lines: list[dict[str, Any]], batch: Batch
    ) -> None:
        """Add an entry's debits, credits and lines to its day's and its month's totals."""
        moved: dict[str, tuple[Decimal, Decimal, int]] = {}
        for line in lines:
            debit, credit, count = moved.get(line["account"], (ZERO, ZERO, 0))
            moved[line["account"]] = (debit + line["debit"], credit + line["credit"], count + 1)
        month = day.replace(day=1)
        for table, period, when in ((self["days"], "day", day), (self["months"], "month", month)):
            for account, (debit, credit, count) in moved.items():
                key = {period: when, "account": account, "source_kind": source_kind}
                batch.add_up(table, key, debit=debit, credit=credit, lines=count)

    def _add_up_parties(self, day: date, lines: list[dict[str, Any]], batch: Batch) -> None:
        """Add an entry's debits and credits on a party to the party's month totals."""
        table, month = self["party_months"], day.replace(day=1)
        for line in lines:
            party = line.get("party_id")
            if party is not None:
                key = {"party_id": party, "account": line["account"], "month": month}
                batch.add_up(table, key, debit=line["debit"], credit=line["credit"])


TOTALS = "tekil.ledger_totals"
PARTY_TOTALS = "tekil.ledger_party_totals"


def _totals_columns(period: str) -> list[Column[Any]]:
    return [
        Column(period, Date, primary_key=True),
        Column("account", String(20), primary_key=True),
        Column("source_kind", String(30), primary_key=True),
        Column("debit", Amount(), nullable=False),
        Column("credit", Amount(), nullable=False),
        Column("lines", Integer, nullable=False),
    ]


def totals_tables(lines: Table) -> tuple[Table, Table]:
    """The per-day and per-month totals kept beside these lines (by the same build)."""
    days, months = lines.info[TOTALS]
    return days, months


def party_totals_table(lines: Table) -> Table:
    """The per-party, per-account, per-month totals kept beside these lines."""
    table: Table = lines.info[PARTY_TOTALS]
    return table


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
