"""The product catalogue and the warehouses, as lists and pick-lists show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, String, Uuid

from domain.inventory.products import Product
from domain.inventory.warehouses import Warehouse
from projections.engine import Batch, Projection
from projections.types import Percent, UnitPrice, UtcDateTime


class Products(Projection):
    name = "products"
    version = 1
    handles = (Product.Defined, Warehouse.Opened)

    def define_tables(self) -> None:
        self.table(
            "products",
            Column("id", Uuid, primary_key=True),
            Column("sku", String(40), nullable=False, unique=True),
            Column("name", String(200), nullable=False, index=True),
            Column("unit", String(20), nullable=False),
            Column("type", String(10), nullable=False, index=True),
            Column("list_price", UnitPrice(), nullable=False),
            Column("vat_rate", Percent(), nullable=False),
            Column("standard_cost", UnitPrice(), nullable=False),
            Column("lead_time_days", Integer, nullable=False),
            Column("defined_at", UtcDateTime, nullable=False),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )
        self.table(
            "warehouses",
            Column("code", String(20), primary_key=True),
            Column("id", Uuid, nullable=False, unique=True),
            Column("name", String(200), nullable=False),
            Column("opened_at", UtcDateTime, nullable=False),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        stamp = {"version": event.originator_version, "position": position}
        match event:
            case Product.Defined():
                batch.insert(
                    self["products"],
                    id=event.originator_id,
                    sku=event.sku,
                    name=event.name,
                    unit=event.unit,
                    type=event.kind,
                    list_price=event.list_price,
                    vat_rate=event.vat_rate,
                    standard_cost=event.standard_cost,
                    lead_time_days=event.lead_time_days,
                    defined_at=event.timestamp,
                    **stamp,
                )
            case Warehouse.Opened():
                batch.insert(
                    self["warehouses"],
                    code=event.code,
                    id=event.originator_id,
                    name=event.name,
                    opened_at=event.timestamp,
                    **stamp,
                )
