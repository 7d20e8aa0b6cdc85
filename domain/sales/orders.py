"""A sales order: confirmed, it reserves stock; it is shipped and invoiced line by line, in
parts if need be; cancelled, it releases what is not shipped."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity
from domain.errors import RuleViolation
from domain.sales.pricing import PricedLine
from domain.values import ZERO


class OrderStatus(StrEnum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class SalesOrder(Entity):
    class Placed(Entity.Created):
        number: str
        customer_id: UUID
        quote_id: UUID | None
        warehouse: str
        currency: str
        payment_terms_days: int
        lines: list[dict[str, Any]]
        totals: dict[str, Any]

        def apply(self, order: SalesOrder) -> None:
            order.number = self.number
            order.customer_id = self.customer_id
            order.quote_id = self.quote_id
            order.warehouse = self.warehouse
            order.currency = self.currency
            order.payment_terms_days = self.payment_terms_days
            order.lines = {int(d["line"]): PricedLine.from_dict(d) for d in self.lines}
            order.shipped = dict.fromkeys(order.lines, ZERO)
            order.invoiced = dict.fromkeys(order.lines, ZERO)
            order.status = OrderStatus.DRAFT

    class Confirmed(Entity.Event):
        reservations: list[dict[str, Any]]

        def apply(self, order: SalesOrder) -> None:
            order.status = OrderStatus.CONFIRMED

    class Cancelled(Entity.Event):
        reason: str | None

        def apply(self, order: SalesOrder) -> None:
            order.status = OrderStatus.CANCELLED

    class ShipmentRecorded(Entity.Event):
        shipment_id: UUID
        lines: list[dict[str, Any]]

        def apply(self, order: SalesOrder) -> None:
            for d in self.lines:
                order.shipped[int(d["line"])] += d["quantity"]

    class InvoiceRecorded(Entity.Event):
        invoice_id: UUID
        lines: list[dict[str, Any]]

        def apply(self, order: SalesOrder) -> None:
            for d in self.lines:
                order.invoiced[int(d["line"])] += d["quantity"]

    if TYPE_CHECKING:
        number: str
        customer_id: UUID
        quote_id: UUID | None
        warehouse: str
        currency: str
        payment_terms_days: int
        lines: dict[int, PricedLine]
        shipped: dict[int, Decimal]
        invoiced: dict[int, Decimal]
        status: OrderStatus

    @classmethod
    def place(
        cls,
        *,
        order_id: UUID,
        number: str,
        customer_id: UUID,
        quote_id: UUID | None,
        warehouse: str,
        currency: str,
        payment_terms_days: int,
        lines: list[PricedLine],
        totals: dict[str, Any],
    ) -> SalesOrder:
        order: SalesOrder = cls._create(
            cls.Placed,
            id=order_id,
            number=number,
            customer_id=customer_id,
            quote_id=quote_id,
            warehouse=warehouse,
            currency=currency,
            payment_terms_days=payment_terms_days,
            lines=[line.as_dict() for line in lines],
            totals=totals,
        )
        return order

    def confirm(self, reservations: dict[int, Decimal]) -> None:
        self._ensure(OrderStatus.DRAFT, action="confirm")
        self.trigger_event(
            self.Confirmed,
            reservations=[{"line": n, "quantity": q} for n, q in sorted(reservations.items())],
        )

    def cancel(self, reason: str | None) -> None:
        self._ensure(OrderStatus.DRAFT, OrderStatus.CONFIRMED, action="cancel")
        if all(self.open_to_ship(n) == 0 for n in self.lines):
            raise RuleViolation(f"order {self.number} is fully shipped; nothing to cancel")
        self.trigger_event(self.Cancelled, reason=reason)

    def open_to_ship(self, line: int) -> Decimal:
        return self.lines[line].quantity - self.shipped[line]

    def open_to_invoice(self, line: int) -> Decimal:
        return self.shipped[line] - self.invoiced[line]

    def record_shipment(self, shipment_id: UUID, quantities: dict[int, Decimal]) -> None:
        self._ensure(OrderStatus.CONFIRMED, action="ship")
        for line, quantity in quantities.items():
            if line not in self.lines:
                raise RuleViolation(f"order {self.number} has no line {line}")
            if quantity > self.open_to_ship(line):
                raise RuleViolation(
                    f"line {line} of order {self.number} has only {self.open_to_ship(line)} "
                    f"left to ship, not {quantity}"
                )
        self.trigger_event(
            self.ShipmentRecorded,
            shipment_id=shipment_id,
            lines=[{"line": n, "quantity": q} for n, q in sorted(quantities.items())],
        )

    def record_invoice(self, invoice_id: UUID, quantities: dict[int, Decimal]) -> None:
        self.trigger_event(
            self.InvoiceRecorded,
            invoice_id=invoice_id,
            lines=[{"line": n, "quantity": q} for n, q in sorted(quantities.items())],
        )

    def _ensure(self, *allowed: OrderStatus, action: str) -> None:
        if self.status not in allowed:
            raise RuleViolation(f"cannot {action} order {self.number}: it is {self.status}")
