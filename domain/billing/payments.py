"""A customer payment (tahsilat): money received by bank or in cash, allocated to invoices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity


class PaymentMethod(StrEnum):
    BANK = "bank"
    CASH = "cash"


class Payment(Entity):
    class Received(Entity.Created):
        number: str
        customer_id: UUID
        amount: Decimal
        method: str
        payment_date: date
        reference: str | None
        allocations: list[dict[str, Any]]
        unallocated: Decimal

        def apply(self, payment: Payment) -> None:
            payment.number = self.number
            payment.customer_id = self.customer_id
            payment.amount = self.amount

    if TYPE_CHECKING:
        number: str
        customer_id: UUID
        amount: Decimal

    @classmethod
    def receive(
        cls,
        *,
        payment_id: UUID,
        number: str,
        customer_id: UUID,
        amount: Decimal,
        method: PaymentMethod,
        payment_date: date,
        reference: str | None,
        allocations: list[tuple[UUID, Decimal]],
        unallocated: Decimal,
    ) -> Payment:
        payment: Payment = cls._create(
            cls.Received,
            id=payment_id,
            number=number,
            customer_id=customer_id,
            amount=amount,
            method=method.value,
            payment_date=payment_date,
            reference=reference,
            allocations=[{"invoice_id": i, "amount": a} for i, a in allocations],
            unallocated=unallocated,
        )
        return payment
