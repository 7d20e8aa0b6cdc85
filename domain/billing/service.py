"""Billing commands: invoice what was shipped, receive payments, mark invoices overdue."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.billing.invoices import Invoice
from domain.billing.payments import Payment, PaymentMethod
from domain.billing.receivables import ReceivableAccount, receivable_id
from domain.core import Core, Result, command
from domain.crm.parties import Party
from domain.errors import InvalidInput, RuleViolation
from domain.ledger.postings import invoice_entry, payment_entry
from domain.sales.orders import SalesOrder
from domain.sales.pricing import totals
from domain.values import money, optional_text

INVOICE_SERIES = "SAT"


class BillingCommands(Core):
    @command
    def invoice_order(
        self, order_id: UUID, *, invoice_date: date | None = None, series: str = INVOICE_SERIES
    ) -> Result:
        """Invoice the shipped, not yet invoiced quantities of an order: number it (gapless),
        set its due date from the payment terms, post Dr receivables / Cr sales, Cr VAT, and
        settle it from the customer's unallocated credit if there is any."""
        order = self._get(SalesOrder, order_id, "order")
        quantities = {n: order.open_to_invoice(n) for n in order.lines}
        quantities = {n: q for n, q in quantities.items() if q > 0}
        if not quantities:
            raise RuleViolation(f"nothing of order {order.number} is shipped and not invoiced")
        if not (len(series) == 3 and series.isalpha() and series.isupper()):
            raise InvalidInput("series", "a series is three capital letters, e.g. SAT")
        day = invoice_date or self.today()
        invoice_id = uuid.uuid4()
        numbers = self._series(series, day.year)
        number = numbers.issue(invoice_id)
        lines = [order.lines[n].for_quantity(q) for n, q in sorted(quantities.items())]
        invoice_totals = totals(lines)
        due = day + timedelta(days=order.payment_terms_days)
        invoice = Invoice.issue(
            invoice_id=invoice_id,
            number=number,
            series=series,
            invoice_date=day,
            due_date=due,
            customer_id=order.customer_id,
            order_id=order.id,
            currency=order.currency,
            lines=[line.as_dict() for line in lines],
            totals=invoice_totals,
        )
        order.record_invoice(invoice_id, quantities)
        account = self._receivables(order.customer_id)
        account.add_invoice(invoice_id, number, day, due, invoice_totals["total"])
        entry = invoice_entry(
            self.chart,
            invoice,
            number=number,
            invoice_date=day,
            customer_id=order.customer_id,
            totals=invoice_totals,
        )
        return self._save(invoice, order, numbers, account, entry, number=number)

    @command
    def receive_payment(
        self,
        *,
        customer_id: UUID,
        amount: Decimal,
        method: str,
        payment_date: date | None = None,
        allocations: list[dict[str, Any]] | None = None,
        reference: str | None = None,
    ) -> Result:
        """Money from a customer: allocated as asked, or to the oldest open invoices first;
        what is left stays as the customer's credit. Posts Dr bank or cash / Cr receivables."""
        customer = self._get(Party, customer_id, "customer")
        paid = money("amount", amount, allow_zero=False)
        try:
            how = PaymentMethod(method)
        except ValueError:
            raise InvalidInput("method", "must be 'bank' or 'cash'") from None
        requested = None
        invoice_numbers: dict[UUID, str] = {}
        if allocations is not None:
            requested = []
            for i, a in enumerate(allocations):
                invoice_id = a.get("invoice_id")
                if not isinstance(invoice_id, UUID):
                    raise InvalidInput(f"allocations[{i}].invoice_id", "must be an invoice id")
                invoice = self._get(Invoice, invoice_id, "invoice")
                if invoice.customer_id != customer.id:
                    raise InvalidInput(
                        f"allocations[{i}].invoice_id",
                        f"invoice {invoice.number} is not an invoice of this customer",
                    )
                invoice_numbers[invoice_id] = invoice.number
                requested.append(
                    (
                        invoice_id,
                        money(f"allocations[{i}].amount", a.get("amount"), allow_zero=False),
                    )
                )
        account = self._receivables(customer.id)
        decided = account.allocate(paid, requested, invoice_numbers)
        payment_id = uuid.uuid4()
        day = payment_date or self.today()
        numbers = self._series("THS", day.year)
        number = numbers.issue(payment_id)
        unallocated = account.add_payment(payment_id, paid, decided)
        payment = Payment.receive(
            payment_id=payment_id,
            number=number,
            customer_id=customer.id,
            amount=paid,
            method=how,
            payment_date=day,
            reference=optional_text("reference", reference, max_length=100),
            allocations=decided,
            unallocated=unallocated,
        )
        entry = payment_entry(
            self.chart,
            payment,
            number=number,
            payment_date=day,
            customer_id=customer.id,
            amount=paid,
            method=how.value,
        )
        return self._save(
            payment,
            account,
            numbers,
            entry,
            number=number,
            allocations=[{"invoice_id": str(i), "amount": str(a)} for i, a in decided],
            unallocated=str(unallocated),
        )

    @command
    def mark_invoice_overdue(self, invoice_id: UUID, today: date) -> Result:
        """Mark an unpaid invoice past its due date overdue (the scheduler's job)."""
        invoice = self._get(Invoice, invoice_id)
        account = self._receivables(invoice.customer_id)
        invoice.mark_overdue(today, still_open=account.is_open(invoice.id))
        return self._save(invoice)

    def _receivables(self, customer_id: UUID) -> ReceivableAccount:
        return self._find(ReceivableAccount, receivable_id(customer_id)) or ReceivableAccount.open(
            customer_id
        )
