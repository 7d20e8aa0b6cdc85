from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ExplainDep, Reader, read_model, require

router = APIRouter(prefix="/api/reports", tags=["reports"])

READERS = ("sales", "manager", "auditor", "finance")


@router.get("/pipeline", dependencies=[require(*READERS)])
def pipeline(
    r: Annotated[Reader, read_model("opportunities")],
    explain: ExplainDep,
    owner: Annotated[str | None, Query(description="only this owner's opportunities")] = None,
) -> dict[str, Any]:
    """Open opportunities per stage and per owner (count, amount, probability-weighted
    amount), the forecast by expected-close month, and what was won and lost; amounts are
    never added across currencies."""
    return r["opportunities"].pipeline(r.conn, owner=owner, explain=explain)  # type: ignore[attr-defined,no-any-return]


@router.get("/lead-funnel", dependencies=[require(*READERS)])
def lead_funnel(r: Annotated[Reader, read_model("leads")], explain: ExplainDep) -> dict[str, Any]:
    """Captured, qualified, converted and disqualified leads with conversion rates, by source
    and by campaign."""
    return r["leads"].report(r.conn, explain=explain)  # type: ignore[attr-defined,no-any-return]
