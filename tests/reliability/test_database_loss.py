"""Losing the database connections mid-request, on PostgreSQL: the server terminates every
connection of this test (only of this test: other tests share the server) again and again
while payments and reads are in flight. Callers get 503 problem+json with Retry-After, never
a 500; each command is recorded whole or not at all; a caller that retries with its
Idempotency-Key gets its payment recorded exactly once; and the service recovers by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.billing.payments import Payment
from domain.numbering import NumberSeries, series_id
from tests.reliability.conftest import (
    Client,
    as_system,
    connection_count,
    customer,
    events_of,
    fresh_business,
    instances,
    terminate_connections,
)

PAYMENTS_PER_WORKER = 25


def test_dropped_connections_give_503_record_all_or_nothing_and_heal_by_themselves(
    postgresql_url: str, app_name: str
) -> None:
    with instances(postgresql_url, 2, projections=True) as clients:
        buyer = str(customer(clients[0].services.business))
        clients[0].services.runner.catch_up()
        statuses: Counter[int] = Counter()
        unexpected: list[str] = []
        recorded: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()

        slowest = [0.0]

        def note(response: httpx.Response) -> None:
            with lock:
                statuses[response.status_code] += 1
                slowest[0] = max(slowest[0], response.elapsed.total_seconds())
            if response.status_code == 503:
                if response.headers.get("content-type") != "application/problem+json":
                    unexpected.append(f"503 without problem+json: {response.text}")
                if "retry-after" not in response.headers:
                    unexpected.append(f"503 without Retry-After: {response.text}")
            elif response.status_code not in (200, 201) and not conflict(response):
                unexpected.append(f"{response.status_code}: {response.text}")

        def pay(client: Client, key: str) -> None:
            body = {"customer_id": buyer, "amount": "10.00", "method": "bank"}
            for _ in range(40):
                response = client.post("/api/payments", body, **{"Idempotency-Key": key})
                note(response)
                if response.status_code == 201:
                    recorded[key] = response.json()
                    return
                if response.status_code != 503 and not conflict(response):
                    return
                time.sleep(0.05)

        def work(client: Client, worker: int) -> None:
            for n in range(PAYMENTS_PER_WORKER):
                pay(client, f"pay-{worker}-{n}")
                note(client.http.get(f"/api/customers/{buyer}", headers=auth(client)))

        workers = [
            threading.Thread(target=work, args=(clients[w % 2], w), daemon=True) for w in range(4)
        ]
        for w in workers:
            w.start()
        dropped = []
        while any(w.is_alive() for w in workers) and len(dropped) < 8:
            time.sleep(0.15)
            dropped.append(terminate_connections(app_name))
        for w in workers:
            w.join(timeout=60)
        assert not any(w.is_alive() for w in workers)
        assert len([n for n in dropped if n]) >= 4, dropped  # connections really were lost

        assert not unexpected, unexpected[:5]
        assert set(statuses) <= {200, 201, 409, 503}, statuses
        # No request waits out a pool of dead connections one by one (psycopg_pool backs off
        # 1, 2, 4, ... s between them: 15 s and more; a few seconds here are the load).
        assert slowest[0] < 8, slowest
        # Every caller got its payment recorded in the end, each exactly once.
        assert len(recorded) == 4 * PAYMENTS_PER_WORKER

        # Healed without a restart: the next requests succeed the first time.
        for client in clients:
            response = client.post(
                "/api/payments", {"customer_id": buyer, "amount": "1.00", "method": "bank"}
            )
            assert response.status_code == 201, response.text
            assert client.http.get("/health").status_code == 200
        assert connection_count(app_name) > 0

    with fresh_business(postgresql_url) as now:
        # All or nothing: a payment, its number and its journal entry, or none of them.
        payments = 4 * PAYMENTS_PER_WORKER + len(clients)
        assert events_of(now, "Payment.Received") == payments
        series = now.repository.get(series_id("THS", now.today().year))
        assert isinstance(series, NumberSeries)
        assert series.last == payments
        assert events_of(now, "CommandRecord.Recorded") == 4 * PAYMENTS_PER_WORKER
        for answer in recorded.values():
            assert isinstance(now.repository.get(answer["id"]), Payment)
        numbers = [now.repository.get(a["id"]).number for a in recorded.values()]
        assert len(set(numbers)) == len(numbers)


def test_a_pool_whose_connections_were_all_dropped_serves_the_next_command_at_once(
    postgresql_url: str, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSINESS_POSTGRES_POOL_SIZE", "6")  # six open from the start
    with instances(postgresql_url, 1) as (client,):
        business = client.services.business
        buyer = customer(business)

        def pay() -> float:
            began = time.monotonic()
            as_system(business.receive_payment, customer_id=buyer, amount=Decimal(1), method="bank")
            return time.monotonic() - began

        pay()
        assert terminate_connections(app_name) >= 6
        assert pay() < 1
        assert pay() < 1


def conflict(response: httpx.Response) -> bool:
    """409 for a race lost too often (nothing recorded): the caller tries again."""
    return response.status_code == 409 and response.json()["type"].endswith("/conflict")


def auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.key}"}
