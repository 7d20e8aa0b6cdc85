"""Customer payments (tahsilat), how each was allocated, and each customer's unallocated
credit (money received and not yet set against an invoice)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    literal_column,
    select,
)

from domain.billing.payments import Payment
from domain.billing.receivables import ReceivableAccount
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.explain import Contribution, event_name
from projections.types import Amount

RECEIVED = event_name(Payment.Received)


class Payments(Projection):
    name = "payments"
    version = 2  # v2: the payments that left credit, indexed
    handles = (
        Payment.Received,
        ReceivableAccount.Opened,
        ReceivableAccount.PaymentAdded,
        ReceivableAccount.CreditApplied,
    )

    def define_tables(self) -> None:
        payments = self.table(
            "payments",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False, unique=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("amount", Amount(), nullable=False),
            Column("method", String(10), nullable=False, index=True),
            Column("payment_date", Date, nullable=False, index=True),
            Column("reference", String(100)),
            Column("allocated", Amount(), nullable=False),
            Column("unallocated", Amount(), nullable=False),
            Column("received_by", String(100), nullable=False),
            Column("position", Integer, nullable=False),
        )
        # The few payments that left credit unallocated, by date: what the aging's credit
        # column reads, instead of every payment of the years.
        left_credit = _left_credit(payments)
        Index(
            f"{payments.name}_credit",
            payments.c.payment_date,
            sqlite_where=left_credit,
            postgresql_where=left_credit,
        )
        self.table(
            "allocations",
            Column("payment_id", Uuid, primary_key=True),
            Column("invoice_id", Uuid, primary_key=True),
            Column("amount", Amount(), nullable=False),
        )
        # Keyed by the receivable account (whose events carry no customer id after opening).
        self.table(
            "credits",
            Column("account_id", Uuid, primary_key=True),
            Column("customer_id", Uuid, nullable=False, unique=True),
            Column("unallocated", Amount(), nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        credits = self["credits"]
        match event:
            case Payment.Received():
                allocated = sum((a["amount"] for a in event.allocations), ZERO)
                batch.insert(
                    self["payments"],
                    id=event.originator_id,
                    number=event.number,
                    customer_id=event.customer_id,
                    amount=event.amount,
                    method=event.method,
                    payment_date=event.payment_date,
                    reference=event.reference,
                    allocated=allocated,
                    unallocated=event.unallocated,
                    received_by=event.meta.get("actor", ""),
                    position=position,
                )
                for a in event.allocations:
                    batch.insert(
                        self["allocations"],
                        payment_id=event.originator_id,
                        invoice_id=a["invoice_id"],
                        amount=a["amount"],
                    )
            # Credit follows the receivable account's own stream (opened, then payments and
            # uses in order), never the payment, which is saved before a new account opens.
            case ReceivableAccount.Opened():
                batch.insert(
                    credits,
                    account_id=event.originator_id,
                    customer_id=event.customer_id,
                    unallocated=ZERO,
                    position=position,
                )
            case ReceivableAccount.PaymentAdded():
                self._add_credit(batch, event.originator_id, event.unallocated, position)
            case ReceivableAccount.CreditApplied():
                self._add_credit(batch, event.originator_id, -event.amount, position)

    def _add_credit(self, batch: Batch, account_id: UUID, amount: Decimal, position: int) -> None:
        credits = self["credits"]
        row = batch.get(credits, account_id)
        if row is None:
            raise LookupError(f"receivable account {account_id} was never opened")
        batch.update(
            credits, account_id, unallocated=row["unallocated"] + amount, position=position
        )

    # -- queries -------------------------------------------------------------------------------

    def received_by_customer(self, conn: Connection, as_of: date) -> dict[UUID, Decimal]:
        """Unallocated parts of the payments each customer made by the end of `as_of`."""
        p = self["payments"]
        out: dict[UUID, Decimal] = defaultdict(lambda: ZERO)
        query = select(p.c.customer_id, p.c.unallocated).where(
            p.c.payment_date <= as_of, _left_credit(p)
        )
        for customer_id, amount in conn.execute(query).all():
            out[customer_id] += amount
        return out

    def unallocated_received(self, conn: Connection, as_of: date) -> dict[UUID, list[Contribution]]:
        """`received_by_customer`, as the payments that brought the credit in."""
        p = self["payments"]
        out: dict[UUID, list[Contribution]] = defaultdict(list)
        query = select(p.c.customer_id, p.c.position, p.c.unallocated).where(
            p.c.payment_date <= as_of, _left_credit(p)
        )
        for customer_id, position, amount in conn.execute(query).all():
            out[customer_id].append(Contribution(position, RECEIVED, amount))
        return out


def _left_credit(payments: Table) -> Any:
    """A payment that left credit unallocated: the condition of its partial index, with the
    zero a literal, so that both databases see that a query with it may use the index."""
    return payments.c.unallocated != literal_column("0")
