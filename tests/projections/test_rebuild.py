"""Read models are a pure function of the events, on SQLite and PostgreSQL: dropping them and
rebuilding from position 0 — in large batches, small batches, or one event at a time while the
commands are still coming in — gives exactly the rows live processing gave."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import inspect, text

from api.services import Services
from domain import context
from domain.app import Business
from domain.context import CommandContext
from domain.core import Result
from domain.crm.parties import PartyRole
from domain.crm.taxnumbers import is_valid_vkn
from domain.errors import DomainError
from projections.runner import Runner, _audit_in_sql, rebuild
from tests.conftest import read_model_rows as dump

SOURCES = ["web", "referral", "fair", "cold-call", "partner"]
OWNERS = ["mehmet", "zeynep", "ali"]
STAGES = ["qualification", "proposal", "negotiation"]


def valid_vkns() -> list[str]:
    return [
        n for n in (f"{i:010d}" for i in range(1_000_000_000, 1_000_000_400)) if is_valid_vkn(n)
    ]


def run_scenario(business: Business, leads: int = 40, seed: int = 7) -> dict[str, int]:
    """A varied stretch of CRM work; returns how many of each thing it made."""
    rng = random.Random(seed)
    vkns = iter(valid_vkns())
    made = {"leads": 0, "customers": 0, "opportunities": 0, "activities": 0, "rejected": 0}

    def do(actor: str, command: Any, *args: Any, **kwargs: Any) -> Result | None:
        try:
            with context.acting(CommandContext(actor=actor)):
                return command(*args, **kwargs)
        except DomainError:
            made["rejected"] += 1  # a rejected command records nothing, as in real life
            return None

    customers: list[UUID] = []
    opportunities: list[UUID] = []
    for i in range(3):
        c = do(
            "finance",
            business.register_customer,
            name=f"Anadolu {i}",
            tax_number_value=next(vkns),
            email_address=f"buyer{i}@anadolu.com.tr",
            addresses=[{"line1": f"Cad. {i}", "city": "İstanbul"}],
            contacts=[{"name": f"Hakan {i}", "role": "buyer"}],
            credit_limit=Decimal("1000.50") * (i + 1),
            currency_code="EUR" if i else "TRY",
        )
        assert c is not None
        customers.append(c.id)
        made["customers"] += 1
    for i in range(leads):
        owner = rng.choice(OWNERS)
        email = f"contact{rng.randrange(leads // 2)}@firm{i % 7}.com" if i % 3 else None
        lead = do(
            owner,
            business.capture_lead,
            name=f"Lead {i}",
            company=f"Firm {i}" if i % 2 else None,
            email_address=email.upper() if email and i % 5 == 0 else email,
            source=rng.choice(SOURCES),
            campaign=f"C{i % 4}" if i % 4 else None,
        )
        assert lead is not None
        made["leads"] += 1
        fate = rng.random()
        if fate < 0.2:
            do(owner, business.disqualify_lead, lead.id, f"reason {i}")
        elif fate < 0.35:
            do(owner, business.qualify_lead, lead.id)
        elif fate < 0.8:
            if rng.random() < 0.5:
                do(owner, business.qualify_lead, lead.id)
            into = rng.choice(customers) if rng.random() < 0.2 else None
            converted = do(
                owner,
                business.convert_lead,
                lead.id,
                customer_id=into,
                create_opportunity=rng.random() < 0.9,
                amount=Decimal(rng.randrange(1, 10**7)) / 100,
                currency_code=rng.choice(["TRY", "TRY", "EUR", "USD"]),
                expected_close=date(2027, 1, 1) + timedelta(days=rng.randrange(365)),
                tax_number_value=next(vkns) if into is None and rng.random() < 0.5 else None,
            )
            if converted is not None:
                if into is None:
                    customers.append(UUID(converted.extra["customer_id"]))
                    made["customers"] += 1
                if converted.extra["opportunity_id"]:
                    opportunities.append(UUID(converted.extra["opportunity_id"]))
                    made["opportunities"] += 1
        if i % 6 == 0:
            do(owner, business.qualify_lead, lead.id)  # often rejected: already past new
        if i % 4 == 1:
            a = do(
                owner,
                business.log_activity,
                kind=rng.choice(["call", "email", "note"]),
                subject=f"About lead {i}",
                regarding="lead",
                regarding_id=lead.id,
                done=rng.random() < 0.5,
            )
            made["activities"] += a is not None
    for i in range(leads // 4):
        o = do(
            rng.choice(OWNERS),
            business.open_opportunity,
            customer_id=rng.choice(customers),
            title=f"Deal {i}",
            amount=Decimal(rng.randrange(0, 10**8)) / 100,
            stage=rng.choice(["prospecting", *STAGES]),
            probability=Decimal(rng.randrange(0, 1000)) / 10 if i % 3 == 0 else None,
        )
        assert o is not None
        opportunities.append(o.id)
        made["opportunities"] += 1
    for opportunity in opportunities:
        for _ in range(rng.randrange(3)):
            do(
                "zeynep",
                business.move_opportunity,
                opportunity,
                rng.choice(STAGES),
                Decimal(rng.randrange(0, 101)) if rng.random() < 0.3 else None,
            )
        ending = rng.random()
        if ending < 0.3:
            do("zeynep", business.win_opportunity, opportunity)
        elif ending < 0.5:
            do("zeynep", business.lose_opportunity, opportunity, "price")
        if rng.random() < 0.4:
            about_the_deal = rng.random() < 0.5
            task = do(
                "mehmet",
                business.log_activity,
                kind="task",
                subject="Follow up",
                regarding="opportunity" if about_the_deal else "customer",
                regarding_id=opportunity if about_the_deal else rng.choice(customers),
                due=date(2027, 1, 1) + timedelta(days=rng.randrange(60)),
            )
            if task is not None:
                made["activities"] += 1
                if rng.random() < 0.5:
                    do("mehmet", business.complete_activity, task.id)
                do("mehmet", business.win_opportunity, opportunity)  # rejected if closed
    # A supplier who starts buying: the party gains the customer role.
    supplier = do(
        "finance", business.register_customer, name="Şahin Lojistik", roles={PartyRole.SUPPLIER}
    )
    lead = do("ali", business.capture_lead, name="Burak Şahin", company="Şahin Lojistik")
    assert supplier is not None
    assert lead is not None
    do("ali", business.convert_lead, lead.id, customer_id=supplier.id, create_opportunity=False)
    made["leads"] += 1
    made["customers"] += 1
    return made


CRM_TABLES = {
    "leads": "leads.leads",
    "parties": "customers.parties",
    "opportunities": "opportunities.opportunities",
    "activities": "activities.activities",
}


Rows = dict[str, list[tuple[Any, ...]]]


def counts(rows: Rows) -> dict[str, int]:
    return {short: len(rows[table]) for short, table in CRM_TABLES.items()}


def rebuild_all(services: Services, batch_size: int = 1000) -> int:
    projections = list(services.reads.projections.values())
    for projection in projections:
        services.reads.reset(projection)
    assert all(p == 0 for p in services.reads.positions().values())
    return Runner(services.business, services.reads, projections, batch_size=batch_size).catch_up()


def head(services: Services) -> int:
    return services.business.recorder.max_notification_id() or 0


@pytest.fixture(scope="module")
def worked(shared_services: Services) -> tuple[dict[str, int], Rows]:
    """One store per backend with a stretch of CRM work, its read models fed live: what the
    work made, and the rows live processing gave. Each test rebuilds and compares."""
    made = run_scenario(shared_services.business, leads=32)
    shared_services.runner.catch_up()
    return made, dump(shared_services)


def test_live_processing_took_in_the_whole_stretch_of_work(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    made, live = worked

    assert counts(live) == {
        "leads": made["leads"],
        "parties": made["customers"],
        "opportunities": made["opportunities"],
        "activities": made["activities"],
    }
    assert made["rejected"] > 0
    status = shared_services.reads["leads"]["leads"].columns.keys().index("status")
    statuses = {row[status] for row in live["leads.leads"]}
    assert statuses == {"new", "qualified", "disqualified", "converted"}


def test_a_rebuild_from_zero_gives_exactly_the_rows_live_processing_gave(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    _, live = worked

    events = rebuild_all(shared_services)

    assert dump(shared_services) == live
    assert events == head(shared_services)
    assert set(shared_services.reads.positions().values()) == {head(shared_services)}


def test_a_rebuild_in_batches_of_three_gives_the_same_rows(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    _, live = worked

    rebuild_all(shared_services, batch_size=3)

    assert dump(shared_services) == live


def test_a_rebuild_on_two_processes_gives_the_same_rows(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    """The read models of `SECOND` (the audit trail, the ledger, ...) are rebuilt by a
    second process beside the others, both writing the one database (on SQLite taking turns
    at its write lock, on PostgreSQL each its own tables)."""
    _, live = worked
    projections = list(shared_services.reads.projections.values())
    url = shared_services.settings.database_url

    events = rebuild(
        shared_services.business, shared_services.reads, projections, jobs=2, store_url=url
    )

    assert dump(shared_services) == live
    assert events == head(shared_services)
    assert set(shared_services.reads.positions().values()) == {head(shared_services)}
    # Each process indexed the tables it filled.
    tables = [t for p in projections for t in p.metadata.sorted_tables]
    with shared_services.reads.reader.connect() as conn:
        present = {i["name"] for t in tables for i in inspect(conn).get_indexes(t.name)}
    assert {i.name for t in tables for i in t.indexes} <= present


def test_stock_and_activities_go_to_the_second_process_only_where_sql_makes_the_audit_trail(
    shared_services: Services,
) -> None:
    """With the read models in the store's database (its SQLite file, its PostgreSQL
    database) the audit trail is made in SQL and the second process has room for more; not
    when the audit trail is not rebuilt."""
    reads = shared_services.reads
    everything = list(reads.projections.values())

    assert _audit_in_sql(shared_services.business, reads, everything) is True
    without_audit = [p for p in everything if p.name != "audit"]
    assert _audit_in_sql(shared_services.business, reads, without_audit) is False


def test_rebuilding_one_read_model_leaves_the_others_as_they_were(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    _, live = worked
    leads = shared_services.reads["leads"]

    shared_services.reads.reset(leads)
    assert dump(shared_services)["leads.leads"] == []
    Runner(shared_services.business, shared_services.reads, [leads], batch_size=5).catch_up()

    assert dump(shared_services) == live


def test_the_live_runner_following_one_event_at_a_time_agrees_with_a_batch_rebuild(
    services: Services,
) -> None:
    follower = Runner(services.business, services.reads, batch_size=1, poll_interval=0.005)
    follower.start()
    try:
        made = run_scenario(services.business, leads=16, seed=5)
        deadline = time.monotonic() + 120  # a bound on liveness, not a timing
        while min(services.reads.positions().values()) < head(services):
            assert time.monotonic() < deadline, services.reads.positions()
            time.sleep(0.01)
    finally:
        follower.stop()
    assert follower.failed == {}
    followed = dump(services)

    rebuild_all(services)

    assert dump(services) == followed
    assert len(followed["leads.leads"]) == made["leads"]


def test_a_rebuild_leaves_postgresql_the_statistics_of_the_rows_it_wrote(
    shared_services: Services, worked: tuple[dict[str, int], Rows]
) -> None:
    """The planner chooses indexes by them; autovacuum would gather them only later (or
    never, where it is off), and a report would meanwhile run on guesses."""
    if shared_services.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite plans without statistics unless asked (no ANALYZE run)")
    projections = list(shared_services.reads.projections.values())

    rebuild(shared_services.business, shared_services.reads, projections)

    # Column statistics (what selectivity is estimated by) exist once a table is analyzed;
    # building indexes sets the row count, not these.
    query = text(
        "SELECT count(DISTINCT tablename) FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = ANY(:names)"
    )
    tables = [t.name for p in projections for t in p.metadata.sorted_tables]
    filled = [name for name, rows in dump(shared_services).items() if rows]
    with shared_services.reads.reader.connect() as conn:
        analyzed = conn.execute(query, {"names": tables}).scalar_one()
    assert len(filled) > 5
    assert analyzed >= len(filled)
