"""A product (or service) that can be quoted, sold, stocked and received."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity, natural_id
from domain.errors import InvalidInput

VAT_RATES = (Decimal(20), Decimal(10), Decimal(1), Decimal(0))  # in force since July 2023


class ProductKind(StrEnum):
    STOCKED = "stocked"
    SERVICE = "service"


def normalise_sku(sku: str) -> str:
    return sku.strip().upper()


def product_id_for(sku: str) -> UUID:
    """A product's id comes from its SKU: two products with one SKU cannot both be saved."""
    return natural_id("sku", normalise_sku(sku))


def vat_rate(field: str, value: Decimal) -> Decimal:
    rate = Decimal(value)
    if rate not in VAT_RATES:
        raise InvalidInput(field, "must be one of the VAT rates 20, 10, 1 or 0 (%)")
    return Decimal(int(rate))


class Product(Entity):
    class Defined(Entity.Created):
        sku: str
        name: str
        unit: str
        kind: str
        list_price: Decimal
        vat_rate: Decimal
        standard_cost: Decimal
        lead_time_days: int

        def apply(self, product: Product) -> None:
            product.sku = self.sku
            product.name = self.name
            product.unit = self.unit
            product.kind = ProductKind(self.kind)
            product.list_price = self.list_price
            product.vat_rate = self.vat_rate
            product.standard_cost = self.standard_cost
            product.lead_time_days = self.lead_time_days

    if TYPE_CHECKING:
        sku: str
        name: str
        unit: str
        kind: ProductKind
        list_price: Decimal
        vat_rate: Decimal
        standard_cost: Decimal
        lead_time_days: int

    @classmethod
    def define(
        cls,
        *,
        sku: str,
        name: str,
        unit: str,
        kind: ProductKind,
        list_price: Decimal,
        vat_rate: Decimal,
        standard_cost: Decimal,
        lead_time_days: int,
    ) -> Product:
        product: Product = cls._create(
            cls.Defined,
            id=product_id_for(sku),
            sku=normalise_sku(sku),
            name=name,
            unit=unit,
            kind=kind.value,
            list_price=list_price,
            vat_rate=vat_rate,
            standard_cost=standard_cost,
            lead_time_days=lead_time_days,
        )
        return product

    @property
    def is_stocked(self) -> bool:
        return self.kind == ProductKind.STOCKED
