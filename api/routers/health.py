from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from projections.eventlog import max_position

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep) -> Any:
    """Is the store reachable, and how far behind is each read model? No key needed."""
    try:
        head = max_position(services.business)
    except Exception as error:  # the store is down: say so, with 503
        return JSONResponse(
            {"status": "unavailable", "store": f"unreachable: {type(error).__name__}"},
            status_code=503,
        )
    positions = services.reads.positions()
    failed = services.runner.failed
    projections = {
        name: {
            "position": position,
            "lag": max(head - position, 0),
            **({"failed": failed[name]} if name in failed else {}),
        }
        for name, position in positions.items()
    }
    status = "degraded" if failed else "ok"
    return {"status": status, "store": "ok", "head": head, "projections": projections}
