"""The finance read models (ledger, invoices, payments, profitability) are a pure function of
the events, on SQLite and PostgreSQL: followed live in small batches while the commands come
in, or rebuilt from position 0 in one go, they hold exactly the same rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Table, func, select

from api.services import Services
from domain import context
from domain.core import Result
from domain.ledger.entries import JournalEntry
from domain.values import ZERO
from projections.financial import Totals, _period_totals, account_totals, period_shape
from projections.runner import Runner

FINANCE = ("ledger", "invoices", "payments", "profitability")


def rows(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with services.reads.reader.connect() as conn:
        for name in FINANCE:
            for short, table in services.reads[name].tables.items():
                query = select(table).order_by(*table.primary_key.columns)
                out[f"{name}.{short}"] = [tuple(r) for r in conn.execute(query).all()]
    return out


def order_to_cash(services: Services, follow: Runner) -> None:
    """Two customers buying over a few months: partial shipments and invoices, payments
    allocated, automatic and in excess, credit used, a manual entry and an overdue mark;
    the follower takes in each command's events as they come."""
    b = services.business

    def do(command: Any, *args: Any, **kwargs: Any) -> Result:
        with context.acting(context.CommandContext(actor="tester")):
            result: Result = command(*args, **kwargs)
        follow.catch_up()
        return result

    for sku, price, cost in (("A-1", 100, "61.333"), ("B-2", 45, "20")):
        do(b.define_product, sku=sku, name=sku, list_price=Decimal(price))
        do(b.receive_stock, lines=[{"sku": sku, "quantity": 30, "unit_cost": cost}])
    acme = do(b.register_customer, name="Acme", payment_terms_days=30).id
    kaya = do(b.register_customer, name="Kaya", payment_terms_days=0).id
    do(b.receive_payment, customer_id=kaya, amount=Decimal(100), method="cash")
    for customer_id, on in (
        (acme, date(2026, 1, 5)),
        (kaya, date(2026, 2, 1)),
        (acme, date(2026, 3, 3)),
    ):
        q = do(
            b.create_quote,
            customer_id=customer_id,
            lines=[
                {"sku": "A-1", "quantity": 7},
                {"sku": "B-2", "quantity": 3, "discount_percent": 10},
            ],
        ).id
        do(b.accept_quote, q)
        order = do(b.place_order, quote_id=q).id
        do(b.confirm_order, order)
        do(b.ship_order, order, lines=[{"line": 1, "quantity": 4}])
        first = do(b.invoice_order, order, invoice_date=on).id
        do(b.ship_order, order)
        do(b.invoice_order, order, invoice_date=on.replace(day=20))
        do(
            b.receive_payment,
            customer_id=customer_id,
            amount=Decimal("123.45"),
            method="bank",
            allocations=[{"invoice_id": first, "amount": Decimal("123.45")}],
        )
    do(b.receive_payment, customer_id=acme, amount=Decimal(5000), method="bank")
    do(
        b.post_journal_entry,
        entry_date=date(2026, 3, 31),
        description="bank charges",
        lines=[{"account": "780", "debit": "12.50"}, {"account": "102", "credit": "12.50"}],
    )
    unpaid = rows(services)["invoices.invoices"]
    for invoice in unpaid:
        do(b.mark_invoice_overdue, invoice[0], date(2026, 12, 31))


def test_a_rebuild_from_zero_gives_exactly_the_rows_live_following_gave(
    services: Services,
) -> None:
    finance = [services.reads[name] for name in FINANCE]
    follow = Runner(services.business, services.reads, finance, batch_size=2)
    order_to_cash(services, follow)
    live = rows(services)
    assert len(live["invoices.invoices"]) == 6
    overdue = list(services.reads["invoices"]["invoices"].columns.keys()).index("overdue")
    assert any(r[overdue] for r in live["invoices.invoices"])
    assert len(live["payments.payments"]) == 5
    assert len(live["ledger.entries"]) == len(
        [
            n
            for n in services.business.recorder.select_notifications(1, 10_000)
            if n.topic.endswith(JournalEntry.Posted.__qualname__)
        ]
    )

    for projection in finance:
        services.reads.reset(projection)
    assert all(not table for table in rows(services).values())
    Runner(services.business, services.reads, finance, batch_size=5000).catch_up()
    assert rows(services) == live


def test_the_ledger_holds_every_journal_line_and_balances(services: Services) -> None:
    finance = [services.reads[name] for name in FINANCE]
    order_to_cash(services, Runner(services.business, services.reads, finance, batch_size=500))
    lines = services.reads["ledger"]["lines"]
    with services.reads.reader.connect() as conn:
        count, debit, credit = conn.execute(
            select(func.count(), func.sum(lines.c.debit), func.sum(lines.c.credit))
        ).one()
    posted = [
        services.business.mapper.to_domain_event(n)
        for n in services.business.recorder.select_notifications(1, 10_000)
        if n.topic.endswith(JournalEntry.Posted.__qualname__)
    ]
    assert count == sum(len(e.lines) for e in posted)
    assert debit == credit == sum((line["debit"] for e in posted for line in e.lines), Decimal(0))
    assert isinstance(posted[0].originator_id, UUID)


