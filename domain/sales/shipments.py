"""A shipment (irsaliye): goods leaving a warehouse for a customer, at the FIFO cost decided
when they left."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity


class Shipment(Entity):
    class Dispatched(Entity.Created):
        number: str
        order_id: UUID
        customer_id: UUID
        warehouse: str
        shipment_date: date
        lines: list[dict[str, Any]]
        cost: Decimal

        def apply(self, shipment: Shipment) -> None:
            shipment.number = self.number
            shipment.order_id = self.order_id
            shipment.lines = list(self.lines)
            shipment.cost = self.cost

    if TYPE_CHECKING:
        number: str
        order_id: UUID
        lines: list[dict[str, Any]]
        cost: Decimal

    @classmethod
    def dispatch(
        cls,
        *,
        shipment_id: UUID,
        number: str,
        order_id: UUID,
        customer_id: UUID,
        warehouse: str,
        shipment_date: date,
        lines: list[dict[str, Any]],
        cost: Decimal,
    ) -> Shipment:
        shipment: Shipment = cls._create(
            cls.Dispatched,
            id=shipment_id,
            number=number,
            order_id=order_id,
            customer_id=customer_id,
            warehouse=warehouse,
            shipment_date=shipment_date,
            lines=lines,
            cost=cost,
        )
        return shipment
