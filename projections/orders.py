"""Sales orders and their lines: ordered, reserved, shipped and invoiced per line.

What a line has reserved comes from the order's own events: the reservation made when the
order was confirmed, less what shipments of that line took from it (as the stock item
releases it: never more than was reserved, and per product — see `_release`), and nothing
once the order is cancelled.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Integer, String, Text, Uuid

from domain.sales.orders import OrderStatus, SalesOrder
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.quotes import line_columns, line_row, money_by_rate
from projections.types import Amount, Quantity, UtcDateTime


def progress(done: Decimal, wanted: Decimal) -> str:
    """none, partial or full: how far shipping (or invoicing) of an order has come."""
    if done <= 0:
        return "none"
    return "full" if done >= wanted else "partial"


class Orders(Projection):
    name = "orders"
    # v2: a shipment releases line reservations per product, as the stock item does.
    version = 2
    handles = (
        SalesOrder.Placed,
        SalesOrder.Confirmed,
        SalesOrder.Cancelled,
        SalesOrder.ShipmentRecorded,
        SalesOrder.InvoiceRecorded,
    )

    def define_tables(self) -> None:
        self.table(
            "orders",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False, unique=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("quote_id", Uuid, index=True),
            Column("warehouse", String(20), nullable=False),
            Column("currency", String(3), nullable=False),
            Column("payment_terms_days", Integer, nullable=False),
            Column("status", String(20), nullable=False, index=True),
            Column("untaxed", Amount(), nullable=False),
            Column("tax", Amount(), nullable=False),
            Column("total", Amount(), nullable=False),
            Column("tax_by_rate", JSON, nullable=False),
            Column("line_count", Integer, nullable=False),
            # Sums over the lines, so that lists can show how far the order has come.
            Column("quantity_ordered", Quantity(), nullable=False),
            Column("quantity_reserved", Quantity(), nullable=False),
            Column("quantity_shipped", Quantity(), nullable=False),
            Column("quantity_invoiced", Quantity(), nullable=False),
            Column("shipment_state", String(10), nullable=False, index=True),
            Column("invoice_state", String(10), nullable=False, index=True),
            Column("created_at", UtcDateTime, nullable=False, index=True),
            Column("confirmed_at", UtcDateTime),
            Column("cancelled_at", UtcDateTime),
            Column("cancel_reason", Text),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )
        self.table(
            "order_lines",
            Column("order_id", Uuid, primary_key=True),
            *line_columns(),
            Column("reserved", Quantity(), nullable=False),
            Column("shipped", Quantity(), nullable=False),
            Column("invoiced", Quantity(), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        orders, lines = self["orders"], self["order_lines"]
        key = event.originator_id
        stamp = {"version": event.originator_version, "position": position}
        if isinstance(event, SalesOrder.Placed):
            totals = event.totals
            ordered = ZERO
            for line in event.lines:
                row = line_row(line)
                ordered += row["quantity"]
                batch.insert(lines, order_id=key, **row, reserved=ZERO, shipped=ZERO, invoiced=ZERO)
            batch.insert(
                orders,
                id=key,
                number=event.number,
                customer_id=event.customer_id,
                quote_id=event.quote_id,
                warehouse=event.warehouse,
                currency=event.currency,
                payment_terms_days=event.payment_terms_days,
                status=OrderStatus.DRAFT.value,
                untaxed=Decimal(totals["untaxed"]),
                tax=Decimal(totals["tax"]),
                total=Decimal(totals["total"]),
                tax_by_rate=money_by_rate(totals["tax_by_rate"]),
                line_count=len(event.lines),
                quantity_ordered=ordered,
                quantity_reserved=ZERO,
                quantity_shipped=ZERO,
                quantity_invoiced=ZERO,
                shipment_state="none",
                invoice_state="none",
                created_at=event.timestamp,
                **stamp,
            )
            return
        order = batch.get(orders, key)
        if order is None:
            return
        changes: dict[str, Any] = {}
        match event:
            case SalesOrder.Confirmed():
                reserved = self._add(batch, key, event.reservations, "reserved")
                changes.update(
                    status=OrderStatus.CONFIRMED.value,
                    confirmed_at=event.timestamp,
                    quantity_reserved=order["quantity_reserved"] + reserved,
                )
            case SalesOrder.Cancelled():
                for n in range(1, order["line_count"] + 1):
                    batch.update(lines, (key, n), reserved=ZERO)
                changes.update(
                    status=OrderStatus.CANCELLED.value,
                    cancelled_at=event.timestamp,
                    cancel_reason=event.reason,
                    quantity_reserved=ZERO,
                )
            case SalesOrder.ShipmentRecorded():
                released = self._release(batch, key, order["line_count"], event.lines)
                shipped = order["quantity_shipped"] + self._add(batch, key, event.lines, "shipped")
                changes.update(
                    quantity_shipped=shipped,
                    quantity_reserved=order["quantity_reserved"] - released,
                    shipment_state=progress(shipped, order["quantity_ordered"]),
                )
            case SalesOrder.InvoiceRecorded():
                invoiced = order["quantity_invoiced"] + self._add(
                    batch, key, event.lines, "invoiced"
                )
                changes.update(
                    quantity_invoiced=invoiced,
                    invoice_state=progress(invoiced, order["quantity_ordered"]),
                )
        batch.update(orders, key, **changes, **stamp)

    def _release(
        self, batch: Batch, key: Any, line_count: int, shipped: list[dict[str, Any]]
    ) -> Decimal:
        """Take a shipment off the lines' reservations as the stock item does: it holds one
        reservation per product for the order and releases up to what was shipped of that
        product, whichever line shipped it (domain.inventory.stock.StockItem.issue). A shipped
        line's own reservation goes first, then those of the order's other lines of the same
        product, so that the lines add up to what the stock holds for the order."""
        lines = self["order_lines"]
        rows = {n: batch.get(lines, (key, n)) for n in range(1, line_count + 1)}
        reserved = {n: row["reserved"] for n, row in rows.items() if row is not None}
        product = {n: row["product_id"] for n, row in rows.items() if row is not None}
        left: dict[Any, Decimal] = {}
        for d in shipped:
            n = int(d["line"])
            if n in reserved:
                left[product[n]] = left.get(product[n], ZERO) + Decimal(d["quantity"])
        own = [(int(d["line"]), Decimal(d["quantity"])) for d in shipped]
        others = [(n, reserved[n]) for n in sorted(reserved)]
        released = ZERO
        for n, most in [*own, *others]:
            if n not in reserved:
                continue
            taken = min(reserved[n], most, left[product[n]]) if product[n] in left else ZERO
            if taken > 0:
                reserved[n] -= taken
                left[product[n]] -= taken
                released += taken
                batch.update(lines, (key, n), reserved=reserved[n])
        return released

    def _add(self, batch: Batch, key: Any, quantities: list[dict[str, Any]], column: str) -> Any:
        """Add each `{"line", "quantity"}` to `column` of its line; returns the sum added."""
        total = ZERO
        for d in quantities:
            n, quantity = int(d["line"]), Decimal(d["quantity"])
            line = batch.get(self["order_lines"], (key, n))
            if line is not None:
                batch.update(self["order_lines"], (key, n), **{column: line[column] + quantity})
                total += quantity
        return total