EDGES = [
    None,
    *(
        date(2026, m, d)
        for m, d in ((1, 1), (1, 5), (1, 31), (2, 1), (2, 15), (2, 28), (3, 1), (3, 20), (3, 31))
    ),
    date(2025, 12, 31),
    date(2026, 4, 1),
]


def test_report_totals_equal_the_sums_of_the_lines_over_any_period(services: Services) -> None:
    """The totals the reports read (months, and days at the edges) add up to exactly what
    the lines of the period, of those accounts or that kind of source, add up to."""
    finance = [services.reads[name] for name in FINANCE]
    order_to_cash(services, Runner(services.business, services.reads, finance, batch_size=3))
    lines = services.reads["ledger"]["lines"]
    with services.reads.reader.connect() as conn:
        all_lines = conn.execute(select(lines)).all()
        assert {r.entry_date.month for r in all_lines} >= {1, 2, 3}

        def by_lines(keep: Any) -> dict[str, Totals]:
            out: dict[str, Totals] = {}
            for r in all_lines:
                if keep(r):
                    out[r.account] = out.get(r.account, Totals()) + Totals(r.debit, r.credit)
            return out

        for first in EDGES:
            for last in EDGES:
                got = account_totals(conn, lines, date_from=first, date_to=last)
                assert got == by_lines(
                    lambda r, a=first, b=last: (
                        (a is None or r.entry_date >= a) and (b is None or r.entry_date <= b)
                    )
                ), (first, last)
                for account in ("102", "120", "600"):
                    counted = [
                        r
                        for r in all_lines
                        if r.account == account
                        and (first is None or r.entry_date >= first)
                        and (last is None or r.entry_date <= last)
                    ]
                    assert _period_totals(conn, lines, account, first, last) == (
                        sum((r.debit for r in counted), ZERO),
                        sum((r.credit for r in counted), ZERO),
                        len(counted),
                    ), (account, first, last)
            if first is not None:
                got = account_totals(conn, lines, before=first, accounts=["102", "120"])
                assert got == by_lines(
                    lambda r, a=first: r.entry_date < a and r.account in ("102", "120")
                ), first
                got = account_totals(conn, lines, date_to=first, source_kind="payment")
                assert got == by_lines(
                    lambda r, a=first: r.entry_date <= a and r.source_kind == "payment"
                ), first


def test_profitability_totals_equal_the_sums_of_its_lines_over_any_period(
    services: Services,
) -> None:
    """By order, customer and product the report reads totals per month and day: they give
    what the invoice and shipment lines of the period give (zero where a group has none)."""
    finance = [services.reads[name] for name in FINANCE]
    order_to_cash(services, Runner(services.business, services.reads, finance, batch_size=3))
    model = services.reads["profitability"]
    with services.reads.reader.connect() as conn:
        for by in ("order", "customer", "product"):
            for first in EDGES:
                for last in EDGES:
                    totals = _running_totals(conn, model, by, first, last)
                    for side, table in zip(totals, ("revenue", "costs"), strict=True):
                        lines = _line_sums(conn, model[table], f"{by}_id", first, last)
                        assert set(lines) <= set(side), (by, first, last)
                        assert side or (first, last) != (None, None)
                        for key, got in side.items():
                            assert got == lines.get(key, (0, 0)), (by, first, last, table)


def _running_totals(
    conn: Connection, model: Any, by: str, first: date | None, last: date | None
) -> tuple[dict[Any, tuple[Decimal, Decimal]], dict[Any, tuple[Decimal, Decimal]]]:
    """Revenue and cost, each (amount, quantity), per group of `by` as the report reads them
    from profitability's running totals (its statement for the period's shape)."""
    shape, params = None, {}
    if first is not None or last is not None:
        found = period_shape(first, last)
        if found is None:
            return {}, {}
        shape, params = found
    revenue, cost = {}, {}
    statement = model._totals_statement(shape)
    for key, r_amount, r_qty, c_amount, c_qty in conn.execute(statement, {**params, "kind": by}):
        revenue[key], cost[key] = (r_amount, r_qty), (c_amount, c_qty)
    return revenue, cost


def _line_sums(
    conn: Connection, table: Table, key: str, first: date | None, last: date | None
) -> dict[Any, tuple[Decimal, Decimal]]:
    """Amount and quantity per group of profitability's lines dated within first..last."""
    query = select(table.c[key], func.sum(table.c.amount), func.sum(table.c.quantity))
    if first is not None:
        query = query.where(table.c.on_date >= first)
    if last is not None:
        query = query.where(table.c.on_date <= last)
    return {k: (a, q) for k, a, q in conn.execute(query.group_by(table.c[key])).all()}
