"""Line amounts and document totals: net per line rounded half-up to cents, VAT computed per
line and summed per rate (never computed on the document total)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.errors import InvalidInput
from domain.values import ZERO, percent, positive, round_money, to_decimal

HUNDRED = Decimal(100)


def quantity(field: str, value: object) -> Decimal:
    amount = positive(field, value)
    if amount != amount.quantize(Decimal("0.0001")):
        raise InvalidInput(field, "must have at most four decimal places")
    return amount.normalize() if amount == amount.to_integral_value() else amount


def unit_price(field: str, value: object) -> Decimal:
    amount = to_decimal(field, value)
    if amount < 0:
        raise InvalidInput(field, "must not be negative")
    if amount != amount.quantize(Decimal("0.0001")):
        raise InvalidInput(field, "must have at most four decimal places")
    return amount


@dataclass(frozen=True)
class PricedLine:
    line: int
    product_id: UUID
    sku: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    vat_rate: Decimal
    net: Decimal
    vat: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "product_id": self.product_id,
            "sku": self.sku,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "discount_percent": self.discount_percent,
            "vat_rate": self.vat_rate,
            "net": self.net,
            "vat": self.vat,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PricedLine:
        return cls(**data)

    def for_quantity(self, quantity: Decimal) -> PricedLine:
        """The same line for part of its quantity (a partial invoice), priced afresh."""
        return price_line(
            line=self.line,
            product_id=self.product_id,
            sku=self.sku,
            description=self.description,
            quantity=quantity,
            unit_price=self.unit_price,
            discount_percent=self.discount_percent,
            vat_rate=self.vat_rate,
        )


def price_line(
    *,
    line: int,
    product_id: UUID,
    sku: str,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    discount_percent: Decimal,
    vat_rate: Decimal,
) -> PricedLine:
    net = round_money(quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED)
    vat = round_money(net * vat_rate / HUNDRED)
    return PricedLine(
        line,
        product_id,
        sku,
        description,
        quantity,
        unit_price,
        discount_percent,
        vat_rate,
        net,
        vat,
    )


def discount(field: str, value: object) -> Decimal:
    return percent(field, value)


def totals(lines: list[PricedLine]) -> dict[str, Any]:
    untaxed = sum((line.net for line in lines), ZERO)
    by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        by_rate[line.vat_rate] += line.vat
    tax = sum(by_rate.values(), ZERO)
    return {
        "untaxed": untaxed,
        "tax_by_rate": {
            str(rate): amount for rate, amount in sorted(by_rate.items(), reverse=True)
        },
        "tax": tax,
        "total": untaxed + tax,
    }
