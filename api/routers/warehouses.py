from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import CommandDep, Reader, read_model, require
from api.routers.products import CATALOG_WRITERS, READERS
from api.schemas import Body, CommandAnswer, Page, PageParams, Public, paginate

router = APIRouter(prefix="/api/warehouses", tags=["warehouses"])


class WarehouseOpen(Body):
    code: str = Field(examples=["IZMIR"], description="1-20 letters, digits, '-' or '_'")
    name: str = Field(examples=["İzmir depo"])


class WarehousePublic(Public):
    id: UUID
    code: str
    name: str
    opened_at: datetime
    version: int


@router.post(
    "", status_code=201, response_model=CommandAnswer, dependencies=[require(*CATALOG_WRITERS)]
)
async def open_warehouse(body: WarehouseOpen, run: CommandDep) -> Any:
    """Open a warehouse. MAIN exists from the start; codes are unique (409 otherwise)."""
    return await run(lambda b: b.open_warehouse(code=body.code, name=body.name))


@router.get("", response_model=Page[WarehousePublic], dependencies=[require(*READERS)])
def list_warehouses(
    r: Annotated[Reader, read_model("products")], page: Annotated[PageParams, Query()]
) -> Any:
    warehouses = r["products"]["warehouses"]
    query = select(warehouses).order_by(warehouses.c.code)
    return paginate(r.conn, query, WarehousePublic, page.limit, page.offset)
