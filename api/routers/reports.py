from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Reader, read_model, require

router = APIRouter(prefix="/api/reports", tags=["reports"])

READERS = ("sales", "manager", "auditor", "finance")


@router.get("/pipeline", dependencies=[require(*READERS)])
def pipeline(
    r: Annotated[Reader, read_model("opportunities")],
    owner: Annotated[str | None, Query(description="only this owner's opportunities")] = None,
) -> dict[str, Any]:
    """Open opportunities per stage and per owner (count, amount, probability-weighted
    amount), the forecast by expected-close month, and what was won and lost; amounts are
    never added across currencies."""
    return r["opportunities"].pipeline(r.conn, owner=owner)


@router.get("/lead-funnel", dependencies=[require(*READERS)])
def lead_funnel(r: Annotated[Reader, read_model("leads")]) -> dict[str, Any]:
    """Captured, qualified, converted and disqualified leads with conversion rates, by source
    and by campaign."""
    leads = r["leads"]
    return {
        "by_source": leads.funnel(r.conn, "source"),
        "by_campaign": leads.funnel(r.conn, "campaign"),
        "total": leads.funnel(r.conn, None)[0],
    }
