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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    return _figures(times)


def _figures(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p95_ms": round(percentile(times, 95), 3),
    }


def taking_turns(
    calls: dict[str, Callable[[], Any]], *, samples: int, budget: float, block: int = 10
) -> dict[str, dict[str, Any]]:
    """`timed` of several calls (one report on histories of each size), which take turns a
    `block` of calls at a time, each round in another order: so that each sees the same
    machine, and a percentile compares like with like. Up to `samples` calls of each, or
    `budget` seconds for all."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    order = list(calls.items())
    deadline = time.perf_counter() + budget
    round_ = 0
    while any(len(t) < samples for t in times.values()) and (
        round_ * block < 5 or time.perf_counter() < deadline
    ):
        shift = round_ % len(order)
        for name, call in order[shift:] + order[:shift]:
            for _ in range(block):
                began = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - began) * 1000)
        round_ += 1
    return {name: _figures(t) for name, t in times.items()}


def answer_rows(answer: Any) -> int:
    """The rows of a report's answer: the items of its lists (its groups, lines, periods,
    accounts), at any depth."""
    if hasattr(answer, "model_dump"):
        answer = answer.model_dump()
    if isinstance(answer, dict):
        return sum(answer_rows(v) for v in answer.values())
    if isinstance(answer, list):
        return len(answer) + sum(answer_rows(v) for v in answer)
    return 0


# The customer statement measured: of a customer with about this many lines in the year it
# covers, at every size of history — a statement's cost follows its lines, and the busiest
# customer of 8,000 (a million events) has more of them than the busiest of 70 (10k).
STATEMENT_LINES = 30


def statement_customer(services: Services, lines: int = STATEMENT_LINES) -> tuple[UUID, int]:
    """The customer whose statement (this year's lines on the current-account accounts, as
    the API's default) has the number of lines closest to `lines` (the longest, if none has
    as many); and that number."""
    table = services.reads["ledger"]["lines"]
    today = services.business.today()
    count = func.count()
    query = (
        select(table.c.party_id, count)
        .where(table.c.account.in_(party_accounts(services.business.chart)))
        .where(table.c.party_id.is_not(None))
        .where(table.c.entry_date.between(today.replace(month=1, day=1), today))
        .group_by(table.c.party_id)
        .order_by(func.abs(count - lines), count.desc())
        .limit(1)
    )
    with services.reads.reader.connect() as conn:
        customer, found = conn.execute(query).one()
    return customer, found


@dataclass
class _History:
    """A history whose reports are measured: its services, the customer of its statement,
    and a key for HTTP."""

    url: str
    services: Services
    customer: UUID
    statement_lines: int
    crud_rows: dict[str, int]
    key: str

    def query(self, route: Route) -> Callable[[], Any]:
        def call() -> Any:
            with self.services.reads.reader.connect() as conn:
                return route(self.services, Reader(conn, self.services.reads), self.customer)

        return call

    def plain(self, name: str) -> Callable[[], Decimal]:
        chart = self.services.business.chart
        ctx = {"today": self.services.business.today(), "customer_id": self.customer}

        def call() -> Decimal:
            with self.services.reads.reader.connect() as conn:
                return crud.REPORTS[name](conn, chart, ctx)

        return call


def measure(
    urls: dict[str, str], *, samples: int, budget: float, http: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """Every report on the stores of `urls` (name: URL, read models caught up), each as the
    API's query and as a CRUD schema's plain aggregation, the histories taking turns
    (`taking_turns`); and over HTTP for those named in `http`. By name of history."""
    opened: dict[str, _History] = {}
    try:
        for name, url in urls.items():
            services = Services.open(Settings(database_url=url))
            try:
                customer, lines = statement_customer(services)
                crud_rows = crud.fill(services.reads.writer, services.reads)
                key = ""
                if name in http:
                    key = services.keys.create("bench-reports", ["admin"], replace=True)
            except BaseException:
                services.close()
                raise
            opened[name] = _History(url, services, customer, lines, crud_rows, key)
        out: dict[str, dict[str, Any]] = {
            name: {"crud_rows": h.crud_rows, "statement_lines": h.statement_lines, "reports": {}}
            for name, h in opened.items()
        }
        for report, (route, figure, _) in ROUTES.items():
            queries = {name: h.query(route) for name, h in opened.items()}
            plains = {name: h.plain(report) for name, h in opened.items()}
            ours = taking_turns(queries, samples=samples, budget=budget)
            theirs = taking_turns(plains, samples=samples, budget=budget)
            for name in opened:
                answer, reference = queries[name](), plains[name]()
                mine = figure(answer)
                out[name]["reports"][report] = {
                    "answer_rows": answer_rows(answer),
                    "query": ours[name],
                    "crud": theirs[name],
                    "figure": str(mine),
                    "crud_figure": str(reference),
                    "agree": mine == reference,
                }
    finally:
        for h in opened.values():
            h.services.close()
    for name in http:
        h = opened[name]
        got = over_http(h.url, h.key, h.customer, samples=samples, budget=budget)
        for report, figures in got.items():
            out[name]["reports"][report]["http"] = figures
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
