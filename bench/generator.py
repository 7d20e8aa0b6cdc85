"""Realistic CRM history, recorded through the Business's own commands.

Leads arrive from several sources and campaigns (some sharing an e-mail address with an
earlier lead), get calls and meetings, are qualified or disqualified, and some are converted
into a customer and an opportunity (sometimes an existing customer, sometimes with a tax
number). Opportunities move through the stages and are won, lost or left open; activities are
logged against leads, customers and opportunities and most are completed later. About a third
of the commands carry an idempotency key, as API clients send them.

Many lead "stories" are in flight at once and take turns, so the events of different
aggregates interleave in the log as they do in a real company. The same seed gives the same
commands (ids and timestamps differ).

    from generator import generate
    generate(business, events=100_000, seed=1)
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from domain import context
from domain.app import Business
from domain.core import Result
from domain.crm.parties import PartyRole
from domain.errors import DomainError

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

# What one step of a story asks for: a command to run, given the business.
Step = Callable[[Business], Result]
Story = Generator[Step, Result | None, None]


def weighted(rng: random.Random, choices: list[tuple[Any, int]]) -> Any:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def vkn(rng: random.Random) -> str:
    """A random 10-digit Turkish tax number (VKN) with a valid check digit."""
    digits = [rng.randrange(10) for _ in range(9)]
    total = 0
    for i in range(9):
        tmp = (digits[i] + 9 - i) % 10
        value = (tmp * 2 ** (9 - i)) % 9
        if tmp != 0 and value == 0:
            value = 9
        total += value
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


@dataclass
class World:
    """What stories share: customers to convert leads into, e-mails to reuse, tax numbers."""

    rng: random.Random
    customers: list[uuid.UUID] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    taxes: set[str] = field(default_factory=set)
    today: date = field(default_factory=date.today)

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

    def activity(self, regarding: str, regarding_id: uuid.UUID, owner: str) -> Step:
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
        return lambda b: b.log_activity(
            kind=kind,
            subject=subject,
            regarding=regarding,
            regarding_id=regarding_id,
            notes=notes,
            due=due,
            owner=owner,
            done=done,
        )


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
        logged = yield w.activity("lead", lead.id, owner)
        assert logged is not None
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
    activities = []
    for _ in range(rng.choice([0, 1, 2, 3])):
        target = rng.choice(
            [
                ("customer", customer_id),
                ("opportunity", opportunity_id),
                ("opportunity", opportunity_id),
            ]
        )
        logged = yield w.activity(*target, owner)
        assert logged is not None
        activities.append(logged.id)
    for stage in STAGES[: rng.randrange(0, len(STAGES) + 1)]:
        probability = None if rng.random() < 0.7 else Decimal(rng.randrange(5, 95))
        yield lambda b, stage=stage, probability=probability: b.move_opportunity(
            opportunity_id, stage, probability
        )
    yield from complete_some(rng, activities)
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


def stories(w: World) -> Iterator[Story]:
    while True:
        yield supplier_story(w) if w.rng.random() < 0.03 else lead_story(w)


def generate(
    business: Business,
    events: int,
    *,
    seed: int = 1,
    in_flight: int = 300,
    idempotent_share: float = 0.3,
    after_command: Callable[[Result], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run commands until the store holds at least `events` events; returns the head."""
    rng = random.Random(seed)
    world = World(rng)
    source = stories(world)
    active: list[tuple[Story, Result | None]] = []
    head = business.recorder.max_notification_id() or 0
    count = 0
    while head < events:
        while len(active) < in_flight:
            active.append((next(source), None))
        i = rng.randrange(len(active))
        story, last = active[i]
        try:
            step = story.send(last) if last is not None else next(story)
        except StopIteration:
            active[i] = active[-1]
            active.pop()
            continue
        count += 1
        key = f"gen-{seed}-{count}" if rng.random() < idempotent_share else None
        ctx = context.CommandContext(
            actor=rng.choice(OWNERS), idempotency_key=key, fingerprint=key or ""
        )
        try:
            with context.acting(ctx):
                result = step(business)
        except DomainError:
            # A rule said no (e.g. a duplicate tax number): nothing was recorded. End it.
            active[i] = active[-1]
            active.pop()
            continue
        active[i] = (story, result)
        if result.position is not None:
            head = max(head, result.position)
        if after_command is not None:
            after_command(result)
        if progress is not None and count % 1000 == 0:
            progress(head)
    return head
