from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field, model_validator
from sqlalchemy import select

from api.deps import CommandDep, Reader, ServicesDep, read_model, require
from api.routers.products import READERS, Qty
from api.routers.stock import MAX_LINES, check_line_amount
from api.schemas import (
    Body,
    CommandAnswer,
    NoBody,
    Page,
    PageParams,
    Percentage,
    Public,
    paginate,
)
from domain.errors import NotFound
from domain.inventory.fifo import Draw, Layer, cost_of, draw
from domain.inventory.warehouses import MAIN
from domain.values import ZERO, round_money

router = APIRouter(prefix="/api/quotes", tags=["quotes"])

SELLERS = ("sales",)
NO_QUANTITY = Decimal(0)

SalePrice = Annotated[Decimal, Field(max_digits=16, decimal_places=4, examples=["100.00"])]


class LineIn(Body):
    """A line to quote or order: the product by id or SKU; the price defaults to its list
    price."""

    product_id: UUID | None = None
    sku: str | None = Field(None, description="instead of product_id")
    description: str | None = Field(None, description="default: the product's name")
    quantity: Qty
    unit_price: SalePrice | None = Field(None, description="default: the list price")
    discount_percent: Percentage | None = Field(None, examples=["5"])

    @model_validator(mode="after")
    def _amount_fits(self) -> LineIn:
        check_line_amount(self.quantity, self.unit_price)
        return self


class QuoteCreate(Body):
    customer_id: UUID
    opportunity_id: UUID | None = None
    lines: list[LineIn] = Field(max_length=MAX_LINES)
    valid_until: date | None = Field(None, description="default: 30 days from today")
    payment_terms_days: int | None = Field(None, description="default: the customer's")
    currency: str = "TRY"


class QuoteRevise(Body):
    lines: list[LineIn] | None = Field(None, max_length=MAX_LINES, description="default: same")
    valid_until: date | None = Field(None, description="default: 30 days from today")
    payment_terms_days: int | None = Field(None, description="default: the old quote's")


class QuoteReject(Body):
    reason: str | None = None


class QuoteAnswer(CommandAnswer):
    number: str


class QuoteRevised(QuoteAnswer):
    revision_of: UUID


class QuotePublic(Public):
    id: UUID
    number: str
    revision: int
    revision_of: UUID | None
    revised_by: UUID | None
    customer_id: UUID
    opportunity_id: UUID | None
    status: str
    valid_until: date
    payment_terms_days: int
    currency: str
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    tax_by_rate: dict[str, Decimal]
    order_id: UUID | None
    created_at: datetime
    sent_at: datetime | None
    closed_at: datetime | None
    reject_reason: str | None
    version: int


class Availability(Public):
    warehouse: str
    on_hand: Decimal
    reserved: Decimal
    available: Decimal


class QuoteLineView(Public):
    line: int
    product_id: UUID
    sku: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    vat_rate: Decimal
    net: Decimal
    vat: Decimal
    availability: list[Availability] = Field(description="per warehouse holding the product")
    available: Decimal | None = Field(description="in the warehouse the preview ships from")
    available_total: Decimal | None
    short: bool = Field(description="the quantity is more than is available to ship")
    lead_time_days: int | None = Field(description="when short: days to get more")
    earliest_ship_date: date | None = Field(description="when short: today + lead time")
    cost: Decimal
    cost_estimated: bool = Field(
        description="part of the cost is the standard cost, not FIFO layers in stock"
    )
    margin: Decimal
    margin_percent: Decimal | None


class QuoteDetail(QuotePublic):
    lines: list[QuoteLineView]
    warehouse: str = Field(description="the warehouse the cost and availability preview for")
    as_of: date
    cost: Decimal
    cost_estimated: bool
    margin: Decimal
    margin_percent: Decimal | None


# -- commands ----------------------------------------------------------------------------------


def domain_lines(lines: list[LineIn]) -> list[dict[str, Any]]:
    return [line.model_dump() for line in lines]


