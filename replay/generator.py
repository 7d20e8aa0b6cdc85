"""Realistic business history, recorded through the Business's own commands.

Two mixes. `crm` (the default, what bench/rebuild_rate.py measures): leads arrive from
several sources and campaigns (some sharing an e-mail address with an earlier lead), get
calls and meetings, are qualified or disqualified, and some are converted into a customer and
an opportunity (sometimes an existing customer, sometimes with a tax number). Opportunities
move through the stages and are won, lost or left open; activities are logged against leads,
customers and opportunities and most are completed later. About a third of the commands carry
an idempotency key, as API clients send them.

Many lead "stories" are in flight at once and take turns, so the events of different
aggregates interleave in the log as they do in a real company. The same seed gives the same
commands with the same data and command ids; the aggregates' own ids are drawn by the domain
(uuid4) and differ, and so do the events' timestamps unless the business stamps them itself
(replay/batched.py).

`business` adds order to cash to the same CRM: a catalogue of products (some services),
suppliers, opening stock and replenishment receipts when stock runs low; quotes (sent,
accepted, rejected, revised or left to expire) for converted leads' opportunities and for
existing customers, orders (from quotes or direct), confirmation with reservations, full and
partial shipments at FIFO cost, an invoice per shipment, payments on time, late, in parts or
never, and the scheduler's daily jobs (quotes expiring, invoices going overdue). It runs on a
calendar — `on_new_day` is told each new business day, every `events_per_day` events — so
that documents fall due and age as in a real year; stories wait for days between steps.
Warehouse staff record receipts and shipments, finance invoices and payments, sales the rest.

    from replay.generator import generate
    generate(business, events=100_000, seed=1)
    generate(business, events=1_000_000, seed=1, mix="business", on_new_day=business.set_today)
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain import context
from domain.app import Business
from domain.billing.invoices import Invoice
from domain.core import Result
from domain.crm.parties import PartyRole
from domain.crm.taxnumbers import vkn_check_digit
from domain.errors import DomainError
from domain.inventory.stock import StockItem, stock_id

FIRST = [
    "Ayşe",
    "Mehmet",
    "Fatma",
    "Ali",
    "Zeynep",
    "Mustafa",
    "Elif",
    "Ahmet",
    "Emine",
    "Hüseyin",
    "Selin",
    "Can",
    "Deniz",
    "Burak",
    "Ece",
    "Murat",
    "Gül",
    "Emre",
    "Derya",
    "Kerem",
    "Özge",
    "Serkan",
    "İrem",
    "Oğuz",
    "Şule",
    "Tolga",
    "Çağla",
    "Barış",
]
LAST = [
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Erdoğan",
    "Aksoy",
    "Güneş",
]
TRADES = [
    "Tekstil",
    "Makina",
    "Gıda",
    "Lojistik",
    "Mobilya",
    "Döküm",
    "Plastik",
    "Kimya",
    "Yazılım",
    "İnşaat",
    "Otomotiv",
    "Enerji",
    "Ambalaj",
    "Tarım",
    "Medikal",
]
FORMS = ["A.Ş.", "Ltd. Şti.", "San. ve Tic. A.Ş.", ""]
CITIES = ["İstanbul", "Ankara", "İzmir", "Bursa", "Kocaeli", "Konya", "Gaziantep", "Kayseri"]
SOURCES = [
    ("web", 35),
    ("referral", 20),
    ("fair", 15),
    ("cold-call", 10),
    ("linkedin", 10),
    ("partner", 5),
    ("other", 5),
]
CAMPAIGNS = [None, None, "SPRING26", "AUTUMN26", "ISTANBUL-FAIR", "WEBINAR-Q2", "NEWSLETTER"]
OWNERS = ["mehmet", "zeynep", "ayse", "burak", "elif", "can"]
KINDS = [("call", 40), ("email", 25), ("meeting", 15), ("note", 10), ("task", 10)]
STAGES = ["qualification", "proposal", "negotiation"]

SALES = OWNERS
WAREHOUSE = ["depo.hakan", "depo.sevgi", "depo.yusuf"]
FINANCE = ["muhasebe.nur", "muhasebe.levent"]
SCHEDULER = "system:scheduler"  # as api/jobs.py runs its jobs
# The generated commands' ids: uuid5 of seed and sequence, so that a seed gives the same ones.
COMMANDS = uuid.UUID("6f0e7c3a-2b1d-4c8e-9a51-3d7b0f2e8c64")

# What one step of a story asks for: a command to run, given the business.
Step = Callable[[Business], Result]
Story = Generator["Step | As | Wait", Result | None, None]


@dataclass(frozen=True)
class As:
    """A step run by someone in particular (warehouse, finance), or with the whole command
    context given (the scheduler's jobs: their command id is their idempotency key)."""

    step: Step
    actor: str | None = None
    ctx: context.CommandContext | None = None


@dataclass(frozen=True)
class Wait:
    """Not a command: the story resumes this many business days later."""

    days: int


@dataclass
class Item:
    """A product of the catalogue, as the generator remembers it."""

    id: uuid.UUID
    sku: str
    price: Decimal
    cost: Decimal
    stocked: bool
    popularity: float


def weighted(rng: random.Random, choices: list[tuple[Any, int]]) -> Any:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def vkn(rng: random.Random) -> str:
    """A random 10-digit Turkish tax number (VKN) with a valid check digit."""
    first_nine = "".join(str(rng.randrange(10)) for _ in range(9))
    return first_nine + str(vkn_check_digit(first_nine))


@dataclass
class World:
    """What stories share: customers to convert leads into, e-mails to reuse, tax numbers."""

    rng: random.Random
    customers: list[uuid.UUID] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    taxes: set[str] = field(default_factory=set)
    today: date = field(default_factory=date.today)
    # The `business` mix: order to cash beside the CRM.
    business: bool = False
    products: list[Item] = field(default_factory=list)
    suppliers: list[uuid.UUID] = field(default_factory=list)
    buyers: list[uuid.UUID] = field(default_factory=list)  # parties with the customer role
    buying: set[uuid.UUID] = field(default_factory=set)  # the same, to look up
    open_quotes: dict[uuid.UUID, date] = field(default_factory=dict)  # id -> valid until
    unpaid: dict[uuid.UUID, date] = field(default_factory=dict)  # invoice id -> due date
    overdue: set[uuid.UUID] = field(default_factory=set)
    reordering: set[uuid.UUID] = field(default_factory=set)  # products with a receipt coming
    short: dict[uuid.UUID, Decimal] = field(default_factory=dict)  # wanted beyond the target
    spawned: list[Story] = field(default_factory=list)  # stories started by other stories
    peek: Callable[[uuid.UUID], Any] | None = None
    peek_optional: Callable[[uuid.UUID], Any] = lambda _id: None

    def spawn(self, story: Story) -> None:
        self.spawned.append(story)

    def buyer(self, party_id: uuid.UUID) -> None:
        if party_id not in self.buying:
            self.buying.add(party_id)
            self.buyers.append(party_id)

    def company(self) -> str:
        form = self.rng.choice(FORMS)
        return f"{self.rng.choice(LAST)} {self.rng.choice(TRADES)} {form}".strip()

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def email(self, name: str) -> str:
        if self.emails and self.rng.random() < 0.05:  # the same person, again
            return self.rng.choice(self.emails)
        local = name.lower().replace(" ", ".").translate(str.maketrans("çğıöşüİ", "cgiosui"))
        address = f"{local}{self.rng.randrange(10_000)}@example.com.tr"
        self.emails.append(address)
        return address

    def tax_number(self) -> str:
        while True:
            number = vkn(self.rng)
            if number not in self.taxes:
                self.taxes.add(number)
                return number

    def activity(self, regarding: str, regarding_id: uuid.UUID, owner: str) -> tuple[Step, bool]:
        """Logging an activity, and whether it is logged as done (nobody completes it again)."""
        kind = weighted(self.rng, KINDS)
        subject = f"{kind} {self.rng.choice(['intro', 'follow-up', 'demo', 'pricing', 'visit'])}"
        notes = self.rng.choice(
            [
                None,
                None,
                "Asked for a price list.",
                "Call back next week.",
                "Interested in the premium line; budget approval pending.",
            ]
        )
        due = self.today + timedelta(days=self.rng.randrange(-30, 60))
        done = self.rng.random() < 0.2

        def step(b: Business) -> Result:
            return b.log_activity(
                kind=kind,
                subject=subject,
                regarding=regarding,
                regarding_id=regarding_id,
                notes=notes,
                due=due,
                owner=owner,
                done=done,
            )

        return step, done


def lead_story(w: World) -> Story:
    """One lead from capture to (perhaps) a won or lost deal, with activities on the way."""
    rng = w.rng
    name = w.person()
    company = w.company() if rng.random() < 0.7 else None
    address = w.email(name) if rng.random() < 0.8 else None
    owner = rng.choice(OWNERS)
    source = weighted(rng, SOURCES)
    campaign = rng.choice(CAMPAIGNS)
    phone = None
    if rng.random() < 0.6:
        phone = (
            f"+90 5{rng.randrange(10, 60)} {rng.randrange(100, 1000)} {rng.randrange(1000, 10_000)}"
        )
    lead = yield lambda b: b.capture_lead(
        name=name,
        company=company,
        email_address=address,
        phone=phone,
        source=source,
        campaign=campaign,
        owner=owner,
    )
    assert lead is not None
    activities: list[uuid.UUID] = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        step, done = w.activity("lead", lead.id, owner)
        logged = yield step
        assert logged is not None
        if not done:
            activities.append(logged.id)
    yield from complete_some(rng, activities)
    fate = rng.random()
    if fate < 0.15:
        yield lambda b: b.disqualify_lead(
            lead.id, rng.choice(["no budget", "not a fit", "unreachable", "competitor"])
        )
        return
    if fate < 0.35:
        return  # left new
    yield lambda b: b.qualify_lead(lead.id)
    if rng.random() < 0.25:
        yield lambda b: b.disqualify_lead(lead.id, "went quiet after qualification")
        return
    if rng.random() < 0.3:
        return  # left qualified
    # Convert: into a new customer (sometimes with a tax number), or an existing one.
    existing = rng.choice(w.customers) if w.customers and rng.random() < 0.15 else None
    amount = Decimal(rng.randrange(500_000, 200_000_000)) / 100
    currency = rng.choice(["TRY"] * 8 + ["EUR", "USD"])
    expected = w.today + timedelta(days=rng.randrange(15, 240))
    tax = w.tax_number() if existing is None and rng.random() < 0.5 else None
    converted = yield lambda b: b.convert_lead(
        lead.id,
        customer_id=existing,
        amount=amount,
        currency_code=currency,
        expected_close=expected,
        tax_number_value=tax,
        opportunity_title=f"{rng.choice(TRADES)} supply",
    )
    assert converted is not None
    customer_id = uuid.UUID(converted.extra["customer_id"])
    opportunity_id = uuid.UUID(converted.extra["opportunity_id"])
    if existing is None:
        w.customers.append(customer_id)
    if w.business:
        w.buyer(customer_id)
    activities = []
    for _ in range(rng.choice([0, 1, 2, 3])):
        target = rng.choice(
            [
                ("customer", customer_id),
                ("opportunity", opportunity_id),
                ("opportunity", opportunity_id),
            ]
        )
        step, done = w.activity(*target, owner)
        logged = yield step
        assert logged is not None
        if not done:
            activities.append(logged.id)
    for stage in STAGES[: rng.randrange(0, len(STAGES) + 1)]:
        probability = None if rng.random() < 0.7 else Decimal(rng.randrange(5, 95))
        yield lambda b, stage=stage, probability=probability: b.move_opportunity(
            opportunity_id, stage, probability
        )
    yield from complete_some(rng, activities)
    if w.business and rng.random() < 0.6:
        # The deal is quoted; the quote's fate decides the opportunity's.
        yield from quote_to_cash(w, customer_id, opportunity_id)
        return
    end = rng.random()
    if end < 0.4:
        yield lambda b: b.win_opportunity(opportunity_id)
    elif end < 0.65:
        yield lambda b: b.lose_opportunity(
            opportunity_id, rng.choice(["price", "timing", "competitor"])
        )


def complete_some(rng: random.Random, activities: list[uuid.UUID]) -> Iterator[Step]:
    for activity_id in activities:
        if rng.random() < 0.6:
            yield lambda b, a=activity_id: b.complete_activity(a)


def supplier_story(w: World) -> Story:
    """A supplier registered directly (who may later become a customer via a lead)."""
    name = w.company() or "Tedarik A.Ş."
    city = w.rng.choice(CITIES)
    party = yield lambda b: b.register_customer(
        name=name,
        tax_number_value=w.tax_number(),
        roles={PartyRole.SUPPLIER},
        addresses=[{"line1": "Organize Sanayi Bölgesi 3. Cad. No: 12", "city": city}],
        payment_terms_days=60,
    )
    assert party is not None
    w.customers.append(party.id)  # converting a lead into it adds the customer role
    if w.business:
        w.suppliers.append(party.id)


def stories(w: World) -> Iterator[Story]:
    while True:
        if not w.business:
            yield supplier_story(w) if w.rng.random() < 0.03 else lead_story(w)
            continue
        r = w.rng.random()
        if r < 0.01:
            yield supplier_story(w)
        elif r < 0.04:
            yield customer_story(w)
        elif r < 0.55 or not w.buyers:
            yield lead_story(w)
        else:
            yield account_story(w, w.rng.choice(w.buyers))


# -- order to cash (the `business` mix) --------------------------------------------------------

VAT_RATES = [(20, 80), (10, 15), (1, 5)]
PRODUCT_WORDS = [
    "Kumaş",
    "İplik",
    "Rulman",
    "Conta",
    "Vana",
    "Pompa",
    "Kablo",
    "Profil",
    "Levha",
    "Boya",
    "Etiket",
    "Koli",
    "Vida",
    "Motor",
    "Filtre",
]


def catalogue_story(w: World, size: int) -> Story:
    """The products a trading company sells: mostly stocked goods, some services."""
    rng = w.rng
    for n in range(1, size + 1):
        stocked = rng.random() < 0.9
        word = rng.choice(PRODUCT_WORDS)
        sku = f"{word[:3].upper().translate(str.maketrans('İÇĞÖŞÜ', 'ICGOSU'))}-{n:04d}"
        cost = Decimal(rng.randrange(500, 250_000)) / 100
        price = (cost * Decimal(rng.randrange(120, 180)) / 100).quantize(Decimal("0.01"))
        vat = weighted(rng, VAT_RATES)
        result = yield As(
            lambda b, sku=sku, word=word, price=price, cost=cost, vat=vat, stocked=stocked: (
                b.define_product(
                    sku=sku,
                    name=f"{word} {sku}",
                    unit="adet" if stocked else "saat",
                    kind="stocked" if stocked else "service",
                    list_price=price,
                    vat_rate_percent=Decimal(vat),
                    standard_cost=cost if stocked else Decimal(0),
                    lead_time_days=rng.randrange(3, 30),
                )
            ),
            actor="admin",
        )
        assert result is not None
        w.products.append(Item(result.id, sku, price, cost, stocked, rng.paretovariate(1.2)))


def opening_stock_story(w: World) -> Story:
    """Stock counted in on the first day (opening balance, no supplier)."""
    rng = w.rng
    stocked = [p for p in w.products if p.stocked]
    for i in range(0, len(stocked), 20):
        lines = [
            {"product_id": p.id, "quantity": Decimal(rng.randrange(150, 600)), "unit_cost": p.cost}
            for p in stocked[i : i + 20]
        ]
        yield As(lambda b, lines=lines: b.receive_stock(lines=lines), actor=WAREHOUSE[0])


def customer_story(w: World) -> Story:
    """A customer registered directly (a walk-in company, not from a lead), who then buys."""
    rng = w.rng
    name = w.company() or "Müşteri A.Ş."
    party = yield lambda b: b.register_customer(
        name=name,
        tax_number_value=w.tax_number(),
        email_address=w.email(name) if rng.random() < 0.7 else None,
        addresses=[
            {
                "line1": f"{rng.choice(LAST)} Sok. No: {rng.randrange(1, 99)}",
                "city": rng.choice(CITIES),
            }
        ],
        payment_terms_days=rng.choice([0, 15, 30, 30, 45, 60]),
    )
    assert party is not None
    w.customers.append(party.id)
    w.buyer(party.id)
    yield Wait(rng.randrange(0, 10))
    yield from account_story(w, party.id)


def account_story(w: World, customer_id: uuid.UUID) -> Story:
    """An existing customer buys again: through a quote, or ordering straight away."""
    if w.rng.random() < 0.55:
        yield from quote_to_cash(w, customer_id, None)
    else:
        yield from order_to_cash(w, customer_id, quote_id=None)


def lines_for(w: World) -> list[dict[str, Any]]:
    rng = w.rng
    weights = [p.popularity for p in w.products]
    chosen: dict[uuid.UUID, Item] = {}
    for p in rng.choices(
        w.products, weights, k=weighted(rng, [(1, 40), (2, 30), (3, 20), (5, 10)])
    ):
        chosen[p.id] = p
    lines = []
    for p in chosen.values():
        line: dict[str, Any] = {
            "product_id": p.id,
            "quantity": Decimal(
                weighted(rng, [(1, 20), (2, 20), (5, 25), (10, 20), (25, 10), (60, 5)])
            ),
        }
        if rng.random() < 0.25:
            line["discount_percent"] = Decimal(rng.choice([2, 5, 5, 10, 15]))
        lines.append(line)
    return lines


def quote_to_cash(w: World, customer_id: uuid.UUID, opportunity_id: uuid.UUID | None) -> Story:
    """A quote sent, perhaps revised, then accepted (and ordered), rejected or left to expire."""
    rng = w.rng
    lines = lines_for(w)
    quote = yield lambda b: b.create_quote(
        customer_id=customer_id, lines=lines, opportunity_id=opportunity_id
    )
    assert quote is not None
    w.open_quotes[quote.id] = w.today + timedelta(days=30)
    yield Wait(rng.choice([0, 0, 1, 2]))
    yield lambda b, q=quote.id: b.send_quote(q)
    yield Wait(rng.randrange(0, 8))
    if rng.random() < 0.1:  # the customer asks for a better price
        lines = [{**line, "discount_percent": Decimal(rng.choice([5, 10, 12]))} for line in lines]
        revised = yield lambda b, q=quote.id: b.revise_quote(q, lines=lines)
        assert revised is not None
        w.open_quotes.pop(quote.id, None)  # the scheduler may have expired it
        quote = revised
        w.open_quotes[quote.id] = w.today + timedelta(days=30)
        yield lambda b, q=quote.id: b.send_quote(q)
        yield Wait(rng.randrange(0, 5))
    fate = rng.random()
    if fate < 0.12:
        w.open_quotes.pop(quote.id, None)  # the scheduler may have expired it
        yield lambda b, q=quote.id: b.reject_quote(
            q, rng.choice(["price too high", "found another supplier", "project postponed"])
        )
        if opportunity_id is not None:
            yield lambda b: b.lose_opportunity(opportunity_id, "price")
        return
    if fate < 0.2:
        return  # never answered: the scheduler expires it
    w.open_quotes.pop(quote.id, None)  # the scheduler may have expired it
    yield lambda b, q=quote.id: b.accept_quote(q)
    if opportunity_id is not None:
        yield lambda b: b.win_opportunity(opportunity_id)
    yield from order_to_cash(w, customer_id, quote_id=quote.id)


def order_to_cash(w: World, customer_id: uuid.UUID, quote_id: uuid.UUID | None) -> Story:
    """An order confirmed, shipped (in one go or in parts, waiting for stock when short),
    invoiced per shipment, and paid."""
    rng = w.rng
    if quote_id is not None:
        order = yield lambda b: b.place_order(quote_id=quote_id)
    else:
        lines = lines_for(w)
        order = yield lambda b: b.place_order(customer_id=customer_id, lines=lines)
    assert order is not None
    order_id = order.id
    yield Wait(rng.choice([0, 0, 1]))
    yield lambda b: b.confirm_order(order_id)
    if rng.random() < 0.03:
        yield Wait(rng.randrange(0, 3))
        yield lambda b: b.cancel_order(order_id, "customer cancelled")
        return
    partial = rng.random() < 0.15
    shipped = 0
    for _attempt in range(8):
        yield Wait(rng.choice([0, 1, 1, 2, 3]))
        order_now = _peek(w, order_id)
        open_lines = {n: order_now.open_to_ship(n) for n in order_now.lines}
        open_lines = {n: q for n, q in open_lines.items() if q > 0}
        if not open_lines:
            break
        if partial and shipped == 0 and len(open_lines) > 0:
            n, q = next(iter(open_lines.items()))
            ship_lines = [{"line": n, "quantity": max(Decimal(1), (q / 2).to_integral_value())}]
        else:
            ship_lines = None
        try:
            shipment = yield As(
                lambda b, ls=ship_lines: b.ship_order(order_id, lines=ls),
                actor=rng.choice(WAREHOUSE),
            )
        except DomainError:
            _reorder(w, order_now)
            yield Wait(rng.randrange(2, 6))  # waiting for the goods
            continue
        assert shipment is not None
        shipped += 1
        yield Wait(rng.choice([0, 0, 1]))
        invoice = yield As(lambda b: b.invoice_order(order_id), actor=rng.choice(FINANCE))
        assert invoice is not None
        yield from _pay_later(w, customer_id, invoice.id)
    else:
        yield lambda b: b.cancel_order(order_id, "could not be delivered in time")


def _peek(w: World, aggregate_id: uuid.UUID) -> Any:
    """The aggregate as the business has it now (the generator looks, records nothing)."""
    assert w.peek is not None
    return w.peek(aggregate_id)


def _reorder(w: World, order: Any) -> None:
    """The order could not be shipped for want of stock: the next receipt brings more."""
    for n, line in order.lines.items():
        w.short[line.product_id] = w.short.get(line.product_id, Decimal(0)) + order.open_to_ship(n)


def _pay_later(w: World, customer_id: uuid.UUID, invoice_id: uuid.UUID) -> Iterator[Any]:
    """Start the payment of an invoice as a story of its own (the order's story goes on)."""
    invoice: Invoice = _peek(w, invoice_id)
    w.unpaid[invoice_id] = invoice.due_date
    w.spawn(payment_story(w, customer_id, invoice_id, invoice.total, invoice.due_date))
    return iter(())


def payment_story(
    w: World, customer_id: uuid.UUID, invoice_id: uuid.UUID, total: Decimal, due: date
) -> Story:
    """Most customers pay around the due date, some late, some in two parts, a few never."""
    rng = w.rng
    fate = rng.random()
    if fate < 0.06:
        return  # never pays: the invoice goes overdue and stays open
    late = rng.choice([-10, -5, -2, 0, 0, 3, 7, 15, 40]) if fate < 0.8 else rng.randrange(30, 90)
    days = max(0, (due - w.today).days + late)
    parts = [total]
    if rng.random() < 0.12 and total >= Decimal(2):
        first = (total * Decimal(rng.choice([30, 40, 50])) / 100).quantize(Decimal("0.01"))
        parts = [first, total - first]
    method = "bank" if rng.random() < 0.9 else "cash"
    for amount in parts:
        yield Wait(days)
        days = rng.randrange(7, 30)
        yield As(
            lambda b, amount=amount: b.receive_payment(
                customer_id=customer_id,
                amount=amount,
                method=method,
                reference=f"EFT {rng.randrange(10**8, 10**9)}" if method == "bank" else None,
            ),
            actor=rng.choice(FINANCE),
        )
    w.unpaid.pop(invoice_id, None)


def purchasing_story(w: World) -> Story:
    """Each morning, goods below their reorder point are received from a supplier (what was
    ordered some days ago arrives): Dr inventory / Cr payables."""
    rng = w.rng
    low: list[tuple[Item, Decimal]] = []
    for p in w.products:
        if not p.stocked or p.id in w.reordering:
            continue
        item: StockItem | None = w.peek_optional(stock_id(p.id, "MAIN"))
        available = item.available if item is not None else Decimal(0)
        target = Decimal(int(60 + 400 * min(p.popularity, 6) / 6))
        short = w.short.get(p.id, Decimal(0))
        if available < target / 3 or short > available:
            w.short.pop(p.id, None)
            low.append((p, target + short - available))
    for i in range(0, len(low), 8):
        chunk = low[i : i + 8]
        lines = [
            {
                "product_id": p.id,
                "quantity": qty.to_integral_value(),
                "unit_cost": (p.cost * Decimal(rng.randrange(90, 112)) / 100).quantize(
                    Decimal("0.01")
                ),
            }
            for p, qty in chunk
        ]
        for p, _ in chunk:
            w.reordering.add(p.id)
        supplier = rng.choice(w.suppliers) if w.suppliers else None
        yield As(
            lambda b, lines=lines, supplier=supplier: b.receive_stock(
                lines=lines,
                supplier_id=supplier,
                reference=f"İRS-{rng.randrange(10**5, 10**6)}",
            ),
            actor=rng.choice(WAREHOUSE),
        )
        for p, _ in chunk:
            w.reordering.discard(p.id)


def jobs_story(w: World, today: date) -> Story:
    """The scheduler's daily run (api/jobs.py): expire quotes past their validity, mark
    unpaid invoices past their due date overdue; command ids from job, day and document."""
    for quote_id, until in sorted(w.open_quotes.items(), key=lambda kv: kv[1]):
        if until < today:
            del w.open_quotes[quote_id]
            yield _job(
                "expire-quotes", today, quote_id, lambda b, q=quote_id: b.expire_quote(q, today)
            )
    for invoice_id, due in list(w.unpaid.items()):
        if due < today and invoice_id not in w.overdue:
            w.overdue.add(invoice_id)
            yield _job(
                "mark-overdue",
                today,
                invoice_id,
                lambda b, i=invoice_id: b.mark_invoice_overdue(i, today),
            )


def _job(name: str, day: date, document_id: uuid.UUID, step: Step) -> As:
    key = f"{name}:{day.isoformat()}:{document_id}"
    ctx = context.CommandContext(
        actor=SCHEDULER, command_id=key, idempotency_key=key, fingerprint=key
    )
    return As(step, ctx=ctx)


@dataclass
class _Next:
    """The step a story gave when told that its last command failed."""

    step: Any


def generate(
    business: Business,
    events: int,
    *,
    seed: int = 1,
    in_flight: int = 300,
    idempotent_share: float = 0.3,
    after_command: Callable[[Result], None] | None = None,
    progress: Callable[[int], None] | None = None,
    mix: str = "crm",
    on_new_day: Callable[[date], None] | None = None,
    events_per_day: float = 3000,
    start_day: date | None = None,
    products: int = 120,
    days: int | None = None,
) -> int:
    """Run commands until the store holds at least `events` events; returns the head.
    With `days` (the `business` mix), the events after the set-up are spread over that many
    business days, whatever `events_per_day` says."""
    if mix not in ("crm", "business"):
        raise ValueError(f"unknown mix {mix!r} (crm, business)")
    rng = random.Random(seed)  # noqa: S311 - a history to reproduce, not a secret
    world = World(rng)
    source = stories(world)
    active: list[tuple[Story, Any]] = []
    parked: list[tuple[date, int, Story]] = []
    head = business.recorder.max_notification_id() or 0
    count = 0

    def run(step: Any) -> Result:
        nonlocal count, head
        count += 1
        key = f"gen-{seed}-{count}" if rng.random() < idempotent_share else None
        ctx = context.CommandContext(
            actor=rng.choice(OWNERS),
            command_id=str(uuid.uuid5(COMMANDS, f"{seed}:{count}")),
            idempotency_key=key,
            fingerprint=key or "",
        )
        if isinstance(step, As):
            ctx = step.ctx or replace(ctx, actor=step.actor or ctx.actor)
            step = step.step
        with context.acting(ctx):
            result = step(business)
        if result.position is not None:
            head = max(head, result.position)
        if after_command is not None:
            after_command(result)
        if progress is not None and count % 1000 == 0:
            progress(head)
        return result

    def run_through(story: Story) -> None:
        """A story that runs to its end at once (set-up, the day's jobs, receipts)."""
        last: Any = None
        while True:
            try:
                step = story.send(last) if last is not None else next(story)
            except StopIteration:
                return
            try:
                last = run(step)
            except DomainError:
                last = None

    if mix == "business":
        world.business = True
        span = days if days is not None else int(events / events_per_day)
        world.today = start_day or date.today() - timedelta(days=span)
        if on_new_day is not None:
            on_new_day(world.today)
        world.peek = business.repository.get

        def peek_optional(aggregate_id: uuid.UUID) -> Any:
            try:
                return business.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None

        world.peek_optional = peek_optional
        run_through(catalogue_story(world, products))
        for _ in range(12):
            run_through(supplier_story(world))
        run_through(opening_stock_story(world))
        if days is not None:
            events_per_day = max(1.0, (events - head) / days)
    day_ends = head + events_per_day
    sequence = 0
    while head < events:
        while world.business and head >= day_ends:
            # A day's worth of events is recorded (a big command may fill more than one).
            day_ends += events_per_day
            world.today += timedelta(days=1)
            if on_new_day is not None:
                on_new_day(world.today)
            while parked and parked[0][0] <= world.today:
                active.append((heapq.heappop(parked)[2], None))
            run_through(jobs_story(world, world.today))
            run_through(purchasing_story(world))
        while len(active) < in_flight:
            active.append((next(source), None))
        i = rng.randrange(len(active))
        story, last = active[i]
        try:
            if isinstance(last, _Next):
                step = last.step
            else:
                step = story.send(last) if last is not None else next(story)
        except StopIteration:
            active[i] = active[-1]
            active.pop()
            continue
        if isinstance(step, Wait):
            if step.days <= 0:
                active[i] = (story, None)
            else:
                sequence += 1
                heapq.heappush(parked, (world.today + timedelta(days=step.days), sequence, story))
                active[i] = active[-1]
                active.pop()
            continue
        try:
            result = run(step)
        except DomainError as error:
            # A rule said no (e.g. a duplicate tax number): nothing was recorded. The CRM's
            # stories end there; order to cash may handle it (wait for stock, then retry).
            if world.business:
                try:
                    active[i] = (story, _Next(story.throw(error)))
                    continue
                except (DomainError, StopIteration):
                    pass
            active[i] = active[-1]
            active.pop()
            continue
        active[i] = (story, result)
        if world.spawned:
            active.extend((s, None) for s in world.spawned)
            world.spawned.clear()
    return head
