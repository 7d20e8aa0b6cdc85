"""Any report as it stood at a past moment: the live reports are recorded step by step along
a scenario, and each replay as of that step's position gives exactly what the live report
said then — over HTTP and on the command line."""

from __future__ import annotations

import itertools
import json
from datetime import date
from typing import Any
from uuid import UUID

from click.testing import CliRunner

from projections.explain import Explanation
from projections.financial import (
    balance_sheet,
    general_ledger,
    income_statement,
    trial_balance,
)
from projections.receivables import customer_statement
from replay import asof
from replay.cli import main
from tests.api.test_order_to_cash import Books
from tests.conftest import Api

REPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "pipeline": ("/api/reports/pipeline", {}),
    "lead-funnel": ("/api/reports/lead-funnel", {}),
    "stock": ("/api/reports/stock", {}),
    "cash-flow": (
        "/api/reports/cash-flow",
        {"from": "2026-01-01", "to": "2027-12-31", "interval": "month"},
    ),
    "profitability": ("/api/reports/profitability", {"by": "product"}),
    "trial-balance": ("/api/reports/trial-balance", {}),
    "income-statement": ("/api/reports/income-statement", {}),
    "balance-sheet": ("/api/reports/balance-sheet", {}),
    "receivables-aging": ("/api/reports/receivables-aging", {}),
    "general-ledger": ("/api/reports/general-ledger", {"account": "120"}),
}


def reports(api: Api, customer: str, **moment: Any) -> dict[str, Any]:
    """Every report, live (read-your-writes) or as of a moment."""
    out = {
        name: api.ok("get", path, params={**params, **moment})
        for name, (path, params) in REPORTS.items()
    }
    out["statement"] = api.ok("get", f"/api/customers/{customer}/statement", params=moment)
    return out


def live(api: Api, customer: str) -> dict[str, Any]:
    return reports(api, customer)


def as_of(api: Api, moment: Any, customer: str) -> dict[str, Any]:
    return reports(api, customer, as_of=moment)


def test_every_report_replayed_as_of_a_past_position_says_what_it_said_then(api: Api) -> None:
    books = Books(api)
    lead = api.ok("post", "/api/leads", {"name": "Ali", "company": "Veli Döküm", "source": "web"})
    converted = api.ok(
        "post",
        f"/api/leads/{lead['id']}/convert",
        {"opportunity": {"title": "Moulds", "amount": "90000.00"}},
    )
    customer = converted["customer_id"]
    history: list[tuple[int, dict[str, Any]]] = [(api.last_position, live(api, customer))]

    steps = [
        lambda: books.product(price=100),
        lambda: books.receive((10, 60), (10, 70)),
        lambda: books.order(customer, 15, ship=12),
        lambda: api.ok("post", f"/api/opportunities/{converted['opportunity_id']}/win"),
        lambda: books.invoice(next(iter(books.numbers))),
        lambda: books.pay(customer, "1000.00"),
    ]
    for step in steps:
        step()
        history.append((api.last_position, live(api, customer)))

    for position, then in history:
        assert as_of(api, position, customer) == then, f"as of position {position}"
    assert history[-1][1]["trial-balance"]["balanced"] is True
    assert history[0][1]["stock"]["items"] == []


