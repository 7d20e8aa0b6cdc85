from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import (
    Body,
    CommandAnswer,
    Money,
    NoBody,
    Page,
    PageParams,
    Public,
    paginate,
)
from domain.errors import NotFound

router = APIRouter(prefix="/api/leads", tags=["leads"])

SELLERS = ("sales",)
READERS = ("sales", "manager", "auditor", "finance")


class LeadCapture(Body):
    name: str = Field(examples=["Ayşe Yılmaz"])
    company: str | None = Field(None, examples=["Yılmaz Tekstil A.Ş."])
    email: str | None = Field(None, examples=["ayse@yilmaztekstil.com.tr"])
    phone: str | None = None
    source: str | None = Field(None, examples=["web"])
    campaign: str | None = Field(None, examples=["SPRING26"])
    owner: str | None = None


class LeadDisqualify(Body):
    reason: str


class ConvertOpportunity(Body):
    title: str | None = None
    amount: Money = Decimal(0)
    currency: str = "TRY"
    expected_close: date | None = None


class LeadConvert(Body):
    customer_id: UUID | None = Field(None, description="convert into this existing customer")
    create_opportunity: bool = True
    opportunity: ConvertOpportunity | None = None
    tax_number: str | None = None
    payment_terms_days: int = 30
    credit_limit: Money = Decimal(0)


class LeadPublic(Public):
    id: UUID
    name: str
    company: str | None
    email: str | None
    phone: str | None
    source: str
    campaign: str | None
    owner: str
    status: str
    possible_duplicate: bool
    duplicate_of: list[UUID]
    captured_at: datetime
    qualified_at: datetime | None
    disqualified_at: datetime | None
    disqualify_reason: str | None
    converted_at: datetime | None
    customer_id: UUID | None
    opportunity_id: UUID | None
    version: int


class LeadCaptured(CommandAnswer):
    possible_duplicates: list[UUID]


class LeadConverted(CommandAnswer):
    customer_id: UUID
    opportunity_id: UUID | None


@router.post("", status_code=201, response_model=LeadCaptured, dependencies=[require(*SELLERS)])
async def capture_lead(body: LeadCapture, run: CommandDep) -> Any:
    """Capture a lead. One whose e-mail another lead or customer already has is recorded but
    flagged: `possible_duplicates` names them."""
    return await run(
        lambda b: b.capture_lead(
            name=body.name,
            company=body.company,
            email_address=body.email,
            phone=body.phone,
            source=body.source,
            campaign=body.campaign,
            owner=body.owner,
        )
    )


@router.post("/{lead_id}/qualify", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def qualify_lead(lead_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    return await run(lambda b: b.qualify_lead(lead_id))


@router.post(
    "/{lead_id}/disqualify", response_model=CommandAnswer, dependencies=[require(*SELLERS)]
)
async def disqualify_lead(lead_id: UUID, body: LeadDisqualify, run: CommandDep) -> Any:
    return await run(lambda b: b.disqualify_lead(lead_id, body.reason))


@router.post("/{lead_id}/convert", response_model=LeadConverted, dependencies=[require(*SELLERS)])
async def convert_lead(lead_id: UUID, run: CommandDep, body: LeadConvert | None = None) -> Any:
    """Make the lead a customer and open an opportunity for it, in one step: the answer
    carries `customer_id` and `opportunity_id`."""
    body = body or LeadConvert()
    opp = body.opportunity or ConvertOpportunity()
    return await run(
        lambda b: b.convert_lead(
            lead_id,
            customer_id=body.customer_id,
            create_opportunity=body.create_opportunity,
            opportunity_title=opp.title,
            amount=opp.amount,
            currency_code=opp.currency,
            expected_close=opp.expected_close,
            tax_number_value=body.tax_number,
            payment_terms_days=body.payment_terms_days,
            credit_limit=body.credit_limit,
        )
    )


@router.get("", response_model=Page[LeadPublic], dependencies=[require(*READERS)])
def list_leads(
    r: Annotated[Reader, read_model("leads")],
    page: Annotated[PageParams, Query()],
    status: str | None = None,
    source: str | None = None,
    campaign: str | None = None,
    owner: str | None = None,
    email: str | None = None,
    possible_duplicate: bool | None = None,
) -> Any:
    leads = r["leads"]["leads"]
    query = select(leads).order_by(leads.c.captured_at.desc(), leads.c.id)
    for column, value in (
        (leads.c.status, status),
        (leads.c.source, source and source.lower()),
        (leads.c.campaign, campaign),
        (leads.c.owner, owner),
        (leads.c.email, email and email.lower()),
        (leads.c.possible_duplicate, possible_duplicate),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(r.conn, query, LeadPublic, page.limit, page.offset)


@router.get("/{lead_id}", response_model=LeadPublic, dependencies=[require(*READERS)])
def get_lead(lead_id: UUID, r: Annotated[Reader, read_model("leads")]) -> Any:
    leads = r["leads"]["leads"]
    row = r.conn.execute(select(leads).where(leads.c.id == lead_id)).mappings().first()
    if row is None:
        raise NotFound("lead", lead_id)
    return LeadPublic.model_validate(dict(row))
