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
    Percentage,
    Public,
    paginate,
)
from domain.errors import NotFound

router = APIRouter(prefix="/api/opportunities", tags=["opportunities"])

SELLERS = ("sales",)
READERS = ("sales", "manager", "auditor", "finance")


class OpportunityCreate(Body):
    customer_id: UUID
    title: str
    amount: Money = Field(examples=["125000.00"])
    currency: str = "TRY"
    expected_close: date | None = None
    owner: str | None = None
    stage: str = Field("prospecting", examples=["prospecting", "qualification", "proposal"])
    probability: Percentage | None = Field(None, description="0-100; default: the stage's")


class StageChange(Body):
    stage: str = Field(examples=["proposal"])
    probability: Percentage | None = Field(None, description="0-100; default: the stage's")


class Lose(Body):
    reason: str


class OpportunityPublic(Public):
    id: UUID
    customer_id: UUID
    title: str
    amount: Decimal
    currency: str
    expected_close: date | None
    owner: str
    stage: str
    probability: Decimal
    lead_id: UUID | None
    opened_at: datetime
    closed_at: datetime | None
    lost_reason: str | None
    version: int


@router.post("", status_code=201, response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def open_opportunity(body: OpportunityCreate, run: CommandDep) -> Any:
    return await run(
        lambda b: b.open_opportunity(
            customer_id=body.customer_id,
            title=body.title,
            amount=body.amount,
            currency_code=body.currency,
            expected_close=body.expected_close,
            owner=body.owner,
            stage=body.stage,
            probability=body.probability,
        )
    )


@router.post(
    "/{opportunity_id}/stage", response_model=CommandAnswer, dependencies=[require(*SELLERS)]
)
async def change_stage(opportunity_id: UUID, body: StageChange, run: CommandDep) -> Any:
    return await run(lambda b: b.move_opportunity(opportunity_id, body.stage, body.probability))


@router.post(
    "/{opportunity_id}/win", response_model=CommandAnswer, dependencies=[require(*SELLERS)]
)
async def win(opportunity_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    return await run(lambda b: b.win_opportunity(opportunity_id))


@router.post(
    "/{opportunity_id}/lose", response_model=CommandAnswer, dependencies=[require(*SELLERS)]
)
async def lose(opportunity_id: UUID, body: Lose, run: CommandDep) -> Any:
    return await run(lambda b: b.lose_opportunity(opportunity_id, body.reason))


@router.get("", response_model=Page[OpportunityPublic], dependencies=[require(*READERS)])
def list_opportunities(
    r: Annotated[Reader, read_model("opportunities")],
    page: Annotated[PageParams, Query()],
    stage: str | None = None,
    owner: str | None = None,
    customer_id: UUID | None = None,
    currency: str | None = None,
) -> Any:
    opps = r["opportunities"]["opportunities"]
    query = select(opps).order_by(opps.c.opened_at.desc(), opps.c.id)
    for column, value in (
        (opps.c.stage, stage),
        (opps.c.owner, owner),
        (opps.c.customer_id, customer_id),
        (opps.c.currency, currency),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(r.conn, query, OpportunityPublic, page.limit, page.offset)


@router.get("/{opportunity_id}", response_model=OpportunityPublic, dependencies=[require(*READERS)])
def get_opportunity(opportunity_id: UUID, r: Annotated[Reader, read_model("opportunities")]) -> Any:
    opps = r["opportunities"]["opportunities"]
    row = r.conn.execute(select(opps).where(opps.c.id == opportunity_id)).mappings().first()
    if row is None:
        raise NotFound("opportunity", opportunity_id)
    return OpportunityPublic.model_validate(dict(row))
