"""Profitability: revenue net of VAT per invoice line and the cost of goods sold per shipment
line (the FIFO cost decided when the goods left), grouped by order, customer or product.

Revenue is counted when invoiced and cost when shipped, exactly as the ledger posts them, so
the totals equal the sales and cost-of-goods-sold accounts (reconciliation checks it). An
order shipped but not yet invoiced therefore shows its cost before its revenue.

By customer and by product the report reads running totals per day and per month (as the
ledger's, see docs/decisions/0008), so that it costs the same however dense the history; by
order, and drill-down, read the lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
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
    select,
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
INVOICED = event_name(Invoice.Issued)
SHIPPED = event_name(Shipment.Dispatched)


class Profitability(Projection):
    name = "profitability"
    version = 4
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
                self._add_up(
                    batch, event.invoice_date, event.customer_id, event.lines, "net", "revenue"
                )
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
                self._add_up(
                    batch, event.shipment_date, event.customer_id, event.lines, "cost", "cost"
                )

    def _add_up(
        self,
        batch: Batch,
        day: date,
        customer_id: UUID,
        lines: list[dict[str, Any]],
        amount: str,
        side: str,
    ) -> None:
        """Add a document's lines to its day's and month's totals per customer and product,
        as revenue or as cost (`side`)."""
        moved: dict[tuple[str, UUID], tuple[Decimal, Decimal]] = {}
        for line in lines:
            for key in (("customer", customer_id), ("product", line["product_id"])):
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
        names: dict[UUID, str] | None = None,
        explain: Explanation | None = None,
    ) -> dict[str, Any]:
        """Revenue, cost of goods sold, gross margin and margin % per order, customer or
        product, with totals; `names` labels customers. Explained: revenue by the invoice
        lines, cost by the shipment lines, the margin by both (margin % is their ratio)."""
        if by not in GROUPS:
            raise ValueError(f"by must be one of {', '.join(GROUPS)}")
        if by == "order":
            revenue = self._sums(conn, self["revenue"], by, date_from, date_to)
            cost = self._sums(conn, self["costs"], by, date_from, date_to)
        else:
            revenue, cost = self._totals(conn, by, date_from, date_to)
        labels = self._labels(conn, by, names or {})
        rows = []
        for key in sorted(revenue.keys() | cost.keys(), key=lambda k: labels.get(k) or str(k)):
            r_amount, r_qty = revenue.get(key, (ZERO, ZERO))
            c_amount, c_qty = cost.get(key, (ZERO, ZERO))
            row: dict[str, Any] = {f"{by}_id": str(key), by: labels.get(key)}
            row.update(figures(r_amount, c_amount))
            if by == "product":
                row.update(quantity_invoiced=number(r_qty), quantity_shipped=number(c_qty))
            rows.append(row)
        total_revenue = sum((v[0] for v in revenue.values()), ZERO)
        total_cost = sum((v[0] for v in cost.values()), ZERO)
        answer = {
            "by": by,
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "rows": rows,
            "total": figures(total_revenue, total_cost),
        }
        if explain is not None:
            self._explain(explain, conn, answer, date_from, date_to)
        return attach(answer, explain)

    def _explain(
        self,
        x: Explanation,
        conn: Connection,
        answer: dict[str, Any],
        date_from: date | None,
        date_to: date | None,
    ) -> None:
        by = answer["by"]
        revenue = self._lines(conn, self["revenue"], by, INVOICED, date_from, date_to)
        cost = self._lines(conn, self["costs"], by, SHIPPED, date_from, date_to)
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
    ) -> dict[str, tuple[list[Contribution], list[Contribution]]]:
        """Per group (by its id as the report shows it): each line's amount and quantity."""
        query = select(table.c[f"{by}_id"], table.c.position, table.c.amount, table.c.quantity)
        if date_from is not None:
            query = query.where(table.c.on_date >= date_from)
        if date_to is not None:
            query = query.where(table.c.on_date <= date_to)
        out: dict[str, tuple[list[Contribution], list[Contribution]]] = {}
        for key, position, amount, quantity in conn.execute(query).all():
            amounts, quantities = out.setdefault(str(key), ([], []))
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

    def _sums(
        self, conn: Connection, table: Table, by: str, date_from: date | None, date_to: date | None
    ) -> dict[Any, tuple[Decimal, Decimal]]:
        key = table.c[f"{by}_id"]
        query = select(key, func.sum(table.c.amount), func.sum(table.c.quantity)).group_by(key)
        if date_from is not None:
            query = query.where(table.c.on_date >= date_from)
        if date_to is not None:
            query = query.where(table.c.on_date <= date_to)
        return {k: (amount, qty) for k, amount, qty in conn.execute(query).all()}

    def _totals(
        self, conn: Connection, by: str, date_from: date | None, date_to: date | None
    ) -> tuple[dict[Any, tuple[Decimal, Decimal]], dict[Any, tuple[Decimal, Decimal]]]:
        """Revenue and cost, each (amount, quantity), per customer or product: whole months
        from the monthly totals, the days of the edge months from the daily ones, or, for no
        period at all, the totals since the beginning. A group
        with cost only shows zero revenue, as it would with no revenue lines."""
        shape: PeriodShape | None = None  # (since the beginning: a row per group)
        params: dict[str, Any] = {}
        if date_from is not None or date_to is not None:
            found = period_shape(date_from, date_to)
            if found is None:
                return {}, {}
            shape, params = found
        query = made_once(self.metadata, "totals", shape, lambda: self._totals_statement(shape))
        revenue, cost = {}, {}
        for key, r_amount, r_quantity, c_amount, c_quantity in conn.execute(
            query, {**params, "kind": by}
        ).all():
            revenue[key] = (r_amount, r_quantity)
            cost[key] = (c_amount, c_quantity)
        return revenue, cost

    def _totals_statement(self, period: PeriodShape | None) -> Select[Any]:
        """`_totals`' sums per group of a `kind` (parameter), over a period of shape
        `period`, or since the beginning."""
        if period is None:
            moved = _totals_query(self["ever"]).subquery()
        else:
            moved = period_rows(self["days"], self["months"], period, _totals_query)
        return select(
            moved.c.group_id,
            *(func.sum(moved.c[n]) for n in ("revenue", "invoiced", "cost", "shipped")),
        ).group_by(moved.c.group_id)

    def _labels(self, conn: Connection, by: str, names: dict[UUID, str]) -> dict[Any, str]:
        if by == "customer":
            return dict(names)
        if by == "order":
            orders = self["orders"]
            return {
                row.id: row.number for row in conn.execute(select(orders.c.id, orders.c.number))
            }
        skus = self["skus"]
        return {row.product_id: row.sku for row in conn.execute(select(skus))}


def _totals_columns(period: str | None = None) -> list[Column[Any]]:
    return [
        # Kind first: a report reads one kind's rows, as one range of the key.
        Column("kind", String(10), primary_key=True),  # customer or product
        *([Column(period, Date, primary_key=True)] if period else []),
        Column("group_id", Uuid, primary_key=True),
        Column("revenue", Amount(), nullable=False),
        Column("invoiced", Quantity(), nullable=False),
        Column("cost", Amount(), nullable=False),
        Column("shipped", Quantity(), nullable=False),
    ]


def _totals_query(table: Table, *where: Any) -> Select[Any]:
    columns = (table.c[n] for n in ("group_id", "revenue", "invoiced", "cost", "shipped"))
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
