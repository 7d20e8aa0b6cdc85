"""The business under random use: a hypothesis state machine runs random sequences of CRM and
order-to-cash commands, valid and invalid, on a real SQLite store with every read model fed
from it, against a small model of what should have happened.

After every step the ledger balances (per entry and in total), no stock is negative, each
invoice is open by its total less what settled it, reconciliation agrees, and the read models
say what the model says. Rejected commands raise the domain's error and record nothing. At the
end a rebuild from position 0 gives exactly the rows live processing gave.

The run is bounded for CI; `TEKIL_INVARIANT_EXAMPLES` (and `TEKIL_INVARIANT_STEPS`) make it
longer, see bench/invariants.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import func, select

from api.services import Services
from domain import context
from domain.context import CommandContext
from domain.core import Result
from domain.crm.parties import PartyRole
from domain.errors import DomainError, InvalidInput, NotFound, RuleViolation
from domain.settings import Settings
from projections.reconciliation import READ_MODELS, reconcile
from projections.reconciliation import positions as read_positions
from projections.runner import rebuild
from tests.conftest import read_model_rows

EXAMPLES = int(os.environ.get("TEKIL_INVARIANT_EXAMPLES", "15"))
STEPS = int(os.environ.get("TEKIL_INVARIANT_STEPS", "40"))

CENT = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)
SKUS = ("W-1", "W-2", "SRV-1")
WAREHOUSES = ("MAIN", "DEPO", "MAIN")  # MAIN twice as often
EMAILS = ("ali@veli.com", "ayse@anadolu.com.tr", None)
OPEN_STAGES = ("prospecting", "qualification", "proposal", "negotiation")
DEFAULT_VALIDITY_DAYS = 30
STATS: Counter[str] = Counter()  # commands carried out and rejected, over the whole run
NONE = (None,) * 6  # how much likelier no fault is than any one fault

amounts = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100)
quantities = st.sampled_from(["1", "2", "3", "5", "8", "0.5", "2.25", "12"]).map(Decimal)
prices = st.sampled_from(["0", "0.01", "9.99", "100", "250.50", "1333.33"]).map(Decimal)
costs = st.sampled_from(["0", "0.333333", "1", "60", "70.25", "99.999999"]).map(Decimal)
discounts = st.sampled_from(["0", "0", "5", "12.5", "33.3333", "100"]).map(Decimal)
vat_rates = st.sampled_from([20, 10, 1, 0])
bad_quantities = st.sampled_from(["0", "-1", "-0.5", "0.00001", "abc"])


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def priced(
    quantity: Decimal, price: Decimal, discount: Decimal, rate: Decimal
) -> tuple[Decimal, Decimal]:
    """The line's net and VAT, each rounded half up to cents (DOMAIN.md: tax per line)."""
    net = money(quantity * price * (HUNDRED - discount) / HUNDRED)
    return net, money(net * rate / HUNDRED)


# -- the model: what should have happened ------------------------------------------------------


@dataclass
class Product:
    id: UUID
    sku: str
    price: Decimal
    vat: Decimal
    stocked: bool


