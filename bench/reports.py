"""Report latency on a history: each report as the API answers it, and as a CRUD ERP would.

* `query`: the API's route function itself (api/routers), called as FastAPI calls it — with
  a read connection taken from the read store's pool for the call — without HTTP, request
  parsing or JSON encoding.
* `http`: `GET` of the same report from `tekil serve` (uvicorn) on the same store, one client
  with a kept-alive connection.
* `crud`: the same report as a plain SQL aggregation over normalised document tables holding
  the same facts (bench/crud.py).

Every report answers one figure both ways (the trial balance's total debit, the stock value,
...), so that the two can be seen to agree.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select

from api.deps import Reader
from api.routers import finance, reports, stock
from api.services import Services
from bench import crud
from bench.harness import ROOT
from bench.history import percentile
from bench.load import TEKIL, free_port, stop, wait_healthy
from domain.settings import Settings
from projections.receivables import party_accounts


def _signed(amount: str, side: str | None) -> Decimal:
    return -Decimal(amount) if side == "A" else Decimal(amount)


# Name: (the route called as the API calls it, the figure both answers give, its HTTP path).
Route = Callable[[Services, Reader, UUID], Any]
ROUTES: dict[str, tuple[Route, Callable[[Any], Decimal], str]] = {
    "pipeline": (
        lambda s, r, c: reports.pipeline(r, None, None),
        lambda a: sum((Decimal(row["amount"]) for row in a["by_stage"]), Decimal(0)),
        "/api/reports/pipeline",
    ),
    "stock": (
        lambda s, r, c: stock.stock_report(r, None, None, None),
        lambda a: Decimal(a.totals.value),
        "/api/reports/stock",
    ),
    "cash flow": (
        lambda s, r, c: finance.cash_flow(s, r, None, None, None, "month"),
        lambda a: Decimal(a["closing_balance"]),
        "/api/reports/cash-flow",
    ),
    "profitability": (
        lambda s, r, c: finance.profitability(r, None, "product", None, None),
        lambda a: Decimal(a["total"]["revenue"]),
        "/api/reports/profitability?by=product",
    ),
    "trial balance": (
        lambda s, r, c: finance.trial_balance(s, r, None, None, None),
        lambda a: Decimal(a["totals"]["debit"]),
        "/api/reports/trial-balance",
    ),
    "income statement": (
        lambda s, r, c: finance.income_statement(s, r, None, None, None),
        lambda a: Decimal(a["net_profit"]),
        "/api/reports/income-statement",
    ),
    "customer statement": (
        lambda s, r, c: finance.customer_statement(c, s, r, None, None, None),
        lambda a: _signed(a["closing_balance"], a["closing_side"]),
        "/api/customers/{customer}/statement",
    ),
}


def timed(call: Callable[[], Any], *, samples: int, budget: float) -> dict[str, Any]:
    """p50/p95 in ms of `call` over up to `samples` calls or `budget` seconds (at least 5
    calls), after one untimed call."""
    call()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < samples and (len(times) < 5 or time.perf_counter() < deadline):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p95_ms": round(percentile(times, 95), 3),
    }


def busiest_customer(services: Services) -> UUID:
    """The customer with the most lines on the current-account accounts (the longest
    statement)."""
    lines = services.reads["ledger"]["lines"]
    query = (
        select(lines.c.party_id)
        .where(lines.c.account.in_(party_accounts(services.business.chart)))
        .where(lines.c.party_id.is_not(None))
        .group_by(lines.c.party_id)
        .order_by(func.count().desc())
        .limit(1)
    )
    with services.reads.reader.connect() as conn:
        found: UUID = conn.execute(query).scalar_one()
    return found


def measure(url: str, *, samples: int, budget: float, http: bool = True) -> dict[str, Any]:
    """Every report three ways on the store at `url` (read models caught up)."""
    services = Services.open(Settings(database_url=url))
    try:
        customer = busiest_customer(services)
        chart = services.business.chart
        ctx = {"today": services.business.today(), "customer_id": customer}
        crud_rows = crud.fill(services.reads.writer, services.reads)
        key = services.keys.create("bench-reports", ["admin"], replace=True) if http else ""
        out: dict[str, Any] = {"crud_rows": crud_rows, "reports": {}}
        for name, (route, figure, _) in ROUTES.items():

            def query(route: Route = route) -> Any:
                with services.reads.reader.connect() as conn:
                    return route(services, Reader(conn, services.reads), customer)

            def plain(name: str = name) -> Decimal:
                with services.reads.reader.connect() as conn:
                    return crud.REPORTS[name](conn, chart, ctx)

            ours, theirs = figure(query()), plain()
            out["reports"][name] = {
                "query": timed(query, samples=samples, budget=budget),
                "crud": timed(plain, samples=samples, budget=budget),
                "figure": str(ours),
                "crud_figure": str(theirs),
                "agree": ours == theirs,
            }
    finally:
        services.close()
    if http:
        for name, got in over_http(url, key, customer, samples=samples, budget=budget).items():
            out["reports"][name]["http"] = got
    return out


def over_http(url: str, key: str, customer: UUID, *, samples: int, budget: float) -> dict[str, Any]:
    """Each report's GET from `tekil serve` (one process, no jobs) on the store at `url`,
    with the API key `key`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*TEKIL, "serve", "--db", url, "--port", str(port), "--no-jobs"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = {}
    try:
        wait_healthy(base, server)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for name, (_, _, path) in ROUTES.items():
                target = path.format(customer=customer)

                def get(target: str = target) -> None:
                    client.get(target).raise_for_status()

                out[name] = timed(get, samples=samples, budget=budget)
    finally:
        stop(server)
    return out
