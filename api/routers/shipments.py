from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.routers.products import READERS, Qty
from api.routers.stock import MAX_LINES
from api.schemas import Body, CommandAnswer, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/shipments", tags=["shipments"])

SHIPPERS = ("warehouse",)


class ShipLine(Body):
    line: int = Field(description="the order line")
    quantity: Qty


class ShipmentCreate(Body):
    order_id: UUID
    lines: list[ShipLine] | None = Field(
        None, max_length=MAX_LINES, description="default: everything open and in stock"
    )
    date: dt.date | None = Field(None, description="the shipment's business date; default today")


class ShipmentAnswer(CommandAnswer):
    number: str


class ShipmentPublic(Public):
    id: UUID
    number: str
    order_id: UUID
    order_number: str | None
    customer_id: UUID
    warehouse: str
    shipment_date: date
    quantity: Decimal
    cost: Decimal
    dispatched_at: datetime
    version: int


class ShipmentLinePublic(Public):
    line: int
    product_id: UUID
    sku: str
    quantity: Decimal
    cost: Decimal = Field(description="FIFO cost decided when it left")


class ShipmentDetail(ShipmentPublic):
    lines: list[ShipmentLinePublic]


@router.post("", status_code=201, response_model=ShipmentAnswer, dependencies=[require(*SHIPPERS)])
async def ship_order(body: ShipmentCreate, run: CommandDep) -> Any:
    """Ship a confirmed order, in full or in part: stock leaves at the FIFO cost decided now,
    posted Dr cost of goods sold / Cr inventory. Without `lines`, everything still open and in
    stock ships."""
    return await run(
        lambda b: b.ship_order(
            body.order_id,
            lines=[line.model_dump() for line in body.lines] if body.lines is not None else None,
            shipment_date=body.date,
        )
    )


def _query(r: Reader) -> Any:
    shipments, orders = r["shipments"]["shipments"], r["orders"]["orders"]
    return select(shipments, orders.c.number.label("order_number")).select_from(
        shipments.outerjoin(orders, orders.c.id == shipments.c.order_id)
    )


@router.get("", response_model=Page[ShipmentPublic], dependencies=[require(*READERS)])
def list_shipments(
    r: Annotated[Reader, read_model("shipments", "orders")],
    page: Annotated[PageParams, Query()],
    order_id: UUID | None = None,
    customer_id: UUID | None = None,
    warehouse: str | None = None,
) -> Any:
    shipments = r["shipments"]["shipments"]
    asked = [
        column == value
        for column, value in (
            (shipments.c.order_id, order_id),
            (shipments.c.customer_id, customer_id),
            (shipments.c.warehouse, warehouse and warehouse.upper()),
        )
        if value is not None
    ]
    query = _query(r).where(*asked).order_by(shipments.c.position.desc())
    # Counted without the orders, joined only for their numbers (at most one each).
    counted = select(shipments.c.id).where(*asked)
    return paginate(r.conn, query, ShipmentPublic, page.limit, page.offset, counted=counted)


@router.get("/{shipment_id}", response_model=ShipmentDetail, dependencies=[require(*READERS)])
def get_shipment(shipment_id: UUID, r: Annotated[Reader, read_model("shipments", "orders")]) -> Any:
    shipments, lines = r["shipments"]["shipments"], r["shipments"]["shipment_lines"]
    row = r.conn.execute(_query(r).where(shipments.c.id == shipment_id)).mappings().first()
    if row is None:
        raise NotFound("shipment", shipment_id)
    shipped = r.conn.execute(
        select(lines).where(lines.c.shipment_id == shipment_id).order_by(lines.c.line)
    ).mappings()
    return ShipmentDetail.model_validate({**row, "lines": [dict(line) for line in shipped]})
