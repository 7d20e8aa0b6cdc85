"""Sales invoices as finance sees them: totals, what is still open, what settled them, and
the receivables aging."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)

from domain.billing.invoices import Invoice
from domain.billing.payments import Payment
from domain.billing.receivables import ReceivableAccount
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.explain import Contribution, event_name
from projections.financial import from_cents
from projections.types import Amount, Percent, Quantity, UnitPrice, made_once, period_start_of

OPEN = "open"
PAID = "paid"

# Days past due: (name, first day, last day); None is open-ended.
AGING_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("not_due", None, 0),
    ("days_1_30", 1, 30),
    ("days_31_60", 31, 60),
    ("days_61_90", 61, 90),
    ("over_90", 91, None),
)


ISSUED = event_name(Invoice.Issued)
# What a settlement's position is the position of, by its kind.
SETTLED_BY = {
    "payment": event_name(Payment.Received),
    "credit": event_name(ReceivableAccount.CreditApplied),
}
CHUNK = 500


class Invoices(Projection):
    name = "invoices"
    # v4: open_total; v5: settlements indexed by date and by kind; v6: the list by status
    version = 6
    handles = (
        Invoice.Issued,
        Invoice.MarkedOverdue,
        Payment.Received,
        ReceivableAccount.CreditApplied,
    )
    refers = {
        Payment.Received: ("invoices", "invoice_id"),
        ReceivableAccount.CreditApplied: ("invoices", "invoice_id"),
    }

    def define_tables(self) -> None:
        invoices = self.table(
            "invoices",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False, unique=True),
            Column("series", String(3), nullable=False),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("order_id", Uuid, index=True),
            Column("invoice_date", Date, nullable=False, index=True),
            Column("due_date", Date, nullable=False, index=True),
            Column("currency", String(3), nullable=False),
            Column("untaxed", Amount(), nullable=False),
            Column("tax", Amount(), nullable=False),
            Column("total", Amount(), nullable=False),
            Column("settled", Amount(), nullable=False),
            Column("open_amount", Amount(), nullable=False),
            Column("status", String(10), nullable=False),
            Column("overdue", Boolean, nullable=False),
            Column("overdue_since", Date),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
            # The event that set `total` (`position` moves on with later events).
            Column("issued_position", Integer, nullable=False),
        )
        # Those of a status in the list's order (what is open, newest first, a page at a time).
        Index(
            f"{invoices.name}_status",
            invoices.c.status,
            invoices.c.invoice_date,
            invoices.c.number,
        )
        self.table(
            "invoice_lines",
            Column("invoice_id", Uuid, primary_key=True),
            Column("line", Integer, primary_key=True),
            Column("product_id", Uuid, nullable=False),
            Column("sku", String(40), nullable=False),
            Column("description", Text, nullable=False),
            Column("quantity", Quantity(), nullable=False),
            Column("unit_price", UnitPrice(), nullable=False),
            Column("discount_percent", Percent(), nullable=False),
            Column("vat_rate", Percent(), nullable=False),
            Column("net", Amount(), nullable=False),
            Column("vat", Amount(), nullable=False),
        )
        # What settled each invoice, and on which business date: a payment allocation (dated
        # by the payment) or unallocated credit used at invoicing (dated by the invoice).
        settlements = self.table(
            "settlements",
            Column("invoice_id", Uuid, primary_key=True),
            Column("position", Integer, primary_key=True),
            Column("customer_id", Uuid, nullable=False),
            Column("kind", String(10), nullable=False),
            Column("payment_id", Uuid),
            Column("document", String(20)),
            Column("settled_on", Date, nullable=False),
            Column("amount", Amount(), nullable=False),
        )
        Index(f"{settlements.name}_customer", settlements.c.customer_id, settlements.c.settled_on)
        # What was settled after a day (the aging as of that day adds it back), and the credit
        # used by a day: each read through its own index, not over every settlement.
        Index(f"{settlements.name}_settled_on", settlements.c.settled_on)
        Index(f"{settlements.name}_kind", settlements.c.kind, settlements.c.settled_on)
        # What the open invoices still owe, per due date: the cash flow's expected inflows,
        # one row a day however many invoices fall due on it (docs/decisions/0008).
        self.table(
            "open_by_due_date",
            Column("due_date", Date, primary_key=True),
            Column("open_amount", Amount(), nullable=False),
        )
        # What every open invoice still owes, in one row (id 1): the cash flow's overdue
        # inflows are this less what falls due from the window's first day on, read from the
        # days ahead (a few months of terms) instead of from every past day with an invoice
        # never paid, which a history gathers year by year.
        self.table(
            "open_total",
            Column("id", Integer, primary_key=True),
            Column("open_amount", Amount(), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        invoices = self["invoices"]
        match event:
            case Invoice.Issued():
                self._issued(event, position, batch)
            case Invoice.MarkedOverdue():
                batch.update(
                    invoices,
                    event.originator_id,
                    overdue=True,
                    overdue_since=event.as_of,
                    version=event.originator_version,
                    position=position,
                )
            case Payment.Received():
                for a in event.allocations:
                    self._settle(
                        batch,
                        a["invoice_id"],
                        a["amount"],
                        position,
                        kind="payment",
                        payment_id=event.originator_id,
                        document=event.number,
                        settled_on=event.payment_date,
                    )
            case ReceivableAccount.CreditApplied():
                invoice = self._invoice(batch, event.invoice_id)
                self._settle(
                    batch,
                    event.invoice_id,
                    event.amount,
                    position,
                    kind="credit",
                    payment_id=None,
                    document=None,
                    settled_on=invoice["invoice_date"],
                )

    def _issued(self, event: Invoice.Issued, position: int, batch: Batch) -> None:
        totals = event.totals
        total = Decimal(totals["total"])
        batch.insert(
            self["invoices"],
            id=event.originator_id,
            number=event.number,
            series=event.series,
            customer_id=event.customer_id,
            order_id=event.order_id,
            invoice_date=event.invoice_date,
            due_date=event.due_date,
            currency=event.currency,
            untaxed=Decimal(totals["untaxed"]),
            tax=Decimal(totals["tax"]),
            total=total,
            settled=ZERO,
            open_amount=total,
            status=OPEN if total > 0 else PAID,
            overdue=False,
            overdue_since=None,
            version=event.originator_version,
            position=position,
            issued_position=position,
        )
        self._still_owed(batch, event.due_date, max(total, ZERO))
        for line in event.lines:
            batch.insert(
                self["invoice_lines"],
                invoice_id=event.originator_id,
                line=int(line["line"]),
                product_id=line["product_id"],
                sku=line["sku"],
                description=line["description"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                discount_percent=line["discount_percent"],
                vat_rate=line["vat_rate"],
                net=line["net"],
                vat=line["vat"],
            )

    def _invoice(self, batch: Batch, invoice_id: UUID) -> dict[str, Any]:
        invoice = batch.get(self["invoices"], invoice_id)
        if invoice is None:
            # The domain saves an invoice before anything can settle it; a settlement of an
            # unknown invoice means the log is not what this read model was written for.
            raise LookupError(f"settlement of invoice {invoice_id}, which was never issued")
        return invoice

    def _settle(
        self,
        batch: Batch,
        invoice_id: UUID,
        amount: Decimal,
        position: int,
        **settlement: Any,
    ) -> None:
        invoice = self._invoice(batch, invoice_id)
        settled = invoice["settled"] + amount
        open_amount = invoice["total"] - settled
        owed_before = max(invoice["open_amount"], ZERO)
        self._still_owed(batch, invoice["due_date"], max(open_amount, ZERO) - owed_before)
        batch.update(
            self["invoices"],
            invoice_id,
            settled=settled,
            open_amount=open_amount,
            status=OPEN if open_amount > 0 else PAID,
        )
        batch.insert(
            self["settlements"],
            invoice_id=invoice_id,
            position=position,
            customer_id=invoice["customer_id"],
            amount=amount,
            **settlement,
        )

    def _still_owed(self, batch: Batch, due_date: date, change: Decimal) -> None:
        """Add `change` to what the open invoices owe on `due_date` (an invoice is open while
        it owes more than nothing)."""
        _add_owed(batch, self["open_by_due_date"], "due_date", due_date, change)
        _add_owed(batch, self["open_total"], "id", 1, change)

    # -- queries -------------------------------------------------------------------------------

    def owed_by_due_date(
        self, conn: Connection, since: date, until: date, interval: str = "day"
    ) -> tuple[Decimal, list[tuple[date, Decimal]]]:
        """What the invoices open now still owe: due before `since` in one sum, and from
        `since` to `until` per period of their due date (a row a day, week or month, by its
        first day) — both added up by the database, however many days they span. What is due
        before `since` is what all of them owe less what falls due from `since` on: the rows
        read are those of the days ahead, however long the history."""
        table = self["open_by_due_date"]
        query = made_once(
            table, "owed", interval, lambda: _owed_query(table, self["open_total"], interval)
        )
        in_all = ahead = ZERO
        owed = []
        for part, due, amount in conn.execute(query, {"since": since, "until": until}).all():
            if part == _IN_ALL:
                in_all = amount
                continue
            ahead += amount
            if part == _WITHIN:
                owed.append((due, amount))
        return in_all - ahead, owed

    def open_as_of(
        self,
        conn: Connection,
        as_of: date | None = None,
        *,
        customers: list[UUID] | None = None,
    ) -> list[dict[str, Any]]:
        """Invoices open at the end of `as_of` (by business dates: issued by then, less what
        was settled by then), or open now when `as_of` is None; by due date and number; of
        `customers` only, where given.

        As of a day, that is the invoices issued by then that are open now or were settled
        after it, with what was settled after it added back: what it reads is what is open
        and what happened since, not every invoice and settlement of the years."""
        inv = self["invoices"]
        query = select(
            inv.c.id,
            inv.c.number,
            inv.c.customer_id,
            inv.c.invoice_date,
            inv.c.due_date,
            inv.c.total,
            inv.c.open_amount,
        )
        if customers is not None:
            query = query.where(inv.c.customer_id.in_(customers))
        if as_of is None:
            query = query.where(inv.c.status == OPEN).order_by(inv.c.due_date, inv.c.number)
            return [dict(r) for r in conn.execute(query).mappings()]
        query = query.where(inv.c.invoice_date <= as_of)
        st = self["settlements"]
        since = select(st.c.invoice_id, st.c.amount).where(st.c.settled_on > as_of)
        if customers is not None:
            since = since.where(st.c.customer_id.in_(customers))
        settled_since: dict[UUID, Decimal] = defaultdict(lambda: ZERO)
        for invoice_id, amount in conn.execute(since).all():
            settled_since[invoice_id] += amount
        rows = {r["id"]: r for r in conn.execute(query.where(inv.c.status == OPEN)).mappings()}
        others = [i for i in settled_since if i not in rows]
        for i in range(0, len(others), CHUNK):
            chunk = query.where(inv.c.id.in_(others[i : i + CHUNK]))
            rows.update((r["id"], r) for r in conn.execute(chunk).mappings())
        out = []
        for invoice_id, row in rows.items():
            left = row["open_amount"] + settled_since.get(invoice_id, ZERO)
            if left > 0:
                out.append({**row, "open_amount": left})
        out.sort(key=lambda r: (r["due_date"], r["number"]))
        return out

    def owed_by_customer(self, conn: Connection, as_of: date) -> dict[UUID, dict[str, Decimal]]:
        """What each customer owed at the end of `as_of`, by aging bucket (AGING_BUCKETS, by
        days past due then): the open amounts of `open_as_of`, added up by the database —
        what is open now and what was settled since, added back — with no invoice's row
        brought into Python."""
        query = made_once(self.metadata, "owed_by_customer", None, self._owed_statement)
        params: dict[str, Any] = {"day": as_of}
        for i, (_, first, last) in enumerate(AGING_BUCKETS):
            # days past due within [first, last]: due within [day - last, day - first]
            if last is not None:
                params[f"due_from_{i}"] = as_of - timedelta(days=last)
            if first is not None:
                params[f"due_to_{i}"] = as_of - timedelta(days=first)
        out = {}
        none = from_cents(0)
        for customer_id, *owed in conn.execute(query, params).all():
            out[customer_id] = {
                name: from_cents(units) if units else none
                for (name, _, _), units in zip(AGING_BUCKETS, owed, strict=True)
            }
        return out

    def _owed_statement(self) -> Any:
        """`owed_by_customer`'s sums (in cents) per customer and bucket, the day and each
        bucket's first and last due date as parameters."""
        inv, st = self["invoices"], self["settlements"]
        day = bindparam("day", type_=Date)
        owed, back = (type_coerce(c, BigInteger) for c in (inv.c.open_amount, st.c.amount))
        # What is open now, with what was settled of it since added back (its settlements
        # found by the invoice's key) ...
        still_open = (
            select(
                inv.c.customer_id,
                inv.c.due_date,
                (owed + func.coalesce(func.sum(back), 0)).label("left"),
            )
            .select_from(
                inv.outerjoin(st, and_(st.c.invoice_id == inv.c.id, st.c.settled_on > day))
            )
            .where(inv.c.status == OPEN, inv.c.invoice_date <= day)
            .group_by(inv.c.id)
        )
        # ... and what was settled since of invoices closed now (found through the index of
        # settlement days): each invoice once.
        closed_since = (
            select(inv.c.customer_id, inv.c.due_date, (owed + func.sum(back)).label("left"))
            .select_from(st.join(inv, inv.c.id == st.c.invoice_id))
            .where(st.c.settled_on > day, inv.c.status != OPEN, inv.c.invoice_date <= day)
            .group_by(inv.c.id)
        )
        left = union_all(still_open, closed_since).subquery()
        sums = []
        for i, (_, first, last) in enumerate(AGING_BUCKETS):
            within = []
            if last is not None:
                within.append(left.c.due_date >= bindparam(f"due_from_{i}", type_=Date))
            if first is not None:
                within.append(left.c.due_date <= bindparam(f"due_to_{i}", type_=Date))
            sums.append(func.sum(case((and_(*within), left.c.left), else_=0)))
        return select(left.c.customer_id, *sums).where(left.c.left > 0).group_by(left.c.customer_id)

    def credit_used(self, conn: Connection, as_of: date) -> dict[UUID, Decimal]:
        """Unallocated credit each customer had used on invoices by the end of `as_of`."""
        st = self["settlements"]
        used: dict[UUID, Decimal] = defaultdict(lambda: ZERO)
        query = select(st.c.customer_id, st.c.amount).where(
            st.c.kind == "credit", st.c.settled_on <= as_of
        )
        for customer_id, amount in conn.execute(query).all():
            used[customer_id] += amount
        return used

    # -- drill-down ----------------------------------------------------------------------------

    def makeup(
        self, conn: Connection, invoice_ids: Iterable[UUID], as_of: date | None = None
    ) -> dict[UUID, list[Contribution]]:
        """What each invoice's open amount is made of: its total when issued, less each
        settlement (made by the end of `as_of`, when given)."""
        inv, st = self["invoices"], self["settlements"]
        ids = list(invoice_ids)
        out: dict[UUID, list[Contribution]] = {}
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            issued = select(inv.c.id, inv.c.issued_position, inv.c.total).where(inv.c.id.in_(chunk))
            for invoice_id, position, total in conn.execute(issued).all():
                out[invoice_id] = [Contribution(position, ISSUED, total)]
            settled = select(st.c.invoice_id, st.c.position, st.c.kind, st.c.amount).where(
                st.c.invoice_id.in_(chunk)
            )
            if as_of is not None:
                settled = settled.where(st.c.settled_on <= as_of)
            for invoice_id, position, kind, amount in conn.execute(settled).all():
                out[invoice_id].append(Contribution(position, SETTLED_BY[kind], -amount))
        return out

    def credit_uses(self, conn: Connection, as_of: date) -> dict[UUID, list[Contribution]]:
        """`credit_used`, as the events that used the credit."""
        st = self["settlements"]
        out: dict[UUID, list[Contribution]] = defaultdict(list)
        query = select(st.c.customer_id, st.c.position, st.c.amount).where(
            st.c.kind == "credit", st.c.settled_on <= as_of
        )
        for customer_id, position, amount in conn.execute(query).all():
            out[customer_id].append(Contribution(position, SETTLED_BY["credit"], amount))
        return out


