from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import Body, CommandAnswer, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/invoices", tags=["invoices"])

INVOICERS = ("finance",)
READERS = ("finance", "sales", "manager", "auditor")


class InvoiceCreate(Body):
    order_id: UUID
    invoice_date: date | None = Field(
        None, alias="date", description="the invoice date; default: today"
    )
    series: str = Field("SAT", description="three capital letters; numbers are gapless per year")


class InvoiceIssued(CommandAnswer):
    number: str


class InvoicePublic(Public):
    id: UUID
    number: str
    series: str
    customer_id: UUID
    order_id: UUID | None
    invoice_date: date
    due_date: date
    currency: str
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    settled: Decimal
    open_amount: Decimal
    status: str
    overdue: bool
    overdue_since: date | None
    version: int


class InvoiceLinePublic(Public):
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


class SettlementPublic(Public):
    kind: str = Field(description="payment, or unallocated credit used at invoicing")
    payment_id: UUID | None
    document: str | None
    settled_on: date
    amount: Decimal


class InvoiceDetail(InvoicePublic):
    lines: list[InvoiceLinePublic]
    settlements: list[SettlementPublic]


@router.post("", status_code=201, response_model=InvoiceIssued, dependencies=[require(*INVOICERS)])
async def invoice_order(body: InvoiceCreate, run: CommandDep) -> Any:
    """Invoice what was shipped of an order and not invoiced yet. It is numbered without
    gaps, posted (Dr receivables / Cr sales, Cr VAT) and settled from the customer's
    unallocated credit if there is any. Nothing left to invoice answers 409."""
    return await run(
        lambda b: b.invoice_order(body.order_id, invoice_date=body.invoice_date, series=body.series)
    )


@router.get("", response_model=Page[InvoicePublic], dependencies=[require(*READERS)])
def list_invoices(
    r: Annotated[Reader, read_model("invoices")],
    page: Annotated[PageParams, Query()],
    customer_id: UUID | None = None,
    order_id: UUID | None = None,
    status: Annotated[str | None, Query(pattern="^(open|paid)$")] = None,
    overdue: Annotated[
        bool | None, Query(description="marked overdue by the daily job (stays after payment)")
    ] = None,
) -> Any:
    invoices = r["invoices"]["invoices"]
    query = select(invoices).order_by(invoices.c.invoice_date.desc(), invoices.c.number.desc())
    for column, value in (
        (invoices.c.customer_id, customer_id),
        (invoices.c.order_id, order_id),
        (invoices.c.status, status),
        (invoices.c.overdue, overdue),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(r.conn, query, InvoicePublic, page.limit, page.offset)


@router.get("/{invoice_id}", response_model=InvoiceDetail, dependencies=[require(*READERS)])
def get_invoice(invoice_id: UUID, r: Annotated[Reader, read_model("invoices")]) -> Any:
    """An invoice with its lines and what settled it."""
    model = r["invoices"]
    invoices, lines, settlements = model["invoices"], model["invoice_lines"], model["settlements"]
    row = r.conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().first()
    if row is None:
        raise NotFound("invoice", invoice_id)
    found_lines = r.conn.execute(
        select(lines).where(lines.c.invoice_id == invoice_id).order_by(lines.c.line)
    ).mappings()
    found_settlements = r.conn.execute(
        select(settlements)
        .where(settlements.c.invoice_id == invoice_id)
        .order_by(settlements.c.position)
    ).mappings()
    return InvoiceDetail.model_validate(
        {
            **row,
            "lines": [dict(x) for x in found_lines],
            "settlements": [dict(x) for x in found_settlements],
        }
    )
