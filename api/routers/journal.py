from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import func, select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import Body, CommandAnswer, Money, Page, PageParams, Public

router = APIRouter(prefix="/api/journal-entries", tags=["ledger"])

POSTERS = ("finance",)
READERS = ("finance", "manager", "auditor")


class EntryLine(Body):
    account: str = Field(examples=["770"])
    debit: Money | None = None
    credit: Money | None = None
    party_id: UUID | None = None
    memo: str | None = None


class EntryCreate(Body):
    entry_date: date = Field(alias="date")
    description: str
    lines: list[EntryLine]


class LinePublic(Public):
    line: int
    account: str
    debit: Decimal
    credit: Decimal
    party_id: UUID | None
    memo: str | None


class EntryPublic(Public):
    entry_id: UUID
    position: int
    entry_date: date
    description: str
    source_kind: str = Field(description="the kind of business fact that made it, or manual")
    source_id: UUID | None
    source_version: int | None
    document: str | None
    posted_by: str
    lines: list[LinePublic]


@router.post("", status_code=201, response_model=CommandAnswer, dependencies=[require(*POSTERS)])
async def post_entry(body: EntryCreate, run: CommandDep) -> Any:
    """A manual journal entry: balanced, of accounts in the chart, or 422 naming the line.
    Entries are never edited; a correction is another entry."""
    lines = [line.model_dump() for line in body.lines]
    return await run(
        lambda b: b.post_journal_entry(
            entry_date=body.entry_date, description=body.description, lines=lines
        )
    )


@router.get("", response_model=Page[EntryPublic], dependencies=[require(*READERS)])
def list_entries(
    r: Annotated[Reader, read_model("ledger")],
    page: Annotated[PageParams, Query()],
    source_kind: Annotated[
        str | None, Query(description="manual, invoice, payment, shipment, stock_receipt")
    ] = None,
    document: str | None = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Any:
    """Journal entries in the order they were recorded, newest first, with their lines."""
    model = r["ledger"]
    entries, lines = model["entries"], model["lines"]
    query = select(entries).order_by(entries.c.position.desc())
    for column, value in ((entries.c.source_kind, source_kind), (entries.c.document, document)):
        if value is not None:
            query = query.where(column == value)
    if date_from is not None:
        query = query.where(entries.c.entry_date >= date_from)
    if date_to is not None:
        query = query.where(entries.c.entry_date <= date_to)
    counted = query.order_by(None).subquery()
    total = r.conn.execute(select(func.count()).select_from(counted)).scalar() or 0
    found = [
        dict(e) for e in r.conn.execute(query.limit(page.limit).offset(page.offset)).mappings()
    ]
    by_entry: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    if found:
        ids = [e["entry_id"] for e in found]
        for line in r.conn.execute(
            select(lines).where(lines.c.entry_id.in_(ids)).order_by(lines.c.line)
        ).mappings():
            by_entry[line["entry_id"]].append(dict(line))
    return {
        "items": [
            EntryPublic.model_validate({**e, "lines": by_entry[e["entry_id"]]}) for e in found
        ],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }
