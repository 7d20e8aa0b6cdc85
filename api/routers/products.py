from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import or_, select

from api.deps import CommandDep, Reader, read_model, require
from api.schemas import Body, CommandAnswer, Page, PageParams, Percentage, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/products", tags=["products"])

# Who keeps the catalogue and the warehouses, and who reads stock (shared by the stock,
# warehouse, quote, order and shipment routers).
CATALOG_WRITERS = ("warehouse", "purchasing")
READERS = ("sales", "finance", "warehouse", "purchasing", "manager", "auditor")

# What the read models can hold (scaled 64-bit integers): a price or cost to six decimals
# below a trillion, a quantity to four decimals below ten billion.
Price = Annotated[Decimal, Field(max_digits=18, decimal_places=6, examples=["100.00"])]
Qty = Annotated[Decimal, Field(max_digits=14, decimal_places=4, examples=["10"])]


class ProductCreate(Body):
    sku: str = Field(examples=["W-100"])
    name: str = Field(examples=["Steel widget"])
    unit: str = Field("adet", examples=["adet", "kg", "saat"])
    type: Literal["stocked", "service"] = "stocked"
    list_price: Price = Decimal(0)
    vat_rate: Percentage = Field(Decimal(20), description="20, 10, 1 or 0 (%)")
    standard_cost: Price = Field(
        Decimal(0), description="what a unit costs when none is in stock (quote previews)"
    )
    lead_time_days: int = Field(0, description="days to get more when none is in stock")


class StockLevel(Public):
    warehouse: str
    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    value: Decimal


class ProductPublic(Public):
    id: UUID
    sku: str
    name: str
    unit: str
    type: str
    list_price: Decimal
    vat_rate: Decimal
    standard_cost: Decimal
    lead_time_days: int
    defined_at: datetime
    version: int


class ProductDetail(ProductPublic):
    stock: list[StockLevel]


@router.post(
    "", status_code=201, response_model=CommandAnswer, dependencies=[require(*CATALOG_WRITERS)]
)
async def define_product(body: ProductCreate, run: CommandDep) -> Any:
    """Define a product (or a service). Its SKU is unique: a second product with the same SKU
    is refused (409)."""
    return await run(
        lambda b: b.define_product(
            sku=body.sku,
            name=body.name,
            unit=body.unit,
            kind=body.type,
            list_price=body.list_price,
            vat_rate_percent=body.vat_rate,
            standard_cost=body.standard_cost,
            lead_time_days=body.lead_time_days,
        )
    )


@router.get("", response_model=Page[ProductPublic], dependencies=[require(*READERS)])
def list_products(
    r: Annotated[Reader, read_model("products")],
    page: Annotated[PageParams, Query()],
    type: Literal["stocked", "service"] | None = None,
    q: Annotated[str | None, Query(description="part of the SKU or the name")] = None,
) -> Any:
    products = r["products"]["products"]
    query = select(products).order_by(products.c.sku)
    if type is not None:
        query = query.where(products.c.type == type)
    if q:
        query = query.where(
            or_(
                products.c.sku.icontains(q, autoescape=True),
                products.c.name.icontains(q, autoescape=True),
            )
        )
    return paginate(r.conn, query, ProductPublic, page.limit, page.offset)


@router.get("/{product_id}", response_model=ProductDetail, dependencies=[require(*READERS)])
def get_product(product_id: UUID, r: Annotated[Reader, read_model("products", "stock")]) -> Any:
    """A product with its stock in each warehouse that holds or has held it."""
    products = r["products"]["products"]
    row = r.conn.execute(select(products).where(products.c.id == product_id)).mappings().first()
    if row is None:
        raise NotFound("product", product_id)
    items = r["stock"]["items"]
    stock = (
        r.conn.execute(
            select(items).where(items.c.product_id == product_id).order_by(items.c.warehouse)
        )
        .mappings()
        .all()
    )
    return ProductDetail.model_validate({**row, "stock": [dict(s) for s in stock]})
