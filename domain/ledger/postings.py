"""The posting rules: which balanced entry each business fact makes (see DOMAIN.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.base import Entity
from domain.ledger.chart import Chart
from domain.ledger.entries import JournalEntry, Line, credit, debit


def receipt_entry(
    chart: Chart,
    receipt: Entity,
    *,
    number: str,
    receipt_date: date,
    total: Decimal,
    supplier_id: UUID | None,
) -> JournalEntry:
    """Goods in: Dr inventory / Cr the supplier (payables) or, without one, opening equity."""
    other = (
        credit(chart.role("payables"), total, supplier_id)
        if supplier_id is not None
        else credit(chart.role("opening_equity"), total)
    )
    return JournalEntry.post(
        chart=chart,
        entry_date=receipt_date,
        description=f"Stock receipt {number}" + ("" if supplier_id else " (opening stock)"),
        lines=[debit(chart.role("inventory"), total), other],
        source_kind="stock_receipt",
        source=receipt,
        document=number,
    )


def shipment_entry(
    chart: Chart, shipment: Entity, *, number: str, shipment_date: date, cost: Decimal
) -> JournalEntry | None:
    """Goods out (perpetual inventory): Dr cost of goods sold / Cr inventory, at FIFO cost."""
    if not cost:
        return None
    return JournalEntry.post(
        chart=chart,
        entry_date=shipment_date,
        description=f"Shipment {number}: cost of goods sold",
        lines=[
            debit(chart.role("cost_of_goods_sold"), cost),
            credit(chart.role("inventory"), cost),
        ],
        source_kind="shipment",
        source=shipment,
        document=number,
    )


def invoice_entry(
    chart: Chart,
    invoice: Entity,
    *,
    number: str,
    invoice_date: date,
    customer_id: UUID,
    totals: dict[str, Any],
) -> JournalEntry | None:
    """A sales invoice: Dr receivables (gross) / Cr sales (net), Cr output VAT per rate.
    An invoice of nothing but free lines (a 100 % discount, a zero price) posts nothing."""
    if not Decimal(totals["total"]):
        return None
    lines: list[Line] = [
        debit(chart.role("receivables"), Decimal(totals["total"]), customer_id),
        credit(chart.role("sales"), Decimal(totals["untaxed"])),
    ]
    for rate, amount in totals["tax_by_rate"].items():
        lines.append(Line(chart.role("output_vat"), credit=Decimal(amount), memo=f"KDV %{rate}"))
    return JournalEntry.post(
        chart=chart,
        entry_date=invoice_date,
        description=f"Sales invoice {number}",
        lines=lines,
        source_kind="invoice",
        source=invoice,
        document=number,
    )


def payment_entry(
    chart: Chart,
    payment: Entity,
    *,
    number: str,
    payment_date: date,
    customer_id: UUID,
    amount: Decimal,
    method: str,
) -> JournalEntry:
    """Money in: Dr bank or cash / Cr receivables."""
    return JournalEntry.post(
        chart=chart,
        entry_date=payment_date,
        description=f"Customer payment {number} ({method})",
        lines=[
            debit(chart.role("bank" if method == "bank" else "cash"), amount),
            credit(chart.role("receivables"), amount, customer_id),
        ],
        source_kind="payment",
        source=payment,
        document=number,
    )
