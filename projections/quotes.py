"""Quotes and their lines, every revision kept (a revised quote stays readable as `revised`).

The expiry job reads `quotes` (id, number, status, valid_until, ...): see
docs/decisions/0003-order-to-cash.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Date, Integer, String, Text, Uuid

from domain.sales.quotes import Quote, QuoteStatus
from projections.engine import Batch, Projection
from projections.types import Amount, Percent, Quantity, UnitPrice, UtcDateTime


def money_by_rate(by_rate: dict[str, Any]) -> dict[str, str]:
    """Tax per VAT rate as JSON: {"20": "300.00"} (amounts as strings, never floats)."""
    return {str(rate): str(amount) for rate, amount in by_rate.items()}


def line_row(line: dict[str, Any]) -> dict[str, Any]:
    """The columns a priced line (domain.sales.pricing.PricedLine.as_dict) fills."""
    return {
        "line": int(line["line"]),
        "product_id": line["product_id"],
        "sku": line["sku"],
        "description": line["description"],
        "quantity": Decimal(line["quantity"]),
        "unit_price": Decimal(line["unit_price"]),
        "discount_percent": Decimal(line["discount_percent"]),
        "vat_rate": Decimal(line["vat_rate"]),
        "net": Decimal(line["net"]),
        "vat": Decimal(line["vat"]),
    }


def line_columns() -> list[Column[Any]]:
    return [
        Column("line", Integer, primary_key=True),
        Column("product_id", Uuid, nullable=False, index=True),
        Column("sku", String(40), nullable=False),
        Column("description", String(200), nullable=False),
        Column("quantity", Quantity(), nullable=False),
        Column("unit_price", UnitPrice(), nullable=False),
        Column("discount_percent", Percent(), nullable=False),
        Column("vat_rate", Percent(), nullable=False),
        Column("net", Amount(), nullable=False),
        Column("vat", Amount(), nullable=False),
    ]


class Quotes(Projection):
    name = "quotes"
    version = 1
    handles = (
        Quote.Drafted,
        Quote.Sent,
        Quote.Accepted,
        Quote.Rejected,
        Quote.Expired,
        Quote.Revised,
        Quote.Ordered,
    )

    def define_tables(self) -> None:
        self.table(
            "quotes",
            Column("id", Uuid, primary_key=True),
            Column("number", String(40), nullable=False, unique=True),
            Column("revision", Integer, nullable=False),
            Column("revision_of", Uuid, index=True),
            Column("revised_by", Uuid),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("opportunity_id", Uuid, index=True),
            Column("status", String(20), nullable=False, index=True),
            Column("valid_until", Date, nullable=False, index=True),
            Column("payment_terms_days", Integer, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("untaxed", Amount(), nullable=False),
            Column("tax", Amount(), nullable=False),
            Column("total", Amount(), nullable=False),
            Column("tax_by_rate", JSON, nullable=False),
            Column("order_id", Uuid),
            Column("created_at", UtcDateTime, nullable=False, index=True),
            Column("sent_at", UtcDateTime),
            Column("closed_at", UtcDateTime),
            Column("reject_reason", Text),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )
        self.table(
            "quote_lines",
            Column("quote_id", Uuid, primary_key=True),
            *line_columns(),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        quotes = self["quotes"]
        key = event.originator_id
        stamp = {"version": event.originator_version, "position": position}
        match event:
            case Quote.Drafted():
                totals = event.totals
                batch.insert(
                    quotes,
                    id=key,
                    number=event.number,
                    revision=event.revision,
                    revision_of=event.revision_of,
                    revised_by=None,
                    customer_id=event.customer_id,
                    opportunity_id=event.opportunity_id,
                    status=QuoteStatus.DRAFT.value,
                    valid_until=event.valid_until,
                    payment_terms_days=event.payment_terms_days,
                    currency=event.currency,
                    untaxed=Decimal(totals["untaxed"]),
                    tax=Decimal(totals["tax"]),
                    total=Decimal(totals["total"]),
                    tax_by_rate=money_by_rate(totals["tax_by_rate"]),
                    order_id=None,
                    created_at=event.timestamp,
                    **stamp,
                )
                for line in event.lines:
                    batch.insert(self["quote_lines"], quote_id=key, **line_row(line))
            case Quote.Sent():
                batch.update(
                    quotes, key, status=QuoteStatus.SENT.value, sent_at=event.timestamp, **stamp
                )
            case Quote.Accepted():
                self._close(batch, key, QuoteStatus.ACCEPTED, event, stamp)
            case Quote.Rejected():
                self._close(batch, key, QuoteStatus.REJECTED, event, stamp)
                batch.update(quotes, key, reject_reason=event.reason)
            case Quote.Expired():
                self._close(batch, key, QuoteStatus.EXPIRED, event, stamp)
            case Quote.Revised():
                self._close(batch, key, QuoteStatus.REVISED, event, stamp)
                batch.update(quotes, key, revised_by=event.new_quote_id)
            case Quote.Ordered():
                batch.update(quotes, key, order_id=event.order_id, **stamp)

    def _close(
        self, batch: Batch, key: Any, status: QuoteStatus, event: Any, stamp: dict[str, int]
    ) -> None:
        batch.update(self["quotes"], key, status=status.value, closed_at=event.timestamp, **stamp)