@router.post("", status_code=201, response_model=QuoteAnswer, dependencies=[require(*SELLERS)])
async def create_quote(body: QuoteCreate, run: CommandDep) -> Any:
    """Draft a quote, numbered TKL<year><sequence>; tax is computed per line and summed per
    rate."""
    return await run(
        lambda b: b.create_quote(
            customer_id=body.customer_id,
            lines=domain_lines(body.lines),
            opportunity_id=body.opportunity_id,
            valid_until=body.valid_until,
            payment_terms_days=body.payment_terms_days,
            currency_code=body.currency,
        )
    )


@router.post("/{quote_id}/send", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def send_quote(quote_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    return await run(lambda b: b.send_quote(quote_id))


@router.post("/{quote_id}/accept", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def accept_quote(quote_id: UUID, run: CommandDep, body: NoBody | None = None) -> Any:
    """The customer accepted: refused (409) once the quote is past its validity."""
    return await run(lambda b: b.accept_quote(quote_id))


@router.post("/{quote_id}/reject", response_model=CommandAnswer, dependencies=[require(*SELLERS)])
async def reject_quote(quote_id: UUID, run: CommandDep, body: QuoteReject | None = None) -> Any:
    return await run(lambda b: b.reject_quote(quote_id, body.reason if body else None))


@router.post(
    "/{quote_id}/revise",
    status_code=201,
    response_model=QuoteRevised,
    dependencies=[require(*SELLERS)],
)
async def revise_quote(quote_id: UUID, run: CommandDep, body: QuoteRevise | None = None) -> Any:
    """Offer again: a new quote (the next revision, `<number>-R<n>`) replaces this one, which
    stays readable as `revised`. The answer is the new quote's."""
    body = body or QuoteRevise()
    return await run(
        lambda b: b.revise_quote(
            quote_id,
            lines=domain_lines(body.lines) if body.lines is not None else None,
            valid_until=body.valid_until,
            payment_terms_days=body.payment_terms_days,
        )
    )


# -- queries -----------------------------------------------------------------------------------


@router.get("", response_model=Page[QuotePublic], dependencies=[require(*READERS)])
def list_quotes(
    r: Annotated[Reader, read_model("quotes")],
    page: Annotated[PageParams, Query()],
    status: str | None = None,
    customer_id: UUID | None = None,
    opportunity_id: UUID | None = None,
    number: Annotated[str | None, Query(description="a number, or its start")] = None,
) -> Any:
    quotes = r["quotes"]["quotes"]
    query = select(quotes).order_by(quotes.c.created_at.desc(), quotes.c.id)
    for column, value in (
        (quotes.c.status, status),
        (quotes.c.customer_id, customer_id),
        (quotes.c.opportunity_id, opportunity_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if number:
        query = query.where(quotes.c.number.startswith(number.upper(), autoescape=True))
    return paginate(r.conn, query, QuotePublic, page.limit, page.offset)


@router.get("/{quote_id}", response_model=QuoteDetail, dependencies=[require(*READERS)])
def get_quote(
    quote_id: UUID,
    services: ServicesDep,
    r: Annotated[Reader, read_model("quotes", "stock", "products")],
    warehouse: Annotated[
        str, Query(description="the warehouse to preview availability and cost for")
    ] = MAIN,
) -> Any:
    """The quote as sales sees it while quoting: its lines and totals and, computed now from
    the stock read model, per line what is available, when it could ship if it is short,
    what it would cost at FIFO and the margin that leaves.

    The preview assumes the order ships from one warehouse (MAIN unless `warehouse` says
    otherwise) and that stock already reserved for confirmed orders leaves first: the quote's
    quantity is drawn from the oldest layers left after the reservations. What the layers
    cannot cover is valued at the product's standard cost (`cost_estimated`). A service has
    no stock: its cost is its standard cost."""
    quotes = r["quotes"]["quotes"]
    row = r.conn.execute(select(quotes).where(quotes.c.id == quote_id)).mappings().first()
    if row is None:
        raise NotFound("quote", quote_id)
    code = warehouse.strip().upper()
    warehouses = r["products"]["warehouses"]
    if r.conn.execute(select(warehouses.c.code).where(warehouses.c.code == code)).first() is None:
        raise NotFound("warehouse", code)
    quote_lines = r["quotes"]["quote_lines"]
    lines = (
        r.conn.execute(
            select(quote_lines)
            .where(quote_lines.c.quote_id == quote_id)
            .order_by(quote_lines.c.line)
        )
        .mappings()
        .all()
    )
    today = services.business.today()
    preview = CostPreview(r, code, today, [line["product_id"] for line in lines])
    views = [preview.line(dict(line)) for line in lines]
    cost = sum((v["cost"] for v in views), ZERO)
    margin = row["untaxed"] - cost
    return QuoteDetail.model_validate(
        {
            **row,
            "lines": views,
            "warehouse": code,
            "as_of": today,
            "cost": cost,
            "cost_estimated": any(v["cost_estimated"] for v in views),
            "margin": margin,
            "margin_percent": percent_of(margin, row["untaxed"]),
        }
    )


def percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def after(layers: list[Layer], draws: list[Draw]) -> list[Layer]:
    """The layers left once `draws` are taken (as StockItem.Issued applies them)."""
    taken = {d.layer: d for d in draws}
    left = []
    for layer in layers:
        d = taken.get(layer.key)
        if d is not None:
            layer = Layer(layer.key, layer.quantity - d.quantity, layer.value - d.value)
        if layer.quantity > 0:
            left.append(layer)
    return left


class CostPreview:
    """Availability and FIFO cost of quote lines, from the stock read model as it is now.

    Lines of one product draw one after the other from the same layers."""

    def __init__(self, r: Reader, warehouse: str, today: date, product_ids: list[UUID]) -> None:
        self.r = r
        self.warehouse = warehouse
        self.today = today
        ids = sorted(set(product_ids))
        products = r["products"]["products"]
        self.products = {
            p["id"]: p
            for p in r.conn.execute(select(products).where(products.c.id.in_(ids))).mappings()
        }
        items = r["stock"]["items"]
        self.items: dict[UUID, list[dict[str, Any]]] = {}
        for item in r.conn.execute(
            select(items).where(items.c.product_id.in_(ids)).order_by(items.c.warehouse)
        ).mappings():
            self.items.setdefault(item["product_id"], []).append(dict(item))
        self._layers: dict[UUID, list[Layer]] = {}

    def _free_layers(self, product_id: UUID) -> list[Layer]:
        """The layers in the preview's warehouse not spoken for by reservations."""
        if product_id not in self._layers:
            layers = self.r["stock"].fifo_layers(self.r.conn, product_id, self.warehouse)
            here = self._here(product_id)
            reserved = here["reserved"] if here else ZERO
            self._layers[product_id] = after(layers, draw(layers, reserved)[0])
        return self._layers[product_id]

    def _here(self, product_id: UUID) -> dict[str, Any] | None:
        return next(
            (i for i in self.items.get(product_id, []) if i["warehouse"] == self.warehouse), None
        )

    def line(self, line: dict[str, Any]) -> dict[str, Any]:
        product_id, quantity = line["product_id"], line["quantity"]
        product = self.products.get(product_id) or {}
        standard_cost = product.get("standard_cost", ZERO)
        view: dict[str, Any] = {**line, "lead_time_days": None, "earliest_ship_date": None}
        if product.get("type") == "service":
            cost = round_money(quantity * standard_cost)
            view.update(
                availability=[],
                available=None,
                available_total=None,
                short=False,
                cost=cost,
                cost_estimated=True,
            )
        else:
            stock = self.items.get(product_id, [])
            here = self._here(product_id)
            layers = self._free_layers(product_id)
            draws, shortfall = draw(layers, quantity)
            self._layers[product_id] = after(layers, draws)
            cost = cost_of(draws) + round_money(shortfall * standard_cost)
            view.update(
                availability=stock,
                available=here["available"] if here else NO_QUANTITY,
                available_total=sum((i["available"] for i in stock), NO_QUANTITY),
                short=shortfall > 0,
                cost=cost,
                cost_estimated=shortfall > 0,
            )
            if shortfall > 0:
                lead = int(product.get("lead_time_days", 0))
                view.update(
                    lead_time_days=lead, earliest_ship_date=self.today + timedelta(days=lead)
                )
        margin = line["net"] - cost
        view.update(margin=margin, margin_percent=percent_of(margin, line["net"]))
        return view
