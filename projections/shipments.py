"""Shipments (irsaliye) and their lines, each at the FIFO cost decided when it left."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Date, Integer, String, Uuid

from domain.sales.shipments import Shipment
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.types import Amount, Quantity, UtcDateTime


class Shipments(Projection):
    name = "shipments"
    version = 2  # v2: position indexed (the list, newest first)
    handles = (Shipment.Dispatched,)

    def define_tables(self) -> None:
        self.table(
            "shipments",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False, unique=True),
            Column("order_id", Uuid, nullable=False, index=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("warehouse", String(20), nullable=False),
            Column("shipment_date", Date, nullable=False, index=True),
            Column("quantity", Quantity(), nullable=False),
            Column("cost", Amount(), nullable=False),
            Column("dispatched_at", UtcDateTime, nullable=False, index=True),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False, index=True),
        )
        self.table(
            "shipment_lines",
            Column("shipment_id", Uuid, primary_key=True),
            # The order line this ships (a shipment ships each order line at most once).
            Column("line", Integer, primary_key=True),
            Column("product_id", Uuid, nullable=False, index=True),
            Column("sku", String(40), nullable=False),
            Column("quantity", Quantity(), nullable=False),
            Column("cost", Amount(), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        match event:
            case Shipment.Dispatched():
                quantity = ZERO
                for d in event.lines:
                    quantity += Decimal(d["quantity"])
                    batch.insert(
                        self["shipment_lines"],
                        shipment_id=event.originator_id,
                        line=int(d["line"]),
                        product_id=d["product_id"],
                        sku=d["sku"],
                        quantity=Decimal(d["quantity"]),
                        cost=Decimal(d["cost"]),
                    )
                batch.insert(
                    self["shipments"],
                    id=event.originator_id,
                    number=event.number,
                    order_id=event.order_id,
                    customer_id=event.customer_id,
                    warehouse=event.warehouse,
                    shipment_date=event.shipment_date,
                    quantity=quantity,
                    cost=event.cost,
                    dispatched_at=event.timestamp,
                    version=event.originator_version,
                    position=position,
                )
