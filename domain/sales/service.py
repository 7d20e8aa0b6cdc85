"""Sales commands: quotes, orders, and shipping them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.core import Result, command
from domain.crm.opportunities import Opportunity
from domain.crm.parties import Party
from domain.errors import InvalidInput, RuleViolation
from domain.inventory.service import InventoryCommands
from domain.inventory.stock import StockItem, stock_id
from domain.inventory.warehouses import Warehouse, warehouse_code, warehouse_id
from domain.ledger.postings import shipment_entry
from domain.sales.orders import OrderStatus, SalesOrder
from domain.sales.pricing import PricedLine, discount, price_line, quantity, totals, unit_price
from domain.sales.quotes import Quote
from domain.sales.shipments import Shipment
from domain.values import FUNCTIONAL_CURRENCY, ZERO, currency, optional_text

DEFAULT_VALIDITY_DAYS = 30


class SalesCommands(InventoryCommands):
    # -- quotes ------------------------------------------------------------------------------

    @command
    def create_quote(
        self,
        *,
        customer_id: UUID,
        lines: list[dict[str, Any]],
        opportunity_id: UUID | None = None,
        valid_until: date | None = None,
        payment_terms_days: int | None = None,
        currency_code: str = FUNCTIONAL_CURRENCY,
    ) -> Result:
        customer = self._customer(customer_id)
        if opportunity_id is not None:
            opportunity = self._get(Opportunity, opportunity_id)
            if opportunity.customer_id != customer.id:
                raise InvalidInput("opportunity_id", "the opportunity is another customer's")
        quote_id = uuid.uuid4()
        series = self._series("TKL", self.today().year)
        quote = self._draft_quote(
            quote_id=quote_id,
            number=series.issue(quote_id),
            customer=customer,
            lines=lines,
            opportunity_id=opportunity_id,
            valid_until=valid_until,
            payment_terms_days=payment_terms_days,
            currency_code=currency_code,
        )
        return self._save(quote, series, number=quote.number)

    @command
    def send_quote(self, quote_id: UUID) -> Result:
        quote = self._get(Quote, quote_id)
        quote.send()
        return self._save(quote)

    @command
    def accept_quote(self, quote_id: UUID) -> Result:
        quote = self._get(Quote, quote_id)
        quote.accept(self.today())
        return self._save(quote)

    @command
    def reject_quote(self, quote_id: UUID, reason: str | None = None) -> Result:
        quote = self._get(Quote, quote_id)
        quote.reject(optional_text("reason", reason, max_length=500))
        return self._save(quote)

    @command
    def expire_quote(self, quote_id: UUID, today: date) -> Result:
        """Expire a quote past its validity (the scheduler's job); nothing if it is not."""
        quote = self._get(Quote, quote_id)
        quote.expire(today)
        return self._save(quote)

    @command
    def revise_quote(
        self,
        quote_id: UUID,
        *,
        lines: list[dict[str, Any]] | None = None,
        valid_until: date | None = None,
        payment_terms_days: int | None = None,
    ) -> Result:
        """A new quote (the next revision, same number with -R suffix) replaces this one,
        which stays readable as `revised`."""
        old = self._get(Quote, quote_id)
        customer = self._customer(old.customer_id)
        new = self._draft_quote(
            quote_id=uuid.uuid4(),
            customer=customer,
            lines=lines
            if lines is not None
            else [
                {
                    "product_id": d["product_id"],
                    "quantity": d["quantity"],
                    "unit_price": d["unit_price"],
                    "discount_percent": d["discount_percent"],
                }
                for d in old.lines
            ],
            opportunity_id=old.opportunity_id,
            valid_until=valid_until,
            payment_terms_days=old.payment_terms_days
            if payment_terms_days is None
            else payment_terms_days,
            currency_code=old.currency,
            number=f"{old.number.split('-R')[0]}-R{old.revision + 1}",
            revision=old.revision + 1,
            revision_of=old.id,
        )
        old.supersede(new.id)
        return self._save(new, old, number=new.number, revision_of=str(old.id))

    def _draft_quote(
        self,
        *,
        quote_id: UUID,
        number: str,
        customer: Party,
        lines: list[dict[str, Any]],
        opportunity_id: UUID | None,
        valid_until: date | None,
        payment_terms_days: int | None,
        currency_code: str,
        revision: int = 1,
        revision_of: UUID | None = None,
    ) -> Quote:
        today = self.today()
        until = valid_until or today + timedelta(days=DEFAULT_VALIDITY_DAYS)
        if until < today:
            raise InvalidInput("valid_until", "must not be in the past")
        terms = customer.payment_terms_days if payment_terms_days is None else payment_terms_days
        if terms < 0 or terms > 3650:
            raise InvalidInput("payment_terms_days", "must be between 0 and 3650")
        code = _functional_currency(currency_code)
        priced = self._price_lines(lines)
        return Quote.draft(
            quote_id=quote_id,
            number=number,
            revision=revision,
            revision_of=revision_of,
            customer_id=customer.id,
            opportunity_id=opportunity_id,
            currency=code,
            valid_until=until,
            payment_terms_days=terms,
            lines=[line.as_dict() for line in priced],
            totals=totals(priced),
        )

    def _price_lines(self, lines: list[dict[str, Any]]) -> list[PricedLine]:
        if not lines:
            raise InvalidInput("lines", "at least one line is needed")
        priced = []
        for i, line in enumerate(lines):
            field = f"lines[{i}]"
            product = self._product(field, line)
            price = line.get("unit_price")
            priced.append(
                price_line(
                    line=i + 1,
                    product_id=product.id,
                    sku=product.sku,
                    description=optional_text(f"{field}.description", line.get("description"))
                    or product.name,
                    quantity=quantity(f"{field}.quantity", line.get("quantity")),
                    unit_price=product.list_price
                    if price is None
                    else unit_price(f"{field}.unit_price", price),
                    discount_percent=discount(
                        f"{field}.discount_percent", line.get("discount_percent") or ZERO
                    ),
                    vat_rate=product.vat_rate,
                )
            )
        return priced

    def _customer(self, customer_id: UUID) -> Party:
        customer = self._get(Party, customer_id, "customer")
        if not customer.is_customer:
            raise RuleViolation(f"party {customer_id} is not a customer")
        return customer

    # -- orders ------------------------------------------------------------------------------

    @command
    def place_order(
        self,
        *,
        quote_id: UUID | None = None,
        customer_id: UUID | None = None,
        lines: list[dict[str, Any]] | None = None,
        warehouse: str | None = None,
        payment_terms_days: int | None = None,
    ) -> Result:
        """An order from an accepted quote (its lines and prices), or directly with lines."""
        code = warehouse_code("warehouse", warehouse)
        self._get(Warehouse, warehouse_id(code), "warehouse")
        order_id = uuid.uuid4()
        today = self.today()
        quote = None
        if quote_id is not None:
            if customer_id is not None or lines:
                raise InvalidInput("quote_id", "an order comes from a quote or has lines, not both")
            quote = self._get(Quote, quote_id)
            quote.record_order(order_id)
            customer = self._customer(quote.customer_id)
            priced = [PricedLine.from_dict(d) for d in quote.lines]
            terms = quote.payment_terms_days
            currency_code = quote.currency
        else:
            if customer_id is None:
                raise InvalidInput("customer_id", "give a quote_id, or a customer_id and lines")
            customer = self._customer(customer_id)
            priced = self._price_lines(lines or [])
            terms = (
                customer.payment_terms_days if payment_terms_days is None else payment_terms_days
            )
            if terms < 0 or terms > 3650:
                raise InvalidInput("payment_terms_days", "must be between 0 and 3650")
            currency_code = FUNCTIONAL_CURRENCY
        series = self._series("SIP", today.year)
        order = SalesOrder.place(
            order_id=order_id,
            number=series.issue(order_id),
            customer_id=customer.id,
            quote_id=quote_id,
            warehouse=code,
            currency=currency_code,
            payment_terms_days=terms,
            lines=priced,
            totals=totals(priced),
        )
        return self._save(order, quote, series, number=order.number)

    @command
    def confirm_order(self, order_id: UUID) -> Result:
        """Confirm, reserving what is available of each stocked line (the rest is backordered)."""
        order = self._get(SalesOrder, order_id)
        items = self._stock_items(order)
        reserved: dict[int, Decimal] = {}
        for n, line in order.lines.items():
            item = items.get(line.product_id)
            if item is not None:
                got = item.reserve(order.id, order.open_to_ship(n))
                if got:
                    reserved[n] = got
        order.confirm(reserved)
        return self._save(order, *items.values())

    @command
    def cancel_order(self, order_id: UUID, reason: str | None = None) -> Result:
        """Cancel what is not shipped yet, releasing its reservations."""
        order = self._get(SalesOrder, order_id)
        order.cancel(optional_text("reason", reason, max_length=500))
        items = self._stock_items(order)
        for item in items.values():
            item.release(order.id)
        return self._save(order, *items.values())

    # -- shipments ---------------------------------------------------------------------------

    @command
    def ship_order(
        self,
        order_id: UUID,
        *,
        lines: list[dict[str, Any]] | None = None,
        shipment_date: date | None = None,
    ) -> Result:
        """Ship lines of a confirmed order (by default all that is open and in stock), issuing
        stock at the FIFO cost decided now and posting Dr cost of goods sold / Cr inventory."""
        order = self._get(SalesOrder, order_id)
        if order.status != OrderStatus.CONFIRMED:
            raise RuleViolation(f"cannot ship order {order.number}: it is {order.status}")
        shipment_id = uuid.uuid4()
        day = shipment_date or self.today()
        wanted = self._quantities_to_ship(order, lines)
        items: dict[UUID, StockItem] = {}
        shipped: list[dict[str, Any]] = []
        total_cost = ZERO
        for n, qty in wanted.items():
            line = order.lines[n]
            product = self._product(f"lines[{n}]", {"product_id": line.product_id})
            cost = ZERO
            if product.is_stocked:
                key = stock_id(product.id, order.warehouse)
                item = items.get(key) or self._find(StockItem, key)
                if item is None:
                    raise RuleViolation(
                        f"cannot ship {qty} of {product.sku}: none in {order.warehouse}"
                    )
                items[key] = item
                cost = item.issue(shipment_id, qty, order_id=order.id)
                total_cost += cost
            shipped.append(
                {
                    "line": n,
                    "product_id": product.id,
                    "sku": product.sku,
                    "quantity": qty,
                    "cost": cost,
                }
            )
        order.record_shipment(shipment_id, wanted)
        series = self._series("IRS", day.year)
        number = series.issue(shipment_id)
        shipment = Shipment.dispatch(
            shipment_id=shipment_id,
            number=number,
            order_id=order.id,
            customer_id=order.customer_id,
            warehouse=order.warehouse,
            shipment_date=day,
            lines=shipped,
            cost=total_cost,
        )
        entry = shipment_entry(
            self.chart, shipment, number=number, shipment_date=day, cost=total_cost
        )
        return self._save(shipment, order, series, entry, *items.values(), number=number)

    def _quantities_to_ship(
        self, order: SalesOrder, lines: list[dict[str, Any]] | None
    ) -> dict[int, Decimal]:
        if lines is not None:
            if not lines:
                raise InvalidInput("lines", "give at least one line, or leave lines out")
            wanted: dict[int, Decimal] = {}
            for i, line in enumerate(lines):
                n = line.get("line")
                if not isinstance(n, int) or n not in order.lines:
                    raise InvalidInput(f"lines[{i}].line", f"order {order.number} has no line {n}")
                if n in wanted:
                    raise InvalidInput(f"lines[{i}].line", f"line {n} is given twice")
                wanted[n] = quantity(f"lines[{i}].quantity", line.get("quantity"))
            return wanted
        wanted = {}
        items = self._stock_items(order)
        # What this order may take of each product: on hand, less what others reserved.
        free = {
            product_id: item.on_hand - (item.reserved - item.reserved_for(order.id))
            for product_id, item in items.items()
        }
        for n, priced in order.lines.items():
            open_qty = order.open_to_ship(n)
            if open_qty <= 0:
                continue
            product = self._product(f"lines[{n}]", {"product_id": priced.product_id})
            if not product.is_stocked:
                wanted[n] = open_qty
                continue
            qty = min(open_qty, free.get(product.id, ZERO))
            if qty > 0:
                wanted[n] = qty
                free[product.id] -= qty
        if not wanted:
            raise RuleViolation(f"nothing of order {order.number} is open and in stock to ship")
        return wanted

    def _stock_items(self, order: SalesOrder) -> dict[UUID, StockItem]:
        """The stock items an order's products have in its warehouse, each loaded once (an
        order may have several lines of one product)."""
        items = {}
        for product_id in {line.product_id for line in order.lines.values()}:
            item = self._find(StockItem, stock_id(product_id, order.warehouse))
            if item is not None:
                items[product_id] = item
        return items


def _functional_currency(code: str) -> str:
    code = currency("currency", code)
    if code != FUNCTIONAL_CURRENCY:
        raise InvalidInput(
            "currency",
            f"documents are in {FUNCTIONAL_CURRENCY} for now; foreign-currency documents need "
            "exchange rates, which tekil does not record yet",
        )
    return code