@dataclass
class Stock:
    on_hand: Decimal = ZERO
    reserved: dict[UUID, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    @property
    def reserved_total(self) -> Decimal:
        return sum(self.reserved.values(), ZERO)

    def free_for(self, order_id: UUID) -> Decimal:
        return self.on_hand - (self.reserved_total - self.reserved[order_id])


@dataclass
class Line:
    product: Product
    quantity: Decimal
    price: Decimal
    discount: Decimal


@dataclass
class Quote:
    id: UUID
    customer: UUID
    lines: list[Line]
    terms: int
    valid_until: date
    number: str
    status: str = "draft"
    ordered: bool = False

    @property
    def next_step(self) -> str | None:
        if self.status == "accepted":
            return None if self.ordered else "order"
        return {"draft": "send", "sent": "accept"}.get(self.status)


@dataclass
class Order:
    id: UUID
    customer: UUID
    warehouse: str
    terms: int
    lines: dict[int, Line]
    status: str = "draft"
    shipped: dict[int, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    invoiced: dict[int, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def open_to_ship(self, n: int) -> Decimal:
        return self.lines[n].quantity - self.shipped[n]

    @property
    def next_step(self) -> str | None:
        if self.status == "draft":
            return "confirm"
        if self.status == "confirmed" and any(map(self.open_to_ship, self.lines)):
            return "ship"
        if any(self.shipped[n] > self.invoiced[n] for n in self.lines):
            return "invoice"
        return None


@dataclass
class Invoice:
    id: UUID
    customer: UUID
    number: str
    invoice_date: date
    due_date: date
    untaxed: Decimal
    tax: Decimal
    settled: Decimal = ZERO
    overdue: bool = False

    @property
    def total(self) -> Decimal:
        return self.untaxed + self.tax

    @property
    def open(self) -> Decimal:
        return self.total - self.settled


@dataclass
class Customer:
    id: UUID
    terms: int
    supplier_only: bool = False
    credit: Decimal = ZERO


class Rejected(Exception):
    """What the model expects a command to be rejected with."""

    def __init__(self, error: type[DomainError]) -> None:
        super().__init__(error.__name__)
        self.error = error


# -- the machine --------------------------------------------------------------------------------


class BusinessUnderRandomUse(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="tekil-invariants-")
        self.services = Services.open(
            Settings(database_url=f"sqlite:///{self.folder}/tekil.db"), initialise=True
        )
        self.business = self.services.business
        # One business date for the whole run, even one that goes past midnight.
        self.today = self.business.today()
        self.business.today = lambda: self.today  # type: ignore[method-assign]
        self.customers: dict[UUID, Customer] = {}
        self.leads: dict[UUID, str] = {}
        self.opportunities: dict[UUID, tuple[UUID, str]] = {}
        self.products: dict[str, Product] = {}
        self.warehouses = {"MAIN"}
        self.stock: dict[tuple[UUID, str], Stock] = {}
        self.quotes: dict[UUID, Quote] = {}
        self.orders: dict[UUID, Order] = {}
        self.invoices: dict[UUID, Invoice] = {}
        self.payments = ZERO
        self.sales = ZERO
        self.output_vat = ZERO
        self.rejected = 0
        self.steps = 0

    # -- running commands --------------------------------------------------------------------

    def head(self) -> int:
        return self.business.recorder.max_notification_id() or 0

    def run(
        self, expected: type[DomainError] | None, command: Callable[..., Result], /, **kw: Any
    ) -> Result | None:
        """Carry out a command the model expects to succeed (`expected` None), or to be rejected
        with `expected`: then it must raise that error and record nothing."""
        before = self.head()
        with context.acting(CommandContext(actor="invariants")):
            if expected is None:
                return command(**kw)
            with pytest.raises(expected):
                command(**kw)
        name = getattr(command, "__name__", "command")
        assert self.head() == before, f"{name} was rejected but recorded events"
        STATS[f"rejected {name}"] += 1
        self.rejected += 1
        return None

    def recorded(self, command: Callable[..., Result], /, **kw: Any) -> Result:
        before = self.head()
        result = self.run(None, command, **kw)
        assert result is not None
        name = getattr(command, "__name__", "command")
        assert self.head() > before, f"{name} succeeded but recorded nothing"
        STATS[f"ok {name}"] += 1
        return result

    def pick(
        self,
        data: st.DataObject,
        label: str,
        things: dict[UUID, Any],
        fits: Callable[[Any], bool] | None = None,
    ) -> Any:
        """One of `things` (in the order they were made, so that a replay picks the same),
        four times in five one that `fits` the command, if there is one."""
        keys = list(things)
        fitting = [k for k in keys if fits(things[k])] if fits is not None else []
        if fitting and data.draw(st.integers(0, 4), label=f"{label} fits") > 0:
            keys = fitting
        return things[data.draw(st.sampled_from(keys), label=label)]

    def pick_customer(self, data: st.DataObject) -> Customer:
        customer: Customer = self.pick(
            data, "customer", self.customers, lambda c: not c.supplier_only
        )
        return customer

    @initialize(depot=st.sampled_from([(), ("Depo",), ("",), ("Depo", "Depo")]))
    def open_for_business(self, depot: tuple[str, ...]) -> None:
        """A customer, a product and some of it in stock: the rest of the run works on them.
        A second warehouse, or not (then documents naming it are refused)."""
        for name in depot:
            self.open_depot(name)
        self.register_customer(terms=30, name="Anadolu Gıda", supplier_only=False)
        self.define_product(sku="W-1", price=Decimal(100), rate=20)
        self.recorded(
            self.business.receive_stock, lines=[{"sku": "W-1", "quantity": 20, "unit_cost": 60}]
        )
        self.item(self.products["W-1"], "MAIN").on_hand += 20

    # -- CRM ---------------------------------------------------------------------------------

    @rule(
        terms=st.sampled_from([0, 14, 30, 60, -1, 4000]),
        name=st.sampled_from(["Anadolu Gıda", "Veli Döküm", "Kaya Tekstil", "  "]),
        supplier_only=st.booleans(),
    )
    def register_customer(self, terms: int, name: str, supplier_only: bool) -> None:
        roles = {PartyRole.SUPPLIER} if supplier_only else None
        if not name.strip() or not 0 <= terms <= 3650:
            self.run(
                InvalidInput,
                self.business.register_customer,
                name=name,
                payment_terms_days=terms,
                roles=roles,
            )
            return
        result = self.recorded(
            self.business.register_customer, name=name, payment_terms_days=terms, roles=roles
        )
        self.customers[result.id] = Customer(result.id, terms, supplier_only)

    @rule(
        name=st.sampled_from(["Ali Veli", "Ayşe Kaya", "Mehmet", ""]),
        email=st.sampled_from([*EMAILS, *EMAILS, "not-an-email"]),
    )
    def capture_lead(self, name: str, email: str | None) -> None:
        if not name or email == "not-an-email":
            self.run(InvalidInput, self.business.capture_lead, name=name, email_address=email)
            return
        result = self.recorded(self.business.capture_lead, name=name, email_address=email)
        self.leads[result.id] = "new"

    @precondition(lambda self: self.leads)
    @rule(data=st.data(), action=st.sampled_from(["qualify", "disqualify", "convert", "bare"]))
    def work_lead(self, data: st.DataObject, action: str) -> None:
        fits = ("new",) if action == "qualify" else ("new", "qualified")
        lead = self.pick(data, "lead", {k: k for k in self.leads}, lambda k: self.leads[k] in fits)
        status = self.leads[lead]
        if action == "qualify":
            if status != "new":
                self.run(RuleViolation, self.business.qualify_lead, lead_id=lead)
                return
            self.recorded(self.business.qualify_lead, lead_id=lead)
            self.leads[lead] = "qualified"
        elif action == "disqualify":
            if status not in ("new", "qualified"):
                self.run(RuleViolation, self.business.disqualify_lead, lead_id=lead, reason="no")
                return
            self.recorded(self.business.disqualify_lead, lead_id=lead, reason="no budget")
            self.leads[lead] = "disqualified"
        else:
            with_opportunity = action == "convert"
            if status not in ("new", "qualified"):
                self.run(
                    RuleViolation,
                    self.business.convert_lead,
                    lead_id=lead,
                    create_opportunity=with_opportunity,
                )
                return
            result = self.recorded(
                self.business.convert_lead,
                lead_id=lead,
                create_opportunity=with_opportunity,
                amount=Decimal("1000.00"),
            )
            self.leads[lead] = "converted"
            customer = UUID(result.extra["customer_id"])
            self.customers[customer] = Customer(customer, 30)
            if with_opportunity:
                self.opportunities[UUID(result.extra["opportunity_id"])] = (
                    customer,
                    "prospecting",
                )

    @precondition(lambda self: self.customers)
    @rule(data=st.data(), amount=st.sampled_from(["100.00", "2500.50", "0", "-5", "1.005"]))
    def open_opportunity(self, data: st.DataObject, amount: str) -> None:
        customer = self.pick_customer(data)
        kw = dict(customer_id=customer.id, title="Deal", amount=Decimal(amount))
        if customer.supplier_only:
            self.run(RuleViolation, self.business.open_opportunity, **kw)
        elif Decimal(amount) < 0 or Decimal(amount) != money(Decimal(amount)):
            self.run(InvalidInput, self.business.open_opportunity, **kw)
        else:
            result = self.recorded(self.business.open_opportunity, **kw)
            self.opportunities[result.id] = (customer.id, "prospecting")

    @precondition(lambda self: self.opportunities)
    @rule(data=st.data(), move=st.sampled_from([*OPEN_STAGES, "won", "lost", "win", "lose"]))
    def work_opportunity(self, data: st.DataObject, move: str) -> None:
        opportunity = self.pick(
            data,
            "opportunity",
            {k: k for k in self.opportunities},
            lambda k: self.opportunities[k][1] not in ("won", "lost"),
        )
        customer, stage = self.opportunities[opportunity]
        closed = stage in ("won", "lost")
        if move in ("win", "lose"):
            command = (
                self.business.win_opportunity
                if move == "win"
                else lambda **kw: self.business.lose_opportunity(**kw, reason="price")
            )
            if closed:
                self.run(RuleViolation, command, opportunity_id=opportunity)
                return
            self.recorded(command, opportunity_id=opportunity)
            self.opportunities[opportunity] = (customer, "won" if move == "win" else "lost")
        elif move in ("won", "lost"):  # closing by a stage change is not how it is done
            self.run(
                InvalidInput, self.business.move_opportunity, opportunity_id=opportunity, stage=move
            )
        elif closed:
            self.run(
                RuleViolation,
                self.business.move_opportunity,
                opportunity_id=opportunity,
                stage=move,
            )
        elif move == stage:  # already there: nothing to record
            before = self.head()
            self.run(None, self.business.move_opportunity, opportunity_id=opportunity, stage=move)
            assert self.head() == before
        else:
            self.recorded(self.business.move_opportunity, opportunity_id=opportunity, stage=move)
            self.opportunities[opportunity] = (customer, move)

    # -- products and stock ------------------------------------------------------------------

    @rule(sku=st.sampled_from(SKUS), price=prices, rate=st.sampled_from([20, 10, 1, 0, 18]))
    def define_product(self, sku: str, price: Decimal, rate: int) -> None:
        stocked = not sku.startswith("SRV")
        kw = dict(
            sku=sku,
            name=f"Product {sku}",
            list_price=price,
            vat_rate_percent=Decimal(rate),
            kind="stocked" if stocked else "service",
        )
        if sku in self.products:
            self.run(RuleViolation, self.business.define_product, **kw)
        elif rate == 18:  # the old general rate, not in force since July 2023
            self.run(InvalidInput, self.business.define_product, **kw)
        else:
            result = self.recorded(self.business.define_product, **kw)
            self.products[sku] = Product(result.id, sku, price, Decimal(rate), stocked)

    def open_depot(self, name: str) -> None:
        if "DEPO" in self.warehouses:
            self.run(RuleViolation, self.business.open_warehouse, code="depo", name=name)
            return
        if not name:
            self.run(InvalidInput, self.business.open_warehouse, code="depo", name=name)
            return
        self.recorded(self.business.open_warehouse, code="depo", name=name)
        self.warehouses.add("DEPO")

    @rule(
        data=st.data(),
        warehouse=st.sampled_from(WAREHOUSES),
        fault=st.sampled_from([*NONE, "quantity", "unknown sku", "no lines"]),
    )
    def receive_stock(self, data: st.DataObject, warehouse: str, fault: str | None) -> None:
        # Mostly goods: a service in a receipt is refused, and one fault at a time is enough.
        skus = data.draw(
            st.lists(st.sampled_from(["W-1", "W-2", *SKUS]), min_size=1, max_size=3), label="skus"
        )
        lines: list[dict[str, Any]] = [
            {"sku": sku, "quantity": data.draw(quantities), "unit_cost": data.draw(costs)}
            for sku in skus
        ]
        if fault == "quantity":
            lines[-1]["quantity"] = data.draw(bad_quantities, label="bad quantity")
        elif fault == "unknown sku":
            lines[-1]["sku"] = "NOPE-1"
        elif fault == "no lines":
            lines = []
        known = [self.products.get(line["sku"]) for line in lines]
        if warehouse not in self.warehouses:
            expected: type[DomainError] | None = NotFound
        elif not lines:
            expected = InvalidInput
        else:
            # Lines are checked in order: the first bad one decides the error.
            expected = None
            for line, product in zip(lines, known, strict=True):
                if product is None:
                    expected = NotFound
                elif not product.stocked:
                    expected = RuleViolation
                elif line is lines[-1] and fault == "quantity":
                    expected = InvalidInput
                if expected is not None:
                    break
        kw = dict(lines=lines, warehouse=warehouse)
        if expected is not None:
            self.run(expected, self.business.receive_stock, **kw)
            return
        self.recorded(self.business.receive_stock, **kw)
        for line, product in zip(lines, known, strict=True):
            assert product is not None
            self.item(product, warehouse).on_hand += line["quantity"]

    def item(self, product: Product, warehouse: str) -> Stock:
        return self.stock.setdefault((product.id, warehouse), Stock())

    # -- quotes --------------------------------------------------------------------------------

    def draw_lines(self, data: st.DataObject) -> list[Line]:
        chosen = data.draw(
            st.lists(st.sampled_from(list(self.products)), min_size=1, max_size=3),
            label="products",
        )
        lines = []
        for sku in chosen:
            product = self.products[sku]
            own_price = data.draw(st.none() | prices, label="unit price")
            lines.append(
                Line(
                    product,
                    data.draw(quantities, label="quantity"),
                    product.price if own_price is None else own_price,
                    data.draw(discounts, label="discount"),
                )
            )
        return lines

    @staticmethod
    def line_dicts(lines: list[Line]) -> list[dict[str, Any]]:
        return [
            {
                "product_id": line.product.id,
                "quantity": line.quantity,
                "unit_price": line.price,
                "discount_percent": line.discount,
            }
            for line in lines
        ]

    def line_fault(self, data: st.DataObject, lines: list[dict[str, Any]], fault: str) -> None:
        """Spoil the lines with one fault (every one of them is invalid input, or unknown)."""
        if fault == "quantity":
            lines[-1]["quantity"] = data.draw(bad_quantities, label="bad quantity")
        elif fault == "discount":
            lines[-1]["discount_percent"] = Decimal("100.5")
        elif fault == "price":
            lines[-1]["unit_price"] = Decimal("-1")
        elif fault == "product":
            lines[-1]["product_id"] = uuid.uuid4()
        elif fault == "no lines":
            lines.clear()

    @precondition(lambda self: self.customers and self.products)
    @rule(
        data=st.data(),
        terms=st.sampled_from([None, 0, 45]),
        fault=st.sampled_from(
            [*NONE, "customer", "quantity", "discount", "price", "product", "no lines"]
        ),
    )
    def create_quote(self, data: st.DataObject, terms: int | None, fault: str | None) -> None:
        customer = self.pick_customer(data)
        lines = self.draw_lines(data)
        dicts = self.line_dicts(lines)
        customer_id = uuid.uuid4() if fault == "customer" else customer.id
        if fault is not None:
            self.line_fault(data, dicts, fault)
        kw = dict(customer_id=customer_id, lines=dicts, payment_terms_days=terms)
        if fault == "customer":
            self.run(NotFound, self.business.create_quote, **kw)
        elif customer.supplier_only:
            self.run(RuleViolation, self.business.create_quote, **kw)
        elif fault == "product":
            self.run(NotFound, self.business.create_quote, **kw)
        elif fault is not None:
            self.run(InvalidInput, self.business.create_quote, **kw)
        else:
            result = self.recorded(self.business.create_quote, **kw)
            self.quotes[result.id] = Quote(
                result.id,
                customer.id,
                lines,
                customer.terms if terms is None else terms,
                self.today + timedelta(days=DEFAULT_VALIDITY_DAYS),
                result.extra["number"],
            )

    @precondition(lambda self: self.quotes)
    @rule(
        data=st.data(),
    )
    def advance_quote(self, data: st.DataObject) -> None:
        """Send, accept, order, reject, expire or revise a quote: mostly its next step."""
        quote: Quote = self.pick(data, "quote", self.quotes, lambda q: q.next_step is not None)
        steps = ["send", "accept", "order", "reject", "expire", "revise"]
        if quote.next_step is not None:
            steps = [quote.next_step, quote.next_step, *steps]
        action = data.draw(st.sampled_from(steps), label="action")
        if action == "order":
            self.order_a_quote(data, quote)
            return
        open_ = quote.status in ("draft", "sent")
        if action == "send":
            if quote.status != "draft":
                self.run(RuleViolation, self.business.send_quote, quote_id=quote.id)
                return
            self.recorded(self.business.send_quote, quote_id=quote.id)
            quote.status = "sent"
        elif action in ("accept", "reject"):
            command = (
                self.business.accept_quote if action == "accept" else self.business.reject_quote
            )
            if not open_:
                self.run(RuleViolation, command, quote_id=quote.id)
                return
            self.recorded(command, quote_id=quote.id)
            quote.status = "accepted" if action == "accept" else "rejected"
        elif action == "expire":
            after = quote.valid_until + timedelta(days=1)
            before = self.head()
            self.run(None, self.business.expire_quote, quote_id=quote.id, today=after)
            if open_:
                assert self.head() > before
                quote.status = "expired"
            else:
                assert self.head() == before, "only a draft or sent quote expires"
        else:
            if quote.status not in ("draft", "sent", "rejected", "expired"):
                self.run(RuleViolation, self.business.revise_quote, quote_id=quote.id)
                return
            result = self.recorded(self.business.revise_quote, quote_id=quote.id)
            quote.status = "revised"
            self.quotes[result.id] = Quote(
                result.id,
                quote.customer,
                quote.lines,
                quote.terms,
                self.today + timedelta(days=DEFAULT_VALIDITY_DAYS),
                result.extra["number"],
            )

    # -- orders --------------------------------------------------------------------------------

    def order_a_quote(self, data: st.DataObject, quote: Quote) -> None:
        warehouse = data.draw(st.sampled_from(WAREHOUSES), label="warehouse")
        kw = dict(quote_id=quote.id, warehouse=warehouse)
        if warehouse not in self.warehouses:
            self.run(NotFound, self.business.place_order, **kw)
        elif quote.status != "accepted" or quote.ordered:
            self.run(RuleViolation, self.business.place_order, **kw)
        else:
            result = self.recorded(self.business.place_order, **kw)
            quote.ordered = True
            self.orders[result.id] = Order(
                result.id,
                quote.customer,
                warehouse,
                quote.terms,
                dict(enumerate(quote.lines, start=1)),
            )

    @precondition(lambda self: self.customers and self.products)
    @rule(
        data=st.data(),
        warehouse=st.sampled_from(WAREHOUSES),
        fault=st.sampled_from([*NONE, "quantity", "product", "no lines"]),
    )
    def place_order(self, data: st.DataObject, warehouse: str, fault: str | None) -> None:
        customer = self.pick_customer(data)
        lines = self.draw_lines(data)
        dicts = self.line_dicts(lines)
        if fault is not None:
            self.line_fault(data, dicts, fault)
        kw = dict(customer_id=customer.id, lines=dicts, warehouse=warehouse)
        if warehouse not in self.warehouses or (fault == "product" and not customer.supplier_only):
            self.run(NotFound, self.business.place_order, **kw)
        elif customer.supplier_only:
            self.run(RuleViolation, self.business.place_order, **kw)
        elif fault is not None:
            self.run(InvalidInput, self.business.place_order, **kw)
        else:
            result = self.recorded(self.business.place_order, **kw)
            self.orders[result.id] = Order(
                result.id, customer.id, warehouse, customer.terms, dict(enumerate(lines, start=1))
            )

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def advance_order(self, data: st.DataObject) -> None:
        """Confirm, cancel, ship or invoice an order: mostly its next step, at times any."""
        order: Order = self.pick(data, "order", self.orders, lambda o: o.next_step is not None)
        steps = ["confirm", "ship", "ship lines", "invoice", "cancel"]
        if order.next_step is not None:
            steps = [order.next_step, order.next_step, "ship lines", *steps]
        action = data.draw(st.sampled_from(steps), label="action")
        {
            "confirm": self.confirm_order,
            "ship": self.ship_what_is_open,
            "ship lines": self.ship_lines,
            "invoice": self.invoice_order,
            "cancel": self.cancel_order,
        }[action](data, order)

    def confirm_order(self, data: st.DataObject, order: Order) -> None:
        if order.status != "draft":  # confirming twice, or a cancelled order
            self.run(RuleViolation, self.business.confirm_order, order_id=order.id)
            return
        self.recorded(self.business.confirm_order, order_id=order.id)
        order.status = "confirmed"
        for n, line in sorted(order.lines.items()):
            stock = self.stock.get((line.product.id, order.warehouse))
            if stock is not None:
                got = min(order.open_to_ship(n), max(stock.on_hand - stock.reserved_total, ZERO))
                if got > 0:
                    stock.reserved[order.id] += got

    def cancel_order(self, data: st.DataObject, order: Order) -> None:
        if order.status not in ("draft", "confirmed") or all(
            order.open_to_ship(n) == 0 for n in order.lines
        ):
            self.run(RuleViolation, self.business.cancel_order, order_id=order.id)
            return
        self.recorded(self.business.cancel_order, order_id=order.id)
        order.status = "cancelled"
        for line in order.lines.values():
            stock = self.stock.get((line.product.id, order.warehouse))
            if stock is not None:
                stock.reserved.pop(order.id, None)

    def ship_what_is_open(self, data: st.DataObject, order: Order) -> None:
        """Ship all that is open and free in stock (the default)."""
        if order.status != "confirmed":
            self.run(RuleViolation, self.business.ship_order, order_id=order.id)
            return
        free = {
            product: stock.free_for(order.id)
            for (product, warehouse), stock in self.stock.items()
            if warehouse == order.warehouse
        }
        wanted: dict[int, Decimal] = {}
        for n, line in sorted(order.lines.items()):
            open_qty = order.open_to_ship(n)
            if open_qty <= 0:
                continue
            if not line.product.stocked:
                wanted[n] = open_qty
                continue
            qty = min(open_qty, free.get(line.product.id, ZERO))
            if qty > 0:
                wanted[n] = qty
                free[line.product.id] -= qty
        if not wanted:
            self.run(RuleViolation, self.business.ship_order, order_id=order.id)
            return
        self.recorded(self.business.ship_order, order_id=order.id)
        self.shipped(order, wanted)

    def ship_lines(self, data: st.DataObject, order: Order) -> None:
        """Ship chosen lines in chosen quantities: more than is open, or than is free in stock
        (on hand less what other orders reserved), is refused."""
        fault = data.draw(
            st.sampled_from([*NONE, "no line", "twice", "quantity", "no lines"]), label="fault"
        )
        numbers = data.draw(
            st.lists(st.sampled_from(sorted(order.lines)), min_size=1, max_size=2, unique=True),
            label="lines",
        )
        lines: list[dict[str, Any]] = []
        for n in numbers:
            open_qty = order.open_to_ship(n)
            qty = data.draw(
                st.sampled_from(
                    [
                        q
                        for q in (open_qty, open_qty / 2, open_qty + 1, Decimal(1))
                        if q > 0 and q == q.quantize(Decimal("0.0001"))
                    ]
                ),
                label=f"quantity of line {n}",
            )
            lines.append({"line": n, "quantity": qty})
        if fault == "no line":
            lines[-1]["line"] = max(order.lines) + 1
        elif fault == "twice":
            lines.append(dict(lines[0]))
        elif fault == "quantity":
            lines[-1]["quantity"] = data.draw(bad_quantities, label="bad quantity")
        elif fault == "no lines":
            lines = []
        kw = dict(order_id=order.id, lines=lines)
        if order.status != "confirmed":
            self.run(RuleViolation, self.business.ship_order, **kw)
            return
        if fault is not None:
            self.run(InvalidInput, self.business.ship_order, **kw)
            return
        # Stock first, line by line (each draw leaves less for the next), then what is open.
        left = {
            key: stock.free_for(order.id)
            for key, stock in self.stock.items()
            if key[1] == order.warehouse
        }
        refused = False
        for d in lines:
            line = order.lines[d["line"]]
            if line.product.stocked:
                key = (line.product.id, order.warehouse)
                if key not in left or d["quantity"] > left[key]:
                    refused = True
                    break
                left[key] -= d["quantity"]
        if refused or any(d["quantity"] > order.open_to_ship(d["line"]) for d in lines):
            self.run(RuleViolation, self.business.ship_order, **kw)
            return
        self.recorded(self.business.ship_order, **kw)
        self.shipped(order, {d["line"]: d["quantity"] for d in lines})

    def shipped(self, order: Order, wanted: dict[int, Decimal]) -> None:
        for n, qty in wanted.items():
            line = order.lines[n]
            if line.product.stocked:
                stock = self.stock[(line.product.id, order.warehouse)]
                mine = stock.reserved[order.id]
                assert qty <= stock.free_for(order.id)
                stock.on_hand -= qty
                released = min(mine, qty)
                if mine - released > 0:
                    stock.reserved[order.id] = mine - released
                else:
                    stock.reserved.pop(order.id, None)
            order.shipped[n] += qty

    # -- invoices and payments -------------------------------------------------------------------

    def invoice_order(self, data: st.DataObject, order: Order) -> None:
        days_ago = data.draw(st.sampled_from([None, 0, 3, 40]), label="days ago")
        day = self.today if days_ago is None else self.today - timedelta(days=days_ago)
        quantities = {
            n: order.shipped[n] - order.invoiced[n]
            for n in order.lines
            if order.shipped[n] - order.invoiced[n] > 0
        }
        kw: dict[str, Any] = dict(order_id=order.id)
        if days_ago is not None:
            kw["invoice_date"] = day
        if not quantities:
            self.run(RuleViolation, self.business.invoice_order, **kw)
            return
        result = self.recorded(self.business.invoice_order, **kw)
        untaxed = tax = ZERO
        for n, qty in quantities.items():
            line = order.lines[n]
            net, vat = priced(qty, line.price, line.discount, line.product.vat)
            untaxed += net
            tax += vat
            order.invoiced[n] += qty
        invoice = Invoice(
            result.id,
            order.customer,
            result.extra["number"],
            day,
            day + timedelta(days=order.terms),
            untaxed,
            tax,
        )
        customer = self.customers[order.customer]
        used = min(customer.credit, invoice.total)
        invoice.settled += used
        customer.credit -= used
        self.invoices[invoice.id] = invoice
        self.sales += untaxed
        self.output_vat += tax

    def open_items(self, customer: UUID) -> list[Invoice]:
        items = [i for i in self.invoices.values() if i.customer == customer and i.open > 0]
        return sorted(items, key=lambda i: (i.invoice_date, i.due_date, i.number))

    @precondition(lambda self: self.customers)
    @rule(
        data=st.data(),
        amount=amounts,
        method=st.sampled_from(["bank", "cash"]),
        how=st.sampled_from(["oldest first", "oldest first", "chosen", "over-payment"]),
        fault=st.sampled_from(
            [
                *NONE,
                *("amount", "method", "unknown invoice", "other's invoice"),
                *("more than open", "more than paid", "twice", "unknown customer"),
            ]
        ),
    )
    def receive_payment(
        self, data: st.DataObject, amount: Decimal, method: str, how: str, fault: str | None
    ) -> None:
        customer = self.pick_customer(data)
        open_items = self.open_items(customer.id)
        allocations: list[dict[str, Any]] | None = None
        if how == "chosen" and open_items:
            chosen = data.draw(
                st.lists(st.sampled_from(open_items), min_size=1, max_size=3, unique_by=id),
                label="invoices",
            )
            allocations = [
                {
                    "invoice_id": i.id,
                    "amount": data.draw(st.sampled_from([i.open, money(i.open / 3)])),
                }
                for i in chosen
            ]
            allocations = [a for a in allocations if a["amount"] > 0] or None
            if allocations:
                amount = sum((a["amount"] for a in allocations), ZERO)
        elif how == "over-payment":
            amount = sum((i.open for i in open_items), ZERO) + amount
        expected: type[DomainError] | None = None
        customer_id = customer.id
        if fault == "unknown customer":
            customer_id, expected = uuid.uuid4(), NotFound
        elif fault == "amount":
            amount, expected = (
                data.draw(st.sampled_from([ZERO, Decimal("-10"), Decimal("1.001")])),
                InvalidInput,
            )
        elif fault == "method":
            method, expected = "cheque", InvalidInput
        elif fault == "unknown invoice":
            allocations = [*(allocations or []), {"invoice_id": uuid.uuid4(), "amount": CENT}]
            expected = NotFound
        elif fault == "other's invoice":
            others = [i for i in self.invoices.values() if i.customer != customer.id]
            if others:
                other = data.draw(st.sampled_from(others), label="other's invoice")
                allocations = [*(allocations or []), {"invoice_id": other.id, "amount": CENT}]
                amount += CENT
                expected = InvalidInput
        elif fault == "more than open" and open_items:
            item = open_items[0]
            allocations = [{"invoice_id": item.id, "amount": item.open + CENT}]
            amount = item.open + CENT
            expected = InvalidInput
        elif fault == "more than paid" and allocations:
            amount -= CENT  # allocations add up to more than was paid (or nothing was paid)
            expected = InvalidInput
        elif fault == "twice" and allocations:
            allocations = [*allocations, dict(allocations[0])]
            amount = amount + allocations[0]["amount"]
            expected = InvalidInput
        kw: dict[str, Any] = dict(
            customer_id=customer_id, amount=amount, method=method, allocations=allocations
        )
        if expected is not None:
            self.run(expected, self.business.receive_payment, **kw)
            return
        result = self.recorded(self.business.receive_payment, **kw)
        if allocations is None:
            decided, left = [], amount
            for item in open_items:
                if left <= 0:
                    break
                take = min(item.open, left)
                decided.append((item.id, take))
                left -= take
        else:
            decided = [(a["invoice_id"], a["amount"]) for a in allocations]
        answered = [
            (UUID(a["invoice_id"]), Decimal(a["amount"])) for a in result.extra["allocations"]
        ]
        assert answered == decided
        for invoice_id, part in decided:
            self.invoices[invoice_id].settled += part
        customer.credit += amount - sum((part for _, part in decided), ZERO)
        assert Decimal(result.extra["unallocated"]) == amount - sum((p for _, p in decided), ZERO)
        self.payments += amount

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), days_late=st.sampled_from([-1, 0, 1, 90]))
    def mark_overdue(self, data: st.DataObject, days_late: int) -> None:
        invoice = self.pick(data, "invoice", self.invoices, lambda i: not i.overdue)
        before = self.head()
        self.run(
            None,
            self.business.mark_invoice_overdue,
            invoice_id=invoice.id,
            today=invoice.due_date + timedelta(days=days_late),
        )
        if not invoice.overdue and invoice.open > 0 and days_late > 0:
            assert self.head() > before
            invoice.overdue = True
        else:
            assert self.head() == before, "an invoice paid, not yet due or marked is left alone"

    @precondition(lambda self: self.customers)
    @rule(data=st.data(), amount=amounts)
    def repeat_a_payment(self, data: st.DataObject, amount: Decimal) -> None:
        """The same Idempotency-Key twice: the second answers as the first, recording nothing."""
        customer = self.pick_customer(data)
        ctx = CommandContext(actor="invariants", idempotency_key=str(uuid.uuid4()), fingerprint="f")
        answers = []
        for _ in range(2):
            before = self.head()
            with context.acting(ctx):
                answers.append(
                    self.business.receive_payment(
                        customer_id=customer.id, amount=amount, method="bank", allocations=[]
                    )
                )
        assert self.head() == before, "the repeat recorded events"
        assert answers[1].replayed
        assert (answers[1].id, answers[1].version) == (answers[0].id, answers[0].version)
        customer.credit += amount
        self.payments += amount

    # -- after every step ----------------------------------------------------------------------

    def rows(self, projection: str, table: str, *where: Any) -> list[Any]:
        t = self.services.reads[projection][table]
        with self.services.reads.reader.connect() as conn:
            return list(conn.execute(select(t).where(*where)).mappings().all())

    @invariant()
    def everything_agrees(self) -> None:
        """Once the read models have taken in every event, all that must hold, holds."""
        self.steps += 1
        self.services.runner.catch_up()
        assert set(self.services.reads.positions().values()) == {self.head()}
        self.the_ledger_balances()
        self.the_report_totals_add_up_the_lines()
        self.the_pipeline_totals_add_up_the_opportunities()
        self.the_funnel_counts_the_leads()
        self.stock_is_never_negative_and_agrees()
        self.invoices_are_open_by_their_total_less_settlements()
        self.reconciliation_agrees()
        self.documents_are_where_the_model_left_them()

    def the_ledger_balances(self) -> None:
        lines = self.services.reads["ledger"]["lines"]
        with self.services.reads.reader.connect() as conn:
            per_entry = conn.execute(
                select(
                    lines.c.entry_id, func.sum(lines.c.debit), func.sum(lines.c.credit)
                ).group_by(lines.c.entry_id)
            ).all()
        for entry_id, debits, credits in per_entry:
            assert Decimal(debits) == Decimal(credits), f"entry {entry_id} does not balance"
        balance: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in self.rows("ledger", "lines"):
            assert min(line["debit"], line["credit"]) >= 0, line
            balance[line["account"]] += line["debit"] - line["credit"]
        assert sum(balance.values(), ZERO) == 0
        # What the model knows of the ledger: sales, VAT, money in, and what is still owed.
        chart = self.business.chart
        assert -balance[chart.role("sales")] == self.sales
        assert -balance[chart.role("output_vat")] == self.output_vat
        assert balance[chart.role("bank")] + balance[chart.role("cash")] == self.payments
        owed = sum((i.open for i in self.invoices.values()), ZERO)
        credit = sum((c.credit for c in self.customers.values()), ZERO)
        assert balance[chart.role("receivables")] == owed - credit

    def the_funnel_counts_the_leads(self) -> None:
        """The lead funnel's counts per source and campaign are those of the leads as they
        stand."""
        expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for lead in self.rows("leads", "leads"):
            counts = expected[(lead["source"], lead["campaign"] is None, lead["campaign"] or "")]
            for i, counted in enumerate(
                (
                    True,
                    lead["reached_qualified"],
                    lead["status"] == "converted",
                    lead["status"] == "disqualified",
                )
            ):
                counts[i] += int(bool(counted))
        found = {
            (r["source"], bool(r["no_campaign"]), r["campaign"]): [
                r["captured"],
                r["qualified"],
                r["converted"],
                r["disqualified"],
            ]
            for r in self.rows("leads", "funnel")
        }
        assert found == dict(expected)

    def the_report_totals_add_up_the_lines(self) -> None:
        """The day, month and party-month totals the reports read are the sums of the journal
        lines (and the days' and months' counts, their number)."""
        days: dict[tuple[Any, ...], Decimal] = defaultdict(lambda: ZERO)
        months: dict[tuple[Any, ...], Decimal] = defaultdict(lambda: ZERO)
        for line in self.rows("ledger", "lines"):
            key = (line["account"], line["source_kind"])
            for side in ("debit", "credit"):
                days[(line["entry_date"], *key, side)] += line[side]
                months[(line["entry_date"].replace(day=1), *key, side)] += line[side]
            days[(line["entry_date"], *key, "lines")] += 1
            months[(line["entry_date"].replace(day=1), *key, "lines")] += 1
        for table, period, expected in (("days", "day", days), ("months", "month", months)):
            found = {
                (r[period], r["account"], r["source_kind"], column): r[column]
                for r in self.rows("ledger", table)
                for column in ("debit", "credit", "lines")
            }
            assert found == dict(expected), table
        # Per party and account, per month: the statement's opening balances.
        parties: dict[tuple[Any, ...], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        for line in self.rows("ledger", "lines"):
            if line["party_id"] is not None:
                key = (line["party_id"], line["account"], line["entry_date"].replace(day=1))
                parties[key][0] += line["debit"]
                parties[key][1] += line["credit"]
        found_parties = {
            (r["party_id"], r["account"], r["month"]): [r["debit"], r["credit"]]
            for r in self.rows("ledger", "party_months")
        }
        assert found_parties == dict(parties), "party_months"

    def the_pipeline_totals_add_up_the_opportunities(self) -> None:
        """The open, forecast and closed totals the pipeline reads are the sums of the
        opportunities: per owner, and of every owner at once."""
        expected: dict[str, dict[tuple[Any, ...], list[Any]]] = {
            table: {}
            for table in (
                "open",
                "forecast",
                "closed",
                "open_by_stage",
                "open_by_owner",
                "forecast_by_month",
                "closed_by_stage",
            )
        }
        for o in self.rows("opportunities", "opportunities"):
            stage, owner, currency = o["stage"], o["owner"], o["currency"]
            if stage in ("won", "lost"):
                keys = {"closed": (stage, owner, currency), "closed_by_stage": (stage, currency)}
            else:
                month = o["expected_close_month"] or ""
                keys = {
                    "open": (stage, owner, currency),
                    "forecast": (month, currency, owner),
                    "open_by_stage": (stage, currency),
                    "open_by_owner": (owner, currency),
                    "forecast_by_month": (month, currency),
                }
            for table, key in keys.items():
                total = expected[table].setdefault(key, [0, ZERO, ZERO])
                total[0] += 1
                total[1] += o["amount"]
                total[2] += o["weighted_amount"]
        for table, totals in expected.items():
            found = {}
            for r in self.rows("opportunities", table):
                figures = [r["count"], r["amount"], r["weighted_amount"]]
                if r["count"]:
                    found[tuple(r.values())[:-3]] = figures  # the key, then the figures
                else:  # a key whose opportunities all moved on
                    assert figures == [0, 0, 0], r
            assert found == totals, table

    def stock_is_never_negative_and_agrees(self) -> None:
        rows = self.rows("stock", "items")
        assert {(r["product_id"], r["warehouse"]) for r in rows} == set(self.stock)
        for row in rows:
            assert min(row["on_hand"], row["reserved"], row["available"]) >= 0, row
            assert row["value"] >= 0, row
            if row["on_hand"] == 0:
                assert row["value"] == 0, f"no {row['sku']} left, but worth {row['value']}"
            model = self.stock[(row["product_id"], row["warehouse"])]
            assert (row["on_hand"], row["reserved"]) == (model.on_hand, model.reserved_total), row
        for layer in self.rows("stock", "layers"):
            assert min(layer["quantity"], layer["value"]) >= 0, layer

    def invoices_are_open_by_their_total_less_settlements(self) -> None:
        settled: dict[UUID, Decimal] = defaultdict(lambda: ZERO)
        for s in self.rows("invoices", "settlements"):
            settled[s["invoice_id"]] += s["amount"]
        rows = self.rows("invoices", "invoices")
        assert {r["id"] for r in rows} == set(self.invoices)
        for row in rows:
            invoice = self.invoices[row["id"]]
            assert row["open_amount"] == row["total"] - settled[row["id"]], row
            assert row["open_amount"] >= 0, row
            assert row["status"] == ("paid" if row["open_amount"] == 0 else "open"), row
            assert (row["untaxed"], row["tax"], row["total"]) == (
                invoice.untaxed,
                invoice.tax,
                invoice.total,
            ), row
            assert row["open_amount"] == invoice.open, row
            assert row["overdue"] == invoice.overdue, row
            assert row["due_date"] == invoice.due_date, row
        credits = {r["customer_id"]: r["unallocated"] for r in self.rows("payments", "credits")}
        for customer in self.customers.values():
            assert credits.get(customer.id, ZERO) == customer.credit
        owed: dict[date, Decimal] = defaultdict(lambda: ZERO)
        for row in rows:
            if row["status"] == "open":
                owed[row["due_date"]] += row["open_amount"]
        by_due_date = {
            r["due_date"]: r["open_amount"]
            for r in self.rows("invoices", "open_by_due_date")
            if r["open_amount"]
        }
        assert by_due_date == dict(owed), "the cash flow's expected inflows"
        (in_all,) = [r["open_amount"] for r in self.rows("invoices", "open_total")] or [ZERO]
        assert in_all == sum(owed.values(), ZERO), "what all open invoices owe"

    def reconciliation_agrees(self) -> None:
        reads = self.services.reads
        models = {n: reads[n] for n in READ_MODELS}
        with reads.reader.connect() as conn:
            report = reconcile(conn, models, self.business.chart, read_positions(conn, models))
        assert report["ok"], [c for c in report["checks"] if not c["ok"]]
        assert report["positions_agree"]

    def documents_are_where_the_model_left_them(self) -> None:
        leads = {r["id"]: r["status"] for r in self.rows("leads", "leads")}
        assert leads == self.leads
        stages = {r["id"]: r["stage"] for r in self.rows("opportunities", "opportunities")}
        assert stages == {k: stage for k, (_, stage) in self.opportunities.items()}
        quotes = {r["id"]: r["status"] for r in self.rows("quotes", "quotes")}
        assert quotes == {q.id: q.status for q in self.quotes.values()}
        orders = {r["id"]: r for r in self.rows("orders", "orders")}
        assert set(orders) == set(self.orders)
        lines = defaultdict(dict)
        for r in self.rows("orders", "order_lines"):
            lines[r["order_id"]][r["line"]] = r
        for order in self.orders.values():
            assert orders[order.id]["status"] == order.status
            for n, line in order.lines.items():
                row = lines[order.id][n]
                assert (row["quantity"], row["shipped"], row["invoiced"]) == (
                    line.quantity,
                    order.shipped[n],
                    order.invoiced[n],
                ), row
            # What the order list says is reserved is what the stock holds for the order.
            for product in {line.product.id for line in order.lines.values()}:
                listed = sum(
                    (r["reserved"] for r in lines[order.id].values() if r["product_id"] == product),
                    ZERO,
                )
                stock = self.stock.get((product, order.warehouse))
                held = stock.reserved.get(order.id, ZERO) if stock else ZERO
                assert listed == held, (order.id, product, listed, held)

    def teardown(self) -> None:
        if os.environ.get("TEKIL_INVARIANT_STATS"):  # what the run did, for bench/invariants.md
            STATS["examples"] += 1
            STATS["steps"] += self.steps
            STATS["invoices paid in full"] += sum(1 for i in self.invoices.values() if not i.open)
            with open(os.environ["TEKIL_INVARIANT_STATS"], "w") as f:
                f.writelines(f"{v:8} {k}\n" for k, v in sorted(STATS.items()))
        try:
            self.services.runner.catch_up()
            live = read_model_rows(self.services)
            reads = self.services.reads
            rebuild(self.business, reads, list(reads.projections.values()))
            assert read_model_rows(self.services) == live, "a rebuild from 0 gave other rows"
        finally:
            self.services.close()
            shutil.rmtree(self.folder, ignore_errors=True)


BusinessUnderRandomUse.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # A long run may skip shrinking (TEKIL_INVARIANT_SHRINK=0) and report the failing run as is.
    phases=tuple(Phase)
    if os.environ.get("TEKIL_INVARIANT_SHRINK", "1") == "1"
    else (Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBusinessUnderRandomUse = BusinessUnderRandomUse.TestCase