def test_the_command_line_replays_a_report_as_of_a_position(api: Api, database_url: str) -> None:
    books = Books(api)
    books.product(price=100)
    books.receive((10, 60))
    before = api.last_position
    stock_then = api.ok("get", "/api/reports/stock")
    books.receive((5, 70))

    result = CliRunner().invoke(
        main, ["audit", "as-of", str(before), "stock", "--db", database_url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == stock_then
    assert stock_then["totals"]["value"] == "600.00"


def test_a_moment_beyond_the_head_or_unreadable_is_refused(api: Api) -> None:
    head = api.last_position
    for moment in (head + 1000, "yesterday"):
        response = api.get("/api/reports/pipeline", params={"as_of": moment})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "as_of"
        assert response.json()["errors"][0]["in"] == "query"


def test_the_books_up_to_a_position_are_what_a_replay_to_it_gives(api: Api) -> None:
    """The trial balance, income statement, balance sheet, general ledger and a customer's
    statement as of a position read the live ledger's lines up to it (the ledger only adds
    lines): at every position of a history, over periods, pages and explained, they give
    what a replay of the ledger to it gives."""
    books = Books(api)
    customer = books.customer()
    books.product(price=100)
    books.receive((10, 60), (10, 70))
    order = books.order(customer, 15, ship=12)
    books.invoice(order, on=date(2026, 3, 2))
    books.pay(customer, "500.00", date="2026-04-01")
    books.ship(order, 3)
    books.invoice(order, on=date(2026, 5, 20))
    services, chart = api.services, api.services.business.chart
    periods = [(None, None), (date(2026, 3, 1), date(2026, 4, 30)), (date(2026, 5, 1), None)]
    statements = (trial_balance, income_statement, balance_sheet)
    for position in range(api.last_position + 1):
        past = asof.replay(services.business, ["ledger"], position)
        try:
            with past.reader.connect() as then, services.reads.reader.connect() as now:
                replayed = (then, past["ledger"]["lines"], {})
                read = (now, services.reads["ledger"]["lines"], {"up_to": position})
                for (first, last), explained in itertools.product(periods, (False, True)):
                    for report in statements:
                        answers = [
                            report(
                                conn,
                                lines,
                                chart,
                                first,
                                last,
                                explain=Explanation() if explained else None,
                                **up_to,
                            )
                            for conn, lines, up_to in (replayed, read)
                        ]
                        assert answers[0] == answers[1], (position, first, last, report.__name__)
                    for account, (limit, offset) in itertools.product(
                        ("120", "153", "600"), ((50, 0), (1, 1), (2, 3))
                    ):
                        pages = [
                            general_ledger(
                                conn,
                                lines,
                                chart,
                                account,
                                first,
                                last,
                                limit=limit,
                                offset=offset,
                                explain=Explanation() if explained else None,
                                **up_to,
                            )
                            for conn, lines, up_to in (replayed, read)
                        ]
                        assert pages[0] == pages[1], (position, first, last, account, offset)
                    ekstres = [
                        customer_statement(
                            conn,
                            lines,
                            ledger["due_dates"],
                            chart,
                            UUID(customer),
                            first,
                            last,
                            explain=Explanation() if explained else None,
                            **up_to,
                        )
                        for conn, lines, up_to, ledger in (
                            (*replayed, past["ledger"]),
                            (*read, services.reads["ledger"]),
                        )
                    ]
                    assert ekstres[0] == ekstres[1], (position, first, last)
        finally:
            past.dispose()


def test_a_customer_registered_after_a_position_has_no_statement_as_of_it(api: Api) -> None:
    """As of a position the live ledger has passed, the statement is read from the live
    tables: a customer registered only later is not found then, as a replay would say."""
    books = Books(api)
    books.product(price=100)
    before = api.last_position
    customer = books.customer()
    path = f"/api/customers/{customer}/statement"
    api.ok("get", path)  # the read models have passed its registration
    missing = api.get(path, params={"as_of": before})
    assert missing.status_code == 404, missing.text
    assert customer in missing.json()["detail"]
    assert api.ok("get", path, params={"as_of": api.last_position})["lines"] == []


def test_the_stock_up_to_a_position_is_what_a_replay_to_it_gives(api: Api) -> None:
    """The stock report as of a position adds up the live movements and reservations up to
    it (each a row with its position, never changed): at every position of a history, for
    every warehouse and product asked for, explained or not, it gives what a replay gives."""
    books = Books(api)
    customer = books.customer()
    books.product("A-1", price=100)
    books.product("B-1", price=50)
    api.ok("post", "/api/warehouses", {"code": "WEST", "name": "West depot"})
    books.receive((10, 60), (5, 70), sku="A-1")
    books.receive((8, 20), sku="B-1")
    west = {"warehouse": "WEST", "lines": [{"sku": "A-1", "quantity": "4", "unit_cost": "65.50"}]}
    api.ok("post", "/api/stock/receipts", west)
    order = books.order(customer, 12, sku="A-1", ship=7)  # 5 still reserved
    books.ship(order, 2)
    # An order reserved, then cancelled (its reservation released).
    line = {"sku": "B-1", "quantity": "3"}
    quote = api.ok("post", "/api/quotes", {"customer_id": customer, "lines": [line]})
    api.ok("post", f"/api/quotes/{quote['id']}/accept")
    cancelled = api.ok("post", "/api/orders", {"quote_id": quote["id"]})["id"]
    api.ok("post", f"/api/orders/{cancelled}/confirm")
    api.ok("post", f"/api/orders/{cancelled}/cancel", {"reason": "changed their mind"})
    services = api.services
    products = services.reads["products"]["products"]
    product = api.ok("get", "/api/reports/stock")["items"][0]["product_id"]
    asked = [{}, {"warehouse": "WEST"}, {"warehouse": "MAIN"}, {"product_id": UUID(product)}]
    for position in range(api.last_position + 1):
        past = asof.replay(services.business, ["stock", "products"], position)
        try:
            with past.reader.connect() as then, services.reads.reader.connect() as now:
                for filters, explained in itertools.product(asked, (False, True)):
                    answers = [
                        model.report(  # type: ignore[attr-defined]
                            conn,
                            names,
                            **filters,
                            explain=Explanation() if explained else None,
                            **up_to,
                        )
                        for conn, model, names, up_to in (
                            (then, past["stock"], past["products"]["products"], {}),
                            (now, services.reads["stock"], products, {"up_to": position}),
                        )
                    ]
                    assert answers[0] == answers[1], (position, filters, explained)
        finally:
            past.dispose()


def test_profitability_up_to_a_position_is_what_a_replay_to_it_gives(api: Api) -> None:
    """Profitability as of a position adds up the live invoice and shipment lines up to it:
    at every position of a history, by order, customer and product, sorted, paged, over
    periods and explained, it gives what a replay of it gives."""
    books = Books(api)
    books.product("A-1", price=100)
    books.product("B-1", price=50)
    books.receive((10, 60), (10, 70), sku="A-1")
    books.receive((10, 20), sku="B-1")
    first, second = books.customer("Birinci"), books.customer("İkinci")
    order = books.order(first, 6, sku="A-1", ship=4)
    books.invoice(order, on=date(2026, 3, 2))
    books.invoice(books.order(second, 5, sku="B-1"), on=date(2026, 4, 10))
    books.ship(order, 2)
    books.invoice(order, on=date(2026, 5, 20))
    books.order(second, 2, sku="A-1")  # shipped, not invoiced
    services = api.services
    periods = [(None, None), (date(2026, 3, 1), date(2026, 4, 30)), (date(2026, 5, 1), None)]
    # Each grouping with a sort and page of its own (all three sorts' SQL is the same for
    # every grouping but the labels).
    pages = [("order", "margin", 1, 1), ("customer", "name", None, 0)]
    pages.append(("product", "-margin_percent", 2, 0))
    for position in range(api.last_position + 1):
        past = asof.replay(services.business, ["profitability", "customers"], position)
        try:
            with past.reader.connect() as then, services.reads.reader.connect() as now:
                for (by, sort, limit, offset), (start, end), explained in itertools.product(
                    pages, periods, (False, True)
                ):
                    answers = [
                        reads["profitability"].report(  # type: ignore[attr-defined]
                            conn,
                            by,
                            date_from=start,
                            date_to=end,
                            customers=reads["customers"]["parties"],
                            sort=sort,
                            limit=limit,
                            offset=offset,
                            explain=Explanation() if explained else None,
                            **up_to,
                        )
                        for conn, reads, up_to in (
                            (then, past, {}),
                            (now, services.reads, {"up_to": position}),
                        )
                    ]
                    assert answers[0] == answers[1], (position, by, start, sort, explained)
        finally:
            past.dispose()
