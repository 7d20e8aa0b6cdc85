from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import Body, CommandAnswer, Money, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/payments", tags=["payments"])

RECEIVERS = ("finance",)
READERS = ("finance", "manager", "auditor")


class Allocation(Body):
    invoice_id: UUID
    amount: Money


class PaymentCreate(Body):
    customer_id: UUID
    amount: Money = Field(examples=["1000.00"])
    method: Literal["bank", "cash"]
    payment_date: date | None = Field(None, alias="date", description="default: today")
    allocations: list[Allocation] | None = Field(
        None,
        description="how to set the payment against invoices; left out, it goes to the "
        "oldest open invoices first. What is not allocated stays as the customer's credit.",
    )
    reference: str | None = Field(None, max_length=100)


class AllocationPublic(Public):
    invoice_id: UUID
    amount: Decimal


class PaymentReceived(CommandAnswer):
    number: str
    allocations: list[AllocationPublic]
    unallocated: Decimal


class PaymentPublic(Public):
    id: UUID
    number: str
    customer_id: UUID
    amount: Decimal
    method: str
    payment_date: date
    reference: str | None
    allocated: Decimal
    unallocated: Decimal
    received_by: str


class PaymentDetail(PaymentPublic):
    allocations: list[AllocationPublic]


@router.post(
    "", status_code=201, response_model=PaymentReceived, dependencies=[require(*RECEIVERS)]
)
async def receive_payment(body: PaymentCreate, run: CommandDep) -> Any:
    """Money received from a customer, posted Dr bank or cash / Cr receivables."""
    allocations = (
        None
        if body.allocations is None
        else [{"invoice_id": a.invoice_id, "amount": a.amount} for a in body.allocations]
    )
    return await run(
        lambda b: b.receive_payment(
            customer_id=body.customer_id,
            amount=body.amount,
            method=body.method,
            payment_date=body.payment_date,
            allocations=allocations,
            reference=body.reference,
        )
    )


@router.get("", response_model=Page[PaymentPublic], dependencies=[require(*READERS)])
def list_payments(
    r: Annotated[Reader, read_model("payments")],
    page: Annotated[PageParams, Query()],
    customer_id: UUID | None = None,
    method: Annotated[str | None, Query(pattern="^(bank|cash)$")] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Any:
    payments = r["payments"]["payments"]
    query = select(payments).order_by(payments.c.payment_date.desc(), payments.c.number.desc())
    if customer_id is not None:
        query = query.where(payments.c.customer_id == customer_id)
    if method is not None:
        query = query.where(payments.c.method == method)
    if date_from is not None:
        query = query.where(payments.c.payment_date >= date_from)
    if date_to is not None:
        query = query.where(payments.c.payment_date <= date_to)
    return paginate(r.conn, query, PaymentPublic, page.limit, page.offset)


@router.get("/{payment_id}", response_model=PaymentDetail, dependencies=[require(*READERS)])
def get_payment(payment_id: UUID, r: Annotated[Reader, read_model("payments")]) -> Any:
    model = r["payments"]
    payments, allocations = model["payments"], model["allocations"]
    row = r.conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().first()
    if row is None:
        raise NotFound("payment", payment_id)
    found = r.conn.execute(
        select(allocations.c.invoice_id, allocations.c.amount).where(
            allocations.c.payment_id == payment_id
        )
    ).mappings()
    return PaymentDetail.model_validate({**row, "allocations": [dict(a) for a in found]})
