"""A stock receipt: goods counted into a warehouse, from a supplier or as opening stock."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity


class StockReceipt(Entity):
    class Recorded(Entity.Created):
        number: str
        warehouse: str
        supplier_id: UUID | None
        receipt_date: date
        reference: str | None
        lines: list[dict[str, Any]]
        total: Decimal

        def apply(self, receipt: StockReceipt) -> None:
            receipt.number = self.number
            receipt.warehouse = self.warehouse
            receipt.supplier_id = self.supplier_id
            receipt.receipt_date = self.receipt_date
            receipt.lines = list(self.lines)
            receipt.total = self.total

    if TYPE_CHECKING:
        number: str
        warehouse: str
        supplier_id: UUID | None
        receipt_date: date
        lines: list[dict[str, Any]]
        total: Decimal

    @classmethod
    def record(
        cls,
        *,
        receipt_id: UUID,
        number: str,
        warehouse: str,
        supplier_id: UUID | None,
        receipt_date: date,
        reference: str | None,
        lines: list[dict[str, Any]],
        total: Decimal,
    ) -> StockReceipt:
        receipt: StockReceipt = cls._create(
            cls.Recorded,
            id=receipt_id,
            number=number,
            warehouse=warehouse,
            supplier_id=supplier_id,
            receipt_date=receipt_date,
            reference=reference,
            lines=lines,
            total=total,
        )
        return receipt
