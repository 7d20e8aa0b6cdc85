from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Reader, ServicesDep, read_model, require
from api.schemas import MAX_OFFSET, Instant
from replay import history

router = APIRouter(prefix="/api/audit", tags=["audit"])

AUDITORS = ("auditor", "manager")


@router.get("/history/{key}", dependencies=[require(*AUDITORS)])
def document_history(
    key: str, services: ServicesDep, r: Annotated[Reader, read_model("audit")]
) -> dict[str, Any]:
    """Every event of a document — by id, document number (SAT2026000000001), SKU, e-mail or
    tax number — in order: position, time, actor, event, data, the command that caused it,
    and what else that command recorded."""
    return history.history(services.business, r.conn, r["audit"], key)


@router.get("/trail", dependencies=[require(*AUDITORS)])
def audit_trail(
    r: Annotated[Reader, read_model("audit")],
    actor: str | None = None,
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
    event_type: Annotated[
        str | None, Query(alias="type", description="Invoice.Issued, or Issued for every kind")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Who did what and when, across the whole business."""
    return history.trail(
        r.conn,
        r["audit"],
        actor=actor,
        since=since,
        until=until,
        event_type=event_type,
        limit=limit,
        offset=offset,
    )
