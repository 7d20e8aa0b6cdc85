from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import Body, CommandAnswer, NoBody, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/activities", tags=["activities"])

WRITERS = ("sales", "finance")
READERS = ("sales", "manager", "auditor", "finance")


class ActivityCreate(Body):
    kind: str = Field(examples=["call", "meeting", "email", "note", "task"])
    subject: str
    regarding: str = Field(examples=["lead", "customer", "opportunity"])
    regarding_id: UUID
    notes: str | None = None
    due: date | None = None
    owner: str | None = None
    done: bool = False


class ActivityPublic(Public):
    id: UUID
    kind: str
    subject: str
    notes: str | None
    regarding: str
    regarding_id: UUID
    due: date | None
    owner: str
    done: bool
    logged_at: datetime
    completed_at: datetime | None
    version: int


@router.post("", status_code=201, response_model=CommandAnswer, dependencies=[require(*WRITERS)])
async def log_activity(body: ActivityCreate, run: CommandDep) -> Any:
    return await run(
        lambda b: b.log_activity(
            kind=body.kind,
            subject=body.subject,
            regarding=body.regarding,
            regarding_id=body.regarding_id,
            notes=body.notes,
            due=body.due,
            owner=body.owner,
            done=body.done,
        )
    )


@router.post(
    "/{activity_id}/complete", response_model=CommandAnswer, dependencies=[require(*WRITERS)]
)
async def complete_activity(activity_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    return await run(lambda b: b.complete_activity(activity_id))


@router.get("", response_model=Page[ActivityPublic], dependencies=[require(*READERS)])
def list_activities(
    r: Annotated[Reader, read_model("activities")],
    page: Annotated[PageParams, Query()],
    regarding_id: UUID | None = None,
    owner: str | None = None,
    kind: str | None = None,
    done: bool | None = None,
    due_before: Annotated[date | None, Query(description="open tasks due before this date")] = None,
) -> Any:
    acts = r["activities"]["activities"]
    query = select(acts).order_by(acts.c.logged_at.desc(), acts.c.id)
    for column, value in (
        (acts.c.regarding_id, regarding_id),
        (acts.c.owner, owner),
        (acts.c.kind, kind),
        (acts.c.done, done),
    ):
        if value is not None:
            query = query.where(column == value)
    if due_before is not None:
        query = query.where(acts.c.due < due_before)
    return paginate(r.conn, query, ActivityPublic, page.limit, page.offset)


@router.get("/{activity_id}", response_model=ActivityPublic, dependencies=[require(*READERS)])
def get_activity(activity_id: UUID, r: Annotated[Reader, read_model("activities")]) -> Any:
    acts = r["activities"]["activities"]
    row = r.conn.execute(select(acts).where(acts.c.id == activity_id)).mappings().first()
    if row is None:
        raise NotFound("activity", activity_id)
    return ActivityPublic.model_validate(dict(row))
