"""Crashes on PostgreSQL: `tekil projections run` killed with SIGKILL again and again in the
middle of a catch-up ends, once let finish, with exactly the read models a clean rebuild gives;
`tekil serve` killed with SIGKILL under load has lost no command it acknowledged."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from api.services import Services
from domain.app import Business
from domain.settings import Settings
from tests.conftest import read_model_rows
from tests.reliability.conftest import (
    as_system,
    customer,
    free_port,
    fresh_business,
    is_listening,
    kill_hard,
    rows_of_one_runner,
    start_tekil,
    stocked_product,
    stop,
    wait_until,
)


def business_history(business: Business, cycles: int) -> None:
    """Order to cash, `cycles` times over (about 17 events each): stock, orders, shipments,
    invoices, payments and their journal entries, for every read model to have work."""
    stocked_product(business, "HIST-1", cycles * 2)
    as_system(
        business.define_product,
        sku="HIST-2",
        name="Installation",
        kind="service",
        list_price=Decimal(40),
    )
    buyers = [customer(business, f"Müşteri {i}") for i in range(5)]
    for n in range(cycles):
        buyer = buyers[n % len(buyers)]
        lines = [
            {"sku": "HIST-1", "quantity": Decimal(1 + n % 2)},
            {"sku": "HIST-2", "quantity": Decimal(1)},
        ]
        order_id = as_system(business.place_order, customer_id=buyer, lines=lines).id
        as_system(business.confirm_order, order_id)
        as_system(business.ship_order, order_id)
        as_system(business.invoice_order, order_id)
        if n % 3:
            as_system(
                business.receive_payment, customer_id=buyer, amount=Decimal(100), method="bank"
            )


def test_a_projection_runner_killed_mid_catch_up_again_and_again_ends_as_a_clean_rebuild(
    postgresql_url: str, app_name: str, tmp_path: Path
) -> None:
    rng = random.Random()
    services = Services.open(Settings(database_url=postgresql_url), initialise=True)
    try:
        business_history(services.business, 260)
        head = services.business.recorder.max_notification_id() or 0
        assert head > 3800

        def positions() -> dict[str, int]:
            return services.reads.positions()

        kills = 0
        for _ in range(3):
            before = positions()
            if min(before.values()) >= head:
                break
            runner = start_tekil(
                "projections", "run", "--db", postgresql_url, log=tmp_path / "run.log"
            )
            try:
                # Once it has moved (it has connected and is in its catch-up), a random moment
                # later: in the middle of a batch as often as between two (a batch of 1,000
                # events takes about 0.1 s on this machine's PostgreSQL).
                wait_until(lambda b=before: positions() != b, 30, "the runner to make progress")
                time.sleep(rng.uniform(0, 0.12))
            finally:
                kill_hard(runner)
            kills += 1
        assert kills >= 2, "the catch-up ended before the runner was killed twice"

        runner = start_tekil("projections", "run", "--db", postgresql_url, log=tmp_path / "run.log")
        try:
            wait_until(
                lambda: min(positions().values()) >= head,
                60,
                lambda: (
                    f"the runner to catch up to {head}: {positions()}, "
                    f"log: {(tmp_path / 'run.log').read_text()[-3000:]}"
                ),
            )
        finally:
            stop(runner)
        survived = read_model_rows(services)
    finally:
        services.close()

    positions, rebuilt = rows_of_one_runner(postgresql_url)
    assert positions == dict.fromkeys(positions, head)
    assert sum(len(rows) for rows in rebuilt.values()) > head / 2
    for table, rows in rebuilt.items():
        assert survived[table] == rows, table


def test_a_server_killed_under_load_has_recorded_every_command_it_acknowledged(
    postgresql_url: str, app_name: str, tmp_path: Path
) -> None:
    services = Services.open(Settings(database_url=postgresql_url), initialise=True)
    key = services.keys.create("admin-crash", ["admin"])
    services.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: list[dict[str, Any]] = []
    failures: list[str] = []
    done = threading.Event()

    def drive(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=5) as http:
            n = 0
            while not done.is_set():
                n += 1
                body = {"name": f"Firma {worker}-{n}", "payment_terms_days": 30}
                try:
                    response = http.post("/api/customers", json=body)
                except httpx.HTTPError:
                    continue  # the server is gone: this command was never acknowledged
                if response.status_code == 201:
                    acknowledged.append(response.json())
                else:
                    failures.append(response.text)

    server = start_tekil(
        "serve",
        "--db",
        postgresql_url,
        "--port",
        str(port),
        "--no-jobs",
        "--no-projections",
        log=tmp_path / "serve.log",
    )
    try:
        wait_until(lambda: is_listening(port), 30, "the server to listen")
        workers = [threading.Thread(target=drive, args=(w,)) for w in range(4)]
        for w in workers:
            w.start()
        wait_until(lambda: len(acknowledged) >= 150, 30, "150 acknowledged commands")
        time.sleep(random.uniform(0, 0.2))
        kill_hard(server)
        time.sleep(0.3)  # answers in flight at the kill fail in the clients
        done.set()
        for w in workers:
            w.join(timeout=10)
    finally:
        done.set()
        kill_hard(server)
    assert not failures, failures[:3]

    with fresh_business(postgresql_url) as now:
        head = now.recorder.max_notification_id() or 0
        for answer in acknowledged:
            assert answer["position"] <= head
            (notification,) = now.recorder.select_notifications(answer["position"], 1)
            assert notification.id == answer["position"]
            party = now.repository.get(UUID(answer["id"]))
            assert party.version >= answer["version"]
        positions = [a["position"] for a in acknowledged]
        assert len(set(positions)) == len(positions)

    server = start_tekil(
        "serve",
        "--db",
        postgresql_url,
        "--port",
        str(port),
        "--no-jobs",
        "--no-projections",
        log=tmp_path / "serve.log",
    )
    try:
        wait_until(lambda: is_listening(port), 30, "the restarted server to listen")
        again = httpx.post(
            f"{base}/api/customers", json={"name": "Sonraki Firma"}, headers=headers, timeout=5
        )
        assert again.status_code == 201, again.text
        assert again.json()["position"] > max(a["position"] for a in acknowledged)
    finally:
        stop(server)
