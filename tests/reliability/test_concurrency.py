"""Real concurrency on PostgreSQL: several API instances (each with its own connection pools,
as separate processes have) race for the same stock, the same invoice and the same number
series, released at one moment by a barrier. The store's version check decides every race:
exactly as many win as the facts allow, the others are refused with nothing recorded."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from domain.billing.invoices import Invoice
from domain.billing.payments import Payment
from domain.billing.receivables import ReceivableAccount, receivable_id
from domain.inventory.stock import StockItem, stock_id
from domain.numbering import NumberSeries, series_id
from tests.reliability.conftest import (
    Client,
    customer,
    events_of,
    fresh_business,
    instances,
    order,
    shipped_order,
    stocked_product,
)

T = TypeVar("T")


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in a thread of its own, all released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def problem_kind(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def test_the_last_units_go_to_exactly_as_many_orders_as_there_are_units(
    postgresql_url: str, app_name: str
) -> None:
    units, buyers = 4, 12
    with instances(postgresql_url, 3) as clients:
        business = clients[0].services.business
        product = stocked_product(business, "LAST-1", units)
        buyer = customer(business)
        orders = [order(business, buyer, "LAST-1") for _ in range(buyers)]

        def confirm_and_ship(client: Client, order_id: Any) -> tuple[int, int]:
            confirmed = client.post(f"/api/orders/{order_id}/confirm")
            shipped = client.post("/api/shipments", {"order_id": str(order_id)})
            return confirmed.status_code, shipped.status_code

        answers = at_once(
            [(lambda c=clients[i % 3], o=o: confirm_and_ship(c, o)) for i, o in enumerate(orders)]
        )
        shipped = [a for a in answers if a[1] == 201]
        assert len(shipped) == units, answers
        assert Counter(s for _, s in answers) == {201: units, 409: buyers - units}
        assert {c for c, _ in answers} <= {200, 409}

        with fresh_business(postgresql_url) as now:
            item = now.repository.get(stock_id(product, "MAIN"))
            assert isinstance(item, StockItem)
            assert (item.on_hand, item.reserved) == (0, 0)
            assert events_of(now, "Shipment.Dispatched") == units
            series = now.repository.get(series_id("IRS", now.today().year))
            assert isinstance(series, NumberSeries)
            assert series.last == units

        services = clients[0].services
        services.runner.catch_up()
        items = services.reads["stock"].tables["items"]
        with services.reads.reader.connect() as conn:
            row = conn.execute(select(items).where(items.c.product_id == product)).one()
        assert (row.on_hand, row.reserved, row.available) == (0, 0, 0)


def test_parallel_payments_never_allocate_more_than_an_invoice_is_open_for(
    postgresql_url: str, app_name: str
) -> None:
    with instances(postgresql_url, 3) as clients:
        business = clients[0].services.business
        stocked_product(business, "PAY-1", 1, price=100)
        buyer = customer(business)
        invoiced = clients[0].post(
            "/api/invoices", {"order_id": str(shipped_order(business, buyer, "PAY-1"))}
        )
        assert invoiced.status_code == 201, invoiced.text
        invoice_id = invoiced.json()["id"]
        invoice = business.repository.get(invoice_id)
        assert isinstance(invoice, Invoice)
        total = invoice.total
        assert total == Decimal("120.00")

        def pay(client: Client) -> httpx.Response:
            body = {
                "customer_id": str(buyer),
                "amount": "30.00",
                "method": "bank",
                "allocations": [{"invoice_id": invoice_id, "amount": "30.00"}],
            }
            return client.post("/api/payments", body)

        answers = at_once([(lambda c=clients[i % 3]: pay(c)) for i in range(10)])
        accepted = [a for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code != 201]
        assert len(accepted) == 4, [a.text for a in answers]
        assert {(a.status_code, problem_kind(a)) for a in refused} == {(422, "invalid-input")}
        assert all(a.json()["errors"][0]["field"] == "allocations[0].amount" for a in refused)

        allocated = [x for a in accepted for x in a.json()["allocations"]]
        assert allocated == [{"invoice_id": invoice_id, "amount": "30.00"}] * 4
        with fresh_business(postgresql_url) as now:
            account = now.repository.get(receivable_id(buyer))
            assert isinstance(account, ReceivableAccount)
            assert not account.is_open(invoice.id)
            assert all(isinstance(now.repository.get(a.json()["id"]), Payment) for a in accepted)
            assert events_of(now, "Payment.Received") == 4


def test_invoices_issued_at_the_same_moment_get_gapless_numbers_without_duplicates(
    postgresql_url: str, app_name: str
) -> None:
    count = 8
    with instances(postgresql_url, 3) as clients:
        business = clients[0].services.business
        stocked_product(business, "NUM-1", count)
        buyer = customer(business)
        orders = [shipped_order(business, buyer, "NUM-1") for _ in range(count)]

        answers = at_once(
            [
                (lambda c=clients[i % 3], o=o: c.post("/api/invoices", {"order_id": str(o)}))
                for i, o in enumerate(orders)
            ]
        )
        refused = [a.text for a in answers if a.status_code != 201]
        assert not refused
        numbers = sorted(a.json()["number"] for a in answers)
        year = business.today().year
        assert numbers == [f"SAT{year}{n:09d}" for n in range(1, count + 1)]
        assert len({a.json()["id"] for a in answers}) == count
        assert len({a.json()["position"] for a in answers}) == count
        # Nothing of the attempts that lost a race: one invoice, one number, one journal
        # entry per answer.
        with fresh_business(postgresql_url) as now:
            assert events_of(now, "Invoice.Issued") == count
            series = now.repository.get(series_id("SAT", year))
            assert isinstance(series, NumberSeries)
            assert series.last == count
            invoices = [now.repository.get(a.json()["id"]) for a in answers]
            assert sorted(i.number for i in invoices) == numbers


def test_the_same_request_sent_twice_at_once_with_one_idempotency_key_records_once(
    postgresql_url: str, app_name: str
) -> None:
    keys = [f"register-{n}" for n in range(6)]
    with instances(postgresql_url, 3) as clients:

        def register(client: Client, key: str) -> httpx.Response:
            body = {"name": f"Ege Tekstil {key}", "payment_terms_days": 45}
            return client.post("/api/customers", body, **{"Idempotency-Key": key})

        for key in keys:
            answers = at_once([(lambda c=c, k=key: register(c, k)) for c in clients])
            assert [a.status_code for a in answers] == [201] * len(clients), [
                a.text for a in answers
            ]
            first = answers[0].json()
            assert all(a.json() == first for a in answers), [a.json() for a in answers]

        with fresh_business(postgresql_url) as now:
            assert events_of(now, "Party.Registered") == len(keys)
            assert events_of(now, "CommandRecord.Recorded") == len(keys)
