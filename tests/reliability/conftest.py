"""What the reliability tests share: separate tekil instances on one PostgreSQL schema (each
with its own connection pools, as separate processes would have), a business to work on, and
`tekil` run as a real process.

Every connection these tests open carries an application_name of their own (PGAPPNAME, which
libpq reads), so that a test may terminate its own connections on the shared server and no
one else's; the pools are kept small, as other tests use the same server at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from domain import context
from domain.app import Business, open_business
from domain.settings import Settings
from tests.conftest import _pg_connect, postgres_schema, read_model_rows

REPO = Path(__file__).resolve().parents[2]
TEKIL = [sys.executable, "-m", "replay.cli"]
SMALL_POOLS = {"BUSINESS_POSTGRES_POOL_SIZE": "1", "BUSINESS_POSTGRES_MAX_OVERFLOW": "6"}


@pytest.fixture
def app_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """The application_name of every connection this test opens (and of its subprocesses)."""
    name = f"tekil-rel-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("PGAPPNAME", name)
    for key, value in SMALL_POOLS.items():
        monkeypatch.setenv(key, value)
    return name


def terminate_connections(app_name: str) -> int:
    """Drop every server connection named `app_name` (the test's own); how many there were."""
    with _pg_connect() as conn:
        conn.execute("SET application_name = 'tekil-rel-terminator'")
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s "
            "AND pid <> pg_backend_pid()",
            (app_name,),
        ).fetchall()
    return len(rows)


def connection_count(app_name: str) -> int:
    with _pg_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


# -- instances of the API on one store ---------------------------------------------------------


@dataclass
class Client:
    """One API instance (its own Services: its own pools) and a way to call it as admin."""

    services: Services
    http: TestClient
    key: str

    def post(self, path: str, json: Any = None, **headers: str) -> httpx.Response:
        return self.http.post(
            path, json=json, headers={"Authorization": f"Bearer {self.key}", **headers}
        )


@contextmanager
def instances(
    database_url: str, count: int, *, projections: bool = False
) -> Iterator[list[Client]]:
    """`count` API instances on one store, the first of which initialised it. With
    `projections`, the first feeds the read models; otherwise none does (the tests catch up
    themselves, once the commands are done)."""
    with ExitStack() as stack:
        first = Services.open(Settings(database_url=database_url), initialise=True)
        stack.callback(first.close)
        key = first.keys.create("admin-reliability", ["admin"])
        opened = [first]
        for _ in range(count - 1):
            services = Services.open(Settings(database_url=database_url))
            stack.callback(services.close)
            opened.append(services)
        clients = []
        for n, services in enumerate(opened):
            app = create_app(services, run_projections=projections and n == 0)
            http = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            clients.append(Client(services, http, key))
        yield clients


@contextmanager
def fresh_business(database_url: str) -> Iterator[Business]:
    """The store as a process that starts now sees it (nothing cached from before)."""
    business = open_business(Settings(database_url=database_url))
    try:
        yield business
    finally:
        business.close()


def as_system(command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with context.acting(context.CommandContext(actor="test:setup")):
        return command(*args, **kwargs)


def stocked_product(business: Business, sku: str, units: int, price: int = 100) -> UUID:
    product = as_system(
        business.define_product, sku=sku, name=f"Widget {sku}", list_price=Decimal(price)
    )
    lines = [{"sku": sku, "quantity": Decimal(units), "unit_cost": Decimal(60)}]
    as_system(business.receive_stock, lines=lines)
    return UUID(str(product.id))


def customer(business: Business, name: str = "Anadolu Gıda") -> UUID:
    return UUID(str(as_system(business.register_customer, name=name).id))


def order(business: Business, customer_id: UUID, sku: str, units: int = 1) -> UUID:
    lines = [{"sku": sku, "quantity": Decimal(units)}]
    return UUID(str(as_system(business.place_order, customer_id=customer_id, lines=lines).id))


def shipped_order(business: Business, customer_id: UUID, sku: str, units: int = 1) -> UUID:
    order_id = order(business, customer_id, sku, units)
    as_system(business.confirm_order, order_id)
    as_system(business.ship_order, order_id)
    return order_id


def events_of(business: Business, topic_suffix: str) -> int:
    """How many events in the store have a topic ending in `topic_suffix`."""
    recorder: Any = business.recorder
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            f"SELECT count(*) FROM {recorder.datastore.schema}.{recorder.events_table_name} "
            "WHERE topic LIKE %s",
            ("%" + topic_suffix,),
        )
        row = curs.fetchone()
    return int(row["count"] if isinstance(row, dict) else row[0])


# -- tekil as a process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tekil(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """`tekil <args>` as a process of its own (in its own process group), output to `log`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [*TEKIL, *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """kill -9: no shutdown handler runs, no transaction is finished."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_hard(process)


def wait_until(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {said}")
        time.sleep(0.02)


def is_listening(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code < 500
    except httpx.HTTPError:
        return False


def rows_of_one_runner(store_url: str) -> tuple[dict[str, int], dict[str, list[tuple[Any, ...]]]]:
    """What one projection runner, from position 0, makes of the store at `store_url`: its
    positions and every read model's rows, built in a read schema of their own (dropped)."""
    with postgres_schema() as reads_url:
        clean = Services.open(Settings(database_url=store_url, read_database_url=reads_url))
        try:
            clean.runner.catch_up()
            return clean.reads.positions(), read_model_rows(clean)
        finally:
            clean.close()
