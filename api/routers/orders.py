from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.routers.products import READERS
from api.routers.quotes import SELLERS, LineIn, domain_lines
from api.routers.stock import MAX_LINES
from api.schemas import Body, CommandAnswer, NoBody, Page, PageParams, Public, paginate
from domain.errors import NotFound
from domain.sales.orders import OrderStatus

router = APIRouter(prefix="/api/orders", tags=["orders"])

NO_QUANTITY = Decimal(0)


class OrderCreate(Body):
    quote_id: UUID | None = Field(None, description="order an accepted quote as it stands")
    customer_id: UUID | None = Field(None, description="or order directly: customer and lines")
    lines: list[LineIn] | None = Field(None, max_length=MAX_LINES)
    warehouse: str | None = Field(None, description="where it ships from; default MAIN")
    payment_terms_days: int | None = Field(None, description="default: the customer's")


class OrderCancel(Body):
    reason: str | None = None


class OrderAnswer(CommandAnswer):
    number: str


class OrderPublic(Public):
    id: UUID
    number: str
    customer_id: UUID
    quote_id: UUID | None
    warehouse: str
    currency: str
    payment_terms_days: int
    status: str
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    tax_by_rate: dict[str, Decimal]
    quantity_ordered: Decimal
    quantity_reserved: Decimal
    quantity_shipped: Decimal
    quantity_invoiced: Decimal
    shipment_state: str = Field(description="none, partial or full")
    invoice_state: str = Field(description="none, partial or full")
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    version: int


class OrderLinePublic(Public):
    line: int
    product_id: UUID
    sku: str
    description: str
    ordered: Decimal
    reserved: Decimal
    shipped: Decimal
    invoiced: Decimal
    open_to_ship: Decimal = Field(description="ordered, not shipped, not cancelled")
    unit_price: Decimal
    discount_percent: Decimal
    vat_rate: Decimal
    net: Decimal
    vat: Decimal


class OrderShipment(Public):
    id: UUID
    number: str
    shipment_date: date
    quantity: Decimal
    cost: Decimal


class OrderDetail(OrderPublic):
    lines: list[OrderLinePublic]
    shipments: list[OrderShipment]


@router.post("", status_code=201, response_model=OrderAnswer, dependencies=[require(*SELLERS)])
async def place_order(body: OrderCreate, run: CommandDep) -> Any:
    """Place an order from an accepted quote (`quote_id`: its lines and prices; one order per
    quote), or directly (`customer_id` and `lines`). It starts as a draft."""
    return await run(
        lambda b: b.place_order(
            quote_id=body.quote_id,
            customer_id=body.customer_id,
            lines=domain_lines(body.lines) if body.lines is not None else None,
            warehouse=body.warehouse,
            payment_terms_days=body.payment_terms_days,
        )
    )


@router.post("/{order_id}/confirm", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def confirm_order(order_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    """Confirm, reserving what is available of each line (the rest waits for stock)."""
    return await run(lambda b: b.confirm_order(order_id))


@router.post("/{order_id}/cancel", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def cancel_order(order_id: UUID, run: CommandDep, body: OrderCancel | None = None) -> Any:
    """Cancel what is not shipped yet, releasing its reservations."""
    return await run(lambda b: b.cancel_order(order_id, body.reason if body else None))


@router.get("", response_model=Page[OrderPublic], dependencies=[require(*READERS)])
def list_orders(
    r: Annotated[Reader, read_model("orders")],
    page: Annotated[PageParams, Query()],
    status: str | None = None,
    customer_id: UUID | None = None,
    quote_id: UUID | None = None,
    shipment_state: str | None = None,
    invoice_state: str | None = None,
) -> Any:
    orders = r["orders"]["orders"]
    query = select(orders).order_by(orders.c.created_at.desc(), orders.c.id)
    for column, value in (
        (orders.c.status, status),
        (orders.c.customer_id, customer_id),
        (orders.c.quote_id, quote_id),
        (orders.c.shipment_state, shipment_state),
        (orders.c.invoice_state, invoice_state),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(r.conn, query, OrderPublic, page.limit, page.offset)


@router.get("/{order_id}", response_model=OrderDetail, dependencies=[require(*READERS)])
def get_order(order_id: UUID, r: Annotated[Reader, read_model("orders", "shipments")]) -> Any:
    """An order with, per line, what was ordered, is reserved, was shipped and invoiced; and
    its shipments."""
    orders, lines = r["orders"]["orders"], r["orders"]["order_lines"]
    row = r.conn.execute(select(orders).where(orders.c.id == order_id)).mappings().first()
    if row is None:
        raise NotFound("order", order_id)
    order_lines = r.conn.execute(
        select(lines).where(lines.c.order_id == order_id).order_by(lines.c.line)
    ).mappings()
    cancelled = row["status"] == OrderStatus.CANCELLED.value
    shipments = r["shipments"]["shipments"]
    shipped = r.conn.execute(
        select(shipments).where(shipments.c.order_id == order_id).order_by(shipments.c.position)
    ).mappings()
    return OrderDetail.model_validate(
        {
            **row,
            "lines": [
                {
                    **line,
                    "ordered": line["quantity"],
                    "open_to_ship": NO_QUANTITY
                    if cancelled
                    else line["quantity"] - line["shipped"],
                }
                for line in order_lines
            ],
            "shipments": [dict(s) for s in shipped],
        }
    )
