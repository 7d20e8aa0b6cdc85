from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field, model_validator
from sqlalchemy import select

from api.deps import CommandDep, ExplainDep, Reader, read_model, require
from api.routers.products import READERS, Price, Qty
from api.schemas import Body, CommandAnswer, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(tags=["stock"])

RECEIVERS = ("warehouse", "purchasing")

# One line's amount stays below ten trillion, so that a document of up to MAX_LINES lines
# (with its VAT) fits the read models' 64-bit cents.
MAX_LINE_AMOUNT = Decimal(10) ** 13
MAX_LINES = 500


def check_line_amount(quantity: Decimal | None, price: Decimal | None) -> None:
    if quantity is not None and price is not None and abs(quantity * price) >= MAX_LINE_AMOUNT:
        raise ValueError(f"quantity × price must stay below {MAX_LINE_AMOUNT:,}")


class ReceiptLine(Body):
    product_id: UUID | None = None
    sku: str | None = Field(None, description="instead of product_id")
    quantity: Qty
    unit_cost: Price

    @model_validator(mode="after")
    def _amount_fits(self) -> ReceiptLine:
        check_line_amount(self.quantity, self.unit_cost)
        return self


class ReceiptCreate(Body):
    warehouse: str = "MAIN"
    supplier_id: UUID | None = Field(None, description="none: opening stock")
    date: dt.date | None = Field(None, description="the receipt's business date; default today")
    reference: str | None = Field(None, examples=["supplier delivery note 4711"])
    lines: list[ReceiptLine] = Field(max_length=MAX_LINES)


class ReceiptAnswer(CommandAnswer):
    number: str


class ReceiptPublic(Public):
    id: UUID
    number: str
    warehouse: str
    supplier_id: UUID | None
    receipt_date: date
    reference: str | None
    total: Decimal
    lines: list[dict[str, Any]]
    recorded_at: datetime


class MovementPublic(Public):
    position: int
    product_id: UUID
    warehouse: str
    sku: str
    kind: str
    document_id: UUID
    order_id: UUID | None
    quantity: Decimal
    value: Decimal
    on_hand_after: Decimal
    value_after: Decimal
    at: datetime


class StockRow(Public):
    product_id: UUID
    sku: str
    name: str | None
    unit: str | None
    warehouse: str
    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    value: Decimal


class WarehouseValue(Public):
    warehouse: str
    value: Decimal


class StockTotals(Public):
    items: int
    value: Decimal


class Contribution(Public):
    position: int
    event: str
    amount: str


class StockReport(Public):
    items: list[StockRow]
    by_warehouse: list[WarehouseValue]
    totals: StockTotals
    # Only with ?explain= (the route leaves out what was not set).
    explain: dict[str, list[Contribution]] | None = None


@router.post(
    "/api/stock/receipts",
    status_code=201,
    response_model=ReceiptAnswer,
    dependencies=[require(*RECEIVERS)],
)
async def receive_stock(body: ReceiptCreate, run: CommandDep) -> Any:
    """Count goods into a warehouse: each line becomes a FIFO layer at its unit cost. From a
    supplier it posts Dr inventory / Cr payables; without one it is opening stock."""
    return await run(
        lambda b: b.receive_stock(
            lines=[line.model_dump() for line in body.lines],
            warehouse=body.warehouse,
            supplier_id=body.supplier_id,
            receipt_date=body.date,
            reference=body.reference,
        )
    )


@router.get(
    "/api/stock/receipts", response_model=Page[ReceiptPublic], dependencies=[require(*READERS)]
)
def list_receipts(
    r: Annotated[Reader, read_model("stock")],
    page: Annotated[PageParams, Query()],
    warehouse: str | None = None,
    supplier_id: UUID | None = None,
) -> Any:
    receipts = r["stock"]["receipts"]
    query = select(receipts).order_by(receipts.c.position.desc())
    if warehouse is not None:
        query = query.where(receipts.c.warehouse == warehouse.upper())
    if supplier_id is not None:
        query = query.where(receipts.c.supplier_id == supplier_id)
    return paginate(r.conn, query, ReceiptPublic, page.limit, page.offset)


@router.get(
    "/api/stock/receipts/{receipt_id}",
    response_model=ReceiptPublic,
    dependencies=[require(*READERS)],
)
def get_receipt(receipt_id: UUID, r: Annotated[Reader, read_model("stock")]) -> Any:
    receipts = r["stock"]["receipts"]
    row = r.conn.execute(select(receipts).where(receipts.c.id == receipt_id)).mappings().first()
    if row is None:
        raise NotFound("receipt", receipt_id)
    return ReceiptPublic.model_validate(dict(row))


@router.get(
    "/api/stock/movements", response_model=Page[MovementPublic], dependencies=[require(*READERS)]
)
def list_movements(
    r: Annotated[Reader, read_model("stock")],
    page: Annotated[PageParams, Query()],
    product_id: UUID | None = None,
    warehouse: str | None = None,
    document_id: UUID | None = None,
) -> Any:
    """The stock card: every receipt and issue in the order it happened, with the quantity
    and value on hand after it."""
    movements = r["stock"]["movements"]
    query = select(movements).order_by(movements.c.position)
    for column, value in (
        (movements.c.product_id, product_id),
        (movements.c.warehouse, warehouse and warehouse.upper()),
        (movements.c.document_id, document_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(r.conn, query, MovementPublic, page.limit, page.offset)


@router.get(
    "/api/reports/stock",
    response_model=StockReport,
    response_model_exclude_unset=True,
    dependencies=[require(*READERS)],
)
def stock_report(
    r: Annotated[Reader, read_model("stock", "products", positioned=True)],
    explain: ExplainDep,
    warehouse: str | None = None,
    product_id: UUID | None = None,
) -> Any:
    """Per product and warehouse: on hand, reserved, available and FIFO value; the value per
    warehouse and in total (quantities are not added across products: their units differ)."""
    report = r["stock"].report(  # type: ignore[attr-defined]
        r.conn,
        r["products"]["products"],
        warehouse=warehouse and warehouse.upper(),
        product_id=product_id,
        explain=explain,
        up_to=r.up_to,
    )
    return StockReport.model_validate(report)
