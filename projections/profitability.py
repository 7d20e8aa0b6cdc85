"""Profitability: revenue net of VAT per invoice line and the cost of goods sold per shipment
line (the FIFO cost decided when the goods left), grouped by order, customer or product.

Revenue is counted when invoiced and cost when shipped, exactly as the ledger posts them, so
the totals equal the sales and cost-of-goods-sold accounts (reconciliation checks it). An
order shipped but not yet invoiced therefore shows its cost before its revenue.

The report reads running totals per order, customer and product, per day and per month (as
the ledger's, see docs/decisions/0008), so that it costs the same however dense the history,
and builds only the page of groups asked for, in the order asked for (docs/decisions/0020);
drill-down reads the lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal, NamedTuple, get_args
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)

from domain.billing.invoices import Invoice
from domain.sales.orders import SalesOrder
from domain.sales.shipments import Shipment
from domain.values import ZERO, round_money
from projections.engine import Batch, Projection
from projections.explain import Contribution, Explanation, attach, event_name, negated, pointer
from projections.financial import PeriodShape, fmt, period_rows, period_shape
from projections.types import Amount, Quantity, made_once

GROUPS = ("order", "customer", "product")
# The orders of the rows, as `sort` names them: by label (order number, customer name, SKU),
# or by a figure, ascending or, with a leading "-", descending; ties by the group's id.
Sort = Literal[
    "name", "revenue", "-revenue", "margin", "-margin", "margin_percent", "-margin_percent"
]
SORTS: tuple[str, ...] = get_args(Sort)
# What each group adds up: revenue and quantity invoiced, cost and quantity shipped.
FIGURES = ("revenue", "invoiced", "cost", "shipped")
# The group of revenue or cost with no order (an invoice's `order_id` may be None).
NO_ORDER = UUID(int=0)
# LIMIT for "all the rows" (both databases take a bound, not NULL).
ALL_ROWS = 2**63 - 1
INVOICED = event_name(Invoice.Issued)
SHIPPED = event_name(Shipment.Dispatched)


class Profitability(Projection):
    name = "profitability"
    version = 5
    handles = (SalesOrder.Placed, Invoice.Issued, Shipment.Dispatched)

    def define_tables(self) -> None:
        self.table(
            "orders",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False),
            Column("customer_id", Uuid, nullable=False),
        )
        self.table(
            "revenue",
            Column("invoice_id", Uuid, primary_key=True),
            Column("line", Integer, primary_key=True),
            Column("document", String(20), nullable=False),
            Column("order_id", Uuid, index=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("product_id", Uuid, nullable=False, index=True),
            Column("sku", String(40), nullable=False),
            Column("on_date", Date, nullable=False, index=True),
            Column("quantity", Quantity(), nullable=False),
            Column("amount", Amount(), nullable=False),
            Column("position", Integer, nullable=False),
        )
        self.table(
            "costs",
            Column("shipment_id", Uuid, primary_key=True),
            Column("line", Integer, primary_key=True),
            Column("document", String(20), nullable=False),
            Column("order_id", Uuid, index=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("product_id", Uuid, nullable=False, index=True),
            Column("sku", String(40), nullable=False),
            Column("on_date", Date, nullable=False, index=True),
            Column("quantity", Quantity(), nullable=False),
            Column("amount", Amount(), nullable=False),
            Column("position", Integer, nullable=False),
        )
        self.table("days", *_totals_columns("day"))
        self.table("months", *_totals_columns("month"))
        # Since the beginning: what a report without a period reads (one row per customer or
        # product, where the months would be one per month of the history).
        self.table("ever", *_totals_columns())
        self.table(
            "skus",
            Column("product_id", Uuid, primary_key=True),
            Column("sku", String(40), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        match event:
            case SalesOrder.Placed():
                batch.insert(
                    self["orders"],
                    id=event.originator_id,
                    number=event.number,
                    customer_id=event.customer_id,
                )
            case Invoice.Issued():
                for line in event.lines:
                    batch.insert(
                        self["revenue"],
                        invoice_id=event.originator_id,
                        line=int(line["line"]),
                        document=event.number,
                        order_id=event.order_id,
                        customer_id=event.customer_id,
                        product_id=line["product_id"],
                        sku=line["sku"],
                        on_date=event.invoice_date,
                        quantity=line["quantity"],
                        amount=line["net"],
                        position=position,
                    )
                self._add_up(batch, event, event.invoice_date, "net", "revenue")
            case Shipment.Dispatched():
                for line in event.lines:
                    batch.insert(
                        self["costs"],
                        shipment_id=event.originator_id,
                        line=int(line["line"]),
                        document=event.number,
                        order_id=event.order_id,
                        customer_id=event.customer_id,
                        product_id=line["product_id"],
                        sku=line["sku"],
                        on_date=event.shipment_date,
                        quantity=line["quantity"],
                        amount=line["cost"],
                        position=position,
                    )
                self._add_up(batch, event, event.shipment_date, "cost", "cost")

    def _add_up(self, batch: Batch, event: Any, day: date, amount: str, side: str) -> None:
        """Add a document's lines (an invoice's or a shipment's) to its day's and month's
        totals per order, customer and product, as revenue or as cost (`side`)."""
        moved: dict[tuple[str, UUID], tuple[Decimal, Decimal]] = {}
        order_id = event.order_id or NO_ORDER
        for line in event.lines:
            for key in (
                ("order", order_id),
                ("customer", event.customer_id),
                ("product", line["product_id"]),
            ):
                total, quantity = moved.get(key, (ZERO, ZERO))
                moved[key] = (total + line[amount], quantity + line["quantity"])
            if batch.get(self["skus"], line["product_id"]) is None:
                batch.insert(self["skus"], product_id=line["product_id"], sku=line["sku"])
        quantity_of = "invoiced" if side == "revenue" else "shipped"
        month = day.replace(day=1)
        for table, period, when in (
            (self["days"], "day", day),
            (self["months"], "month", month),
            (self["ever"], None, None),
        ):
            for (kind, group_id), (total, quantity) in moved.items():
                key = (kind, group_id) if period is None else (kind, when, group_id)
                row = batch.get(table, key)
                if row is None:
                    row = batch.insert(
                        table,
                        **({} if period is None else {period: when}),
                        kind=kind,
                        group_id=group_id,
                        revenue=ZERO,
                        invoiced=ZERO,
                        cost=ZERO,
                        shipped=ZERO,
                    )
                batch.update(
                    table,
                    key,
                    **{side: row[side] + total, quantity_of: row[quantity_of] + quantity},
                )

    # -- queries -------------------------------------------------------------------------------

    def report(
        self,
        conn: Connection,
        by: str,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        customers: Table | None = None,
        sort: str = "name",
        limit: int | None = None,
        offset: int = 0,
        explain: Explanation | None = None,
        up_to: int | None = None,
    ) -> dict[str, Any]:
        """Revenue, cost of goods sold, gross margin and margin % per order, customer or
        product, with totals; customers are named from `customers` (the customers read
        model's parties: id, name). The rows in `sort`'s order (SORTS), `limit` of them (all
        with None) from `offset`; the totals and `total_rows` are of them all. The database
        sorts and pages: only the page's rows are read. With `up_to`, as the report stood at
        that position: the invoice and shipment lines up to it added up (lines are only ever
        added, each with its position; decision 0019). Explained: revenue by the invoice
        lines, cost by the shipment lines, the margin by both (margin % is their ratio)."""
        if by not in GROUPS:
            raise ValueError(f"by must be one of {', '.join(GROUPS)}")
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        answer: dict[str, Any] = {
            "by": by,
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "sort": sort,
            "rows": [],
            "total_rows": 0,
            "limit": limit,
            "offset": offset,
            "total": figures(ZERO, ZERO),
        }
        shape: PeriodShape | _Posted | None = None  # (since the beginning: a row per group)
        params: dict[str, Any] = {"kind": by}
        if up_to is not None:
            shape = _Posted(by, date_from is not None, date_to is not None)
            params.update(up_to=up_to, first=date_from, last=date_to)
        elif date_from is not None or date_to is not None:
            found = period_shape(date_from, date_to)
            if found is None:
                return attach(answer, explain)
            shape, period = found
            params.update(period)
        count, revenue, cost = conn.execute(
            made_once(self.metadata, "sizes", shape, lambda: self._sizes_statement(shape)), params
        ).one()
        labels = self._label_table(by, customers)
        page = made_once(
            self.metadata,
            "page",
            (shape, sort, labels.name if labels is not None else None, conn.dialect.name),
            lambda: self._page_statement(shape, sort, labels, conn.dialect.name),
        )
        params.update(limit=ALL_ROWS if limit is None else limit, offset=offset)
        for key, r_amount, r_qty, c_amount, c_qty, label in conn.execute(page, params):
            row: dict[str, Any] = {f"{by}_id": None if key == NO_ORDER else str(key), by: label}
            row.update(figures(r_amount, c_amount))
            if by == "product":
                row.update(quantity_invoiced=number(r_qty), quantity_shipped=number(c_qty))
            answer["rows"].append(row)
        answer["total_rows"] = count
        answer["total"] = figures(revenue or ZERO, cost or ZERO)
        if explain is not None:
            self._explain(explain, conn, answer, date_from, date_to, up_to)
        return attach(answer, explain)

    def _groups(self, shape: PeriodShape | _Posted | None) -> Select[Any]:
        """The revenue, quantity invoiced, cost and quantity shipped per group (group_id) of a
        report of `shape`: from the running totals, or, as of a position, from the lines."""
        if isinstance(shape, _Posted):
            return self._posted_statement(shape)
        return self._totals_statement(shape)

    def _posted_statement(self, shape: _Posted) -> Select[Any]:
        """The sums per group of `shape.by` of the invoice and shipment lines posted up to
        `up_to`, dated from `first` and to `last` where asked (parameters)."""
        parts = []
        for table, side in ((self["revenue"], 0), (self["costs"], 1)):
            key: Any = table.c[f"{shape.by}_id"]
            if shape.by == "order":
                key = func.coalesce(key, literal(NO_ORDER, Uuid))
            moved, zero = [table.c.amount, table.c.quantity], [literal(0), literal(0)]
            figures = [*zero, *moved] if side else [*moved, *zero]
            part = select(
                key.label("group_id"),
                *(f.label(n) for f, n in zip(figures, FIGURES, strict=True)),
            ).where(table.c.position <= bindparam("up_to", type_=Integer))
            if shape.from_first:
                part = part.where(table.c.on_date >= bindparam("first", type_=Date))
            if shape.to_last:
                part = part.where(table.c.on_date <= bindparam("last", type_=Date))
            parts.append(part)
        lines = union_all(*parts).subquery()
        types = (Amount(), Quantity(), Amount(), Quantity())
        return select(
            lines.c.group_id,
            *(
                type_coerce(func.sum(lines.c[n]), kind).label(n)
                for n, kind in zip(FIGURES, types, strict=True)
            ),
        ).group_by(lines.c.group_id)

    def _label_table(self, by: str, customers: Table | None) -> Table | None:
        """The table that labels the groups of `by`: its first column the group's id, its
        second the label (an order's number, a customer's name, a product's SKU)."""
        if by == "customer":
            return customers
        return self["orders"] if by == "order" else self["skus"]

    def _sizes_statement(self, period: PeriodShape | _Posted | None) -> Select[int, Any, Any]:
        """How many groups of a `kind` (parameter) a period of shape `period` has, and their
        revenue and cost in all."""
        groups = self._groups(period).subquery()
        return select(func.count(), func.sum(groups.c.revenue), func.sum(groups.c.cost))

    def _page_statement(
        self, period: PeriodShape | _Posted | None, sort: str, labels: Table | None, dialect: str
    ) -> Select[Any]:
        """A page (parameters limit, offset) of the groups of a `kind` over a period of shape
        `period`, in `sort`'s order (ties, and groups without a label or a margin %, by
        id), each with its label from `labels`. Labels compare as their characters' code
        points on both databases (as Python sorts text), not by a locale's collation."""
        groups = self._groups(period).subquery()
        revenue, cost, group_id = groups.c.revenue, groups.c.cost, groups.c.group_id
        if labels is None:
            label: Any = null()
            query = select(groups, label)
        else:
            key, name = list(labels.c)[:2]
            label = name.collate("C") if dialect == "postgresql" else name
            query = select(groups, name).outerjoin(labels, key == group_id)
        figure = sort.lstrip("-")
        if figure == "name":
            order: list[Any] = [label.is_(None), label]
        elif figure == "revenue":
            order = [revenue]
        elif figure == "margin":
            order = [revenue - cost]
        else:
            order = [revenue == 0, (revenue - cost) * 1.0 / func.nullif(revenue, 0)]
        if sort.startswith("-"):
            order[-1] = order[-1].desc()
        return (
            query.order_by(*order, group_id)
            .limit(bindparam("limit", type_=BigInteger))
            .offset(bindparam("offset", type_=BigInteger))
        )

    def _explain(
        self,
        x: Explanation,
        conn: Connection,
        answer: dict[str, Any],
        date_from: date | None,
        date_to: date | None,
        up_to: int | None,
    ) -> None:
        by = answer["by"]
        period = (date_from, date_to, up_to)
        revenue = self._lines(conn, self["revenue"], by, INVOICED, *period)
        cost = self._lines(conn, self["costs"], by, SHIPPED, *period)
        for i, row in enumerate(answer["rows"]):
            r_amounts, r_quantities = revenue.get(row[f"{by}_id"], ([], []))
            c_amounts, c_quantities = cost.get(row[f"{by}_id"], ([], []))
            x.add(pointer("rows", i, "revenue"), r_amounts)
            x.add(pointer("rows", i, "cost_of_goods_sold"), c_amounts)
            x.add(pointer("rows", i, "gross_margin"), [*r_amounts, *negated(c_amounts)])
            if by == "product":
                x.add(pointer("rows", i, "quantity_invoiced"), r_quantities)
                x.add(pointer("rows", i, "quantity_shipped"), c_quantities)
        all_revenue = [c for amounts, _ in revenue.values() for c in amounts]
        all_cost = [c for amounts, _ in cost.values() for c in amounts]
        x.add("/total/revenue", all_revenue)
        x.add("/total/cost_of_goods_sold", all_cost)
        x.add("/total/gross_margin", [*all_revenue, *negated(all_cost)])

    @staticmethod
    def _lines(
        conn: Connection,
        table: Table,
        by: str,
        event: str,
        date_from: date | None,
        date_to: date | None,
        up_to: int | None = None,
    ) -> dict[str | None, tuple[list[Contribution], list[Contribution]]]:
        """Per group (by its id as the report shows it): each line's amount and quantity
        (posted up to `up_to`, where given)."""
        query = select(table.c[f"{by}_id"], table.c.position, table.c.amount, table.c.quantity)
        if up_to is not None:
            query = query.where(table.c.position <= up_to)
        if date_from is not None:
            query = query.where(table.c.on_date >= date_from)
        if date_to is not None:
            query = query.where(table.c.on_date <= date_to)
        out: dict[str | None, tuple[list[Contribution], list[Contribution]]] = {}
        for key, position, amount, quantity in conn.execute(query).all():
            shown = None if key is None else str(key)
            amounts, quantities = out.setdefault(shown, ([], []))
            amounts.append(Contribution(position, event, amount))
            quantities.append(Contribution(position, event, quantity))
        return out

    def totals(self, conn: Connection) -> tuple[Decimal, Decimal]:
        """All revenue and all cost of goods sold."""
        out = []
        for table in (self["revenue"], self["costs"]):
            value = conn.execute(select(func.sum(table.c.amount))).scalar()
            out.append(value if value is not None else ZERO)
        return out[0], out[1]

    def _totals_statement(self, period: PeriodShape | None) -> Select[Any]:
        """The sums per group of a `kind` (parameter) from the running totals, over a period
        of shape `period` (its days and months), or since the beginning."""
        if period is None:
            return _totals_query(self["ever"])  # a row per group already
        moved = period_rows(self["days"], self["months"], period, _totals_query)
        return select(
            moved.c.group_id,
            *(func.sum(moved.c[n]).label(n) for n in FIGURES),
        ).group_by(moved.c.group_id)


class _Posted(NamedTuple):
    """The shape of a report as of a position, read from the lines: its grouping, and
    whether it has a first and a last day."""

    by: str
    from_first: bool
    to_last: bool


def _totals_columns(period: str | None = None) -> list[Column[Any]]:
    return [
        # Kind first: a report reads one kind's rows, as one range of the key.
        Column("kind", String(10), primary_key=True),  # order, customer or product
        *([Column(period, Date, primary_key=True)] if period else []),
        Column("group_id", Uuid, primary_key=True),
        Column("revenue", Amount(), nullable=False),
        Column("invoiced", Quantity(), nullable=False),
        Column("cost", Amount(), nullable=False),
        Column("shipped", Quantity(), nullable=False),
    ]


def _totals_query(table: Table, *where: Any) -> Select[Any]:
    columns = (table.c[n] for n in ("group_id", *FIGURES))
    return select(*columns).where(table.c.kind == bindparam("kind"), *where)


def figures(revenue: Decimal, cost: Decimal) -> dict[str, str | None]:
    margin = revenue - cost
    percent = round_money(margin * 100 / revenue) if revenue else None
    return {
        "revenue": fmt(revenue),
        "cost_of_goods_sold": fmt(cost),
        "gross_margin": fmt(margin),
        "margin_percent": str(percent) if percent is not None else None,
    }


def number(quantity: Decimal) -> str:
    """A quantity without trailing zeros (15, 2.5), never in exponent form."""
    return f"{quantity.normalize():f}"