def aging_bucket(days_past_due: int) -> str:
    for name, first, last in AGING_BUCKETS:
        if (first is None or days_past_due >= first) and (last is None or days_past_due <= last):
            return name
    raise AssertionError("the buckets cover every day")  # pragma: no cover


def _add_owed(batch: Batch, table: Table, key_column: str, key: Any, change: Decimal) -> None:
    row = batch.get(table, key)
    if row is None:
        batch.insert(table, open_amount=change, **{key_column: key})
    elif change:
        batch.update(table, key, open_amount=row["open_amount"] + change)


# The parts of `_owed_query`'s answer.
_IN_ALL, _WITHIN, _LATER = 0, 1, 2


def _owed_query(table: Table, total: Table, interval: str) -> Any:
    """`owed_by_due_date`'s sums (parameters `since`, `until`): per period of `interval` from
    `since` to `until` (part `_WITHIN`, by the period's first day), after `until` in one sum
    (`_LATER`), and what all open invoices owe (`_IN_ALL`, from `total`)."""
    later = table.c.due_date > bindparam("until", type_=Date())
    part = case((later, _LATER), else_=_WITHIN)
    day = case((later, None), else_=period_start_of(table.c.due_date, interval))
    ahead = (
        select(part, day, func.sum(table.c.open_amount))
        .where(table.c.due_date >= bindparam("since", type_=Date()), table.c.open_amount != 0)
        .group_by(part, day)
    )
    return union_all(ahead, select(literal(_IN_ALL), null(), total.c.open_amount))
