"""A customer's receivables gain an event with every invoice and payment: they are loaded
from a snapshot taken every so many events, on the real stores, and come back exactly as
replaying every event makes them."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import uuid4

from eventsourcing.application import Repository

from api.services import Services
from domain import context
from domain.app import open_business
from domain.billing.receivables import RECEIVABLES_SNAPSHOT_INTERVAL, receivable_id
from domain.context import CommandContext
from domain.settings import Settings

INTERVAL = RECEIVABLES_SNAPSHOT_INTERVAL


def test_receivables_are_loaded_from_their_latest_snapshot(database_url: str) -> None:
    Services.open(Settings(database_url=database_url), initialise=True).close()
    customer = uuid4()
    business = open_business(Settings(database_url=database_url))
    try:
        day = date(2026, 1, 5)
        for n in range(2 * INTERVAL + 10):
            with context.acting(CommandContext(actor="test")):
                account = business._receivables(customer)
                if n % 3 == 2:  # a payment: the oldest open invoice, part of the next, credit
                    paid = Decimal("150.00") if n % 2 else Decimal("40.00")
                    decided = account.allocate(paid, None)
                    account.add_payment(uuid4(), paid, decided)
                else:
                    account.add_invoice(
                        uuid4(), f"SAT{n:013d}", day, day + timedelta(30), Decimal("100.00")
                    )
                business.save(account)
            day += timedelta(1)
        with context.acting(CommandContext(actor="test")):  # everything paid, credit left
            account = business._receivables(customer)
            account.add_payment(
                uuid4(), Decimal("9000.00"), account.allocate(Decimal("9000.00"), None)
            )
            account.add_invoice(uuid4(), "SAT9999999999999", day, day, Decimal("100.00"))
            business.save(account)
        kept = [s.originator_version for s in business.snapshots.get(receivable_id(customer))]
        live = business.repository.get(receivable_id(customer))
    finally:
        business.close()

    assert kept[:2] == [INTERVAL, 2 * INTERVAL]
    assert live.credit > 0
    assert all(i.open == 0 for i in live.items.values())

    again = open_business(Settings(database_url=database_url))  # nothing in memory
    try:
        read = []
        select = again.events.recorder.select_events

        def spy(originator_id, **kwargs):  # type: ignore[no-untyped-def]
            found = select(originator_id, **kwargs)
            read.extend(found)
            return found

        again.events.recorder.select_events = spy  # type: ignore[method-assign]
        loaded = again.repository.get(receivable_id(customer))
        again.events.recorder.select_events = select  # type: ignore[method-assign]
        replayed = Repository(event_store=again.events).get(receivable_id(customer))
    finally:
        again.close()
    assert [e.originator_version for e in read] == list(range(kept[-1] + 1, live.version + 1))
    for account in (loaded, replayed):
        assert account.version == live.version
        assert account.customer_id == live.customer_id
        assert account.credit == live.credit
        assert account.items == live.items
        assert account.open_items() == live.open_items()
