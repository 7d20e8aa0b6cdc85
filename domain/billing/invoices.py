"""A sales invoice (fatura): numbered gaplessly per series and year, due after the customer's
payment terms, overdue once that date has passed unpaid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity


class Invoice(Entity):
    class Issued(Entity.Created):
        number: str
        series: str
        invoice_date: date
        due_date: date
        customer_id: UUID
        order_id: UUID | None
        currency: str
        lines: list[dict[str, Any]]
        totals: dict[str, Any]

        def apply(self, invoice: Invoice) -> None:
            invoice.number = self.number
            invoice.invoice_date = self.invoice_date
            invoice.due_date = self.due_date
            invoice.customer_id = self.customer_id
            invoice.order_id = self.order_id
            invoice.total = Decimal(self.totals["total"])
            invoice.overdue = False

    class MarkedOverdue(Entity.Event):
        as_of: date

        def apply(self, invoice: Invoice) -> None:
            invoice.overdue = True

    if TYPE_CHECKING:
        number: str
        invoice_date: date
        due_date: date
        customer_id: UUID
        order_id: UUID | None
        total: Decimal
        overdue: bool

    @classmethod
    def issue(
        cls,
        *,
        invoice_id: UUID,
        number: str,
        series: str,
        invoice_date: date,
        due_date: date,
        customer_id: UUID,
        order_id: UUID | None,
        currency: str,
        lines: list[dict[str, Any]],
        totals: dict[str, Any],
    ) -> Invoice:
        invoice: Invoice = cls._create(
            cls.Issued,
            id=invoice_id,
            number=number,
            series=series,
            invoice_date=invoice_date,
            due_date=due_date,
            customer_id=customer_id,
            order_id=order_id,
            currency=currency,
            lines=lines,
            totals=totals,
        )
        return invoice

    def mark_overdue(self, today: date, still_open: bool) -> bool:
        """Record that the invoice is overdue; False (nothing recorded) if it is paid, not yet
        due, or already marked."""
        if self.overdue or not still_open or today <= self.due_date:
            return False
        self.trigger_event(self.MarkedOverdue, as_of=today)
        return True
