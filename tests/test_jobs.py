"""Scheduled jobs on SQLite and PostgreSQL: quotes expire and invoices turn overdue as the
scheduler's commands, once per day however often the job runs, from the scheduler in
`tekil serve` and from `tekil jobs run`."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.jobs import ACTOR, expire_quotes, mark_overdue_invoices
from api.services import Services
from domain import context
from domain.billing.invoices import Invoice
from domain.commands import CommandRecord
from domain.core import Result
from domain.sales.quotes import Quote
from replay.cli import main
from tests.conftest import event_count


def do(services: Services, command: Any, *args: Any, **kwargs: Any) -> Result:
    with context.acting(context.CommandContext(actor="tester")):
        result: Result = command(*args, **kwargs)
    return result


@pytest.fixture
def business(services: Services) -> Services:
    b = services.business
    do(services, b.define_product, sku="W-1", name="Widget", list_price=Decimal(100))
    do(services, b.receive_stock, lines=[{"sku": "W-1", "quantity": 50, "unit_cost": 60}])
    return services


def customer(services: Services) -> UUID:
    return do(services, services.business.register_customer, name="Acme", payment_terms_days=30).id


def quote(services: Services, customer_id: UUID, valid_until: date) -> UUID:
    return do(
        services,
        services.business.create_quote,
        customer_id=customer_id,
        lines=[{"sku": "W-1", "quantity": 1}],
        valid_until=valid_until,
    ).id


def invoice(services: Services, customer_id: UUID, on: date) -> UUID:
    b = services.business
    q = quote(services, customer_id, b.today())
    do(services, b.accept_quote, q)
    order = do(services, b.place_order, quote_id=q).id
    do(services, b.confirm_order, order)
    do(services, b.ship_order, order)
    return do(services, b.invoice_order, order, invoice_date=on).id


def catch_up(services: Services) -> None:
    services.runner.catch_up()


def recorded_since(services: Services, position: int) -> list[Any]:
    """The events recorded after `position`, but for the command records beside them."""
    b = services.business
    events = [
        b.mapper.to_domain_event(n) for n in b.recorder.select_notifications(position + 1, 1000)
    ]
    return [e for e in events if not isinstance(e, CommandRecord.Recorded)]


def test_quotes_past_their_validity_expire_once_however_often_the_job_runs(
    business: Services,
) -> None:
    services = business
    today = services.business.today()
    acme = customer(services)
    lapsing = quote(services, acme, today)
    lasting = quote(services, acme, today + timedelta(days=10))
    accepted = quote(services, acme, today)
    do(services, services.business.accept_quote, accepted)
    catch_up(services)

    tomorrow = today + timedelta(days=1)
    before = event_count(services)
    run = expire_quotes(services, tomorrow)
    assert run.recorded == [str(lapsing)]
    [expiry] = recorded_since(services, before)
    assert isinstance(expiry, Quote.Expired)
    assert expiry.originator_id == lapsing
    assert expiry.meta["actor"] == ACTOR
    assert expiry.meta["command_id"] == f"expire-quotes:{tomorrow.isoformat()}:{lapsing}"
    assert services.business.repository.get(lasting).status == "draft"
    assert services.business.repository.get(accepted).status == "accepted"

    # The same day again, before and after the read model has seen the expiry: nothing new.
    after = event_count(services)
    stale = expire_quotes(services, tomorrow, catch_up_timeout=0)
    assert (stale.candidates, stale.recorded) == (1, [])
    catch_up(services)
    assert expire_quotes(services, tomorrow).recorded == []
    assert expire_quotes(services, tomorrow + timedelta(days=1)).candidates == 0
    assert event_count(services) == after


def test_open_invoices_past_their_due_date_are_marked_overdue_once(business: Services) -> None:
    services = business
    acme = customer(services)
    late = invoice(services, acme, date(2026, 1, 10))  # due 2026-02-09
    paid = invoice(services, acme, date(2026, 1, 12))
    current = invoice(services, acme, date(2026, 2, 20))  # due 2026-03-22
    total = services.business.repository.get(paid).total
    do(
        services,
        services.business.receive_payment,
        customer_id=acme,
        amount=total,
        method="bank",
        allocations=[{"invoice_id": paid, "amount": total}],
    )
    catch_up(services)

    before = event_count(services)
    run = mark_overdue_invoices(services, date(2026, 3, 1))
    assert (run.candidates, run.recorded) == (1, [str(late)])
    [marked] = recorded_since(services, before)
    assert isinstance(marked, Invoice.MarkedOverdue)
    assert (marked.originator_id, marked.meta["actor"]) == (late, ACTOR)
    assert services.business.repository.get(current).overdue is False
    assert services.business.repository.get(paid).overdue is False

    after = event_count(services)
    stale = mark_overdue_invoices(services, date(2026, 3, 1), catch_up_timeout=0)
    assert (stale.candidates, stale.recorded) == (1, [])
    catch_up(services)
    assert mark_overdue_invoices(services, date(2026, 3, 2)).candidates == 0
    assert event_count(services) == after

    invoices = services.reads["invoices"]["invoices"]
    with services.reads.reader.connect() as conn:
        flagged = (
            conn.execute(invoices.select().where(invoices.c.overdue.is_(True))).mappings().all()
        )
    assert [(r["id"], r["overdue_since"]) for r in flagged] == [(late, date(2026, 3, 1))]


def test_the_scheduler_in_the_api_process_runs_the_jobs_at_start_up(business: Services) -> None:
    services = business
    acme = customer(services)
    late = invoice(services, acme, date(2025, 1, 10))
    with TestClient(create_app(services, run_jobs=True)):
        deadline = time.monotonic() + 15
        while not services.business.repository.get(late).overdue:
            assert time.monotonic() < deadline, "the start-up run did not mark the invoice"
            time.sleep(0.05)
    with TestClient(create_app(services)):  # off unless asked for
        pass
    overdue = [
        e
        for e in (
            services.business.mapper.to_domain_event(n)
            for n in services.business.recorder.select_notifications(1, 10_000)
        )
        if isinstance(e, Invoice.MarkedOverdue)
    ]
    assert [e.meta["actor"] for e in overdue] == [ACTOR]


def test_tekil_jobs_run_marks_overdue_invoices_for_the_date_given(business: Services) -> None:
    services = business
    late = invoice(services, customer(services), date(2026, 1, 10))
    url = services.settings.database_url
    runner = CliRunner()
    first = runner.invoke(
        main, ["jobs", "run", "mark-overdue", "--date", "2026-03-01", "--db", url]
    )
    assert first.exit_code == 0, first.output
    assert "1 due, 1 recorded" in first.output
    before = event_count(services)
    again = runner.invoke(
        main, ["jobs", "run", "mark-overdue", "--date", "2026-03-01", "--db", url]
    )
    assert again.exit_code == 0, again.output
    assert "0 due, 0 recorded" in again.output
    assert event_count(services) == before
    assert services.business.repository.get(late).overdue is True
    quotes = runner.invoke(main, ["jobs", "run", "expire-quotes", "--db", url])
    assert quotes.exit_code == 0, quotes.output
