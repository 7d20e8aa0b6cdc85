"""Finance's reports over HTTP, on SQLite and PostgreSQL: aging by days past due, statements
and ledgers with opening balances, cash flow per period, the financial statements for a
period, and a reconciliation that catches a read model gone wrong, over HTTP and the CLI."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from click.testing import CliRunner
from sqlalchemy import update

from api.services import Services
from domain.values import ZERO
from projections.invoices import AGING_BUCKETS, aging_bucket
from replay.cli import main
from tests.api.test_order_to_cash import Books
from tests.conftest import Api

BUCKETS = [name for name, _, _ in AGING_BUCKETS]


def stocked(api: Api, units: int = 20) -> Books:
    books = Books(api)
    books.product(price=100)  # 120.00 a unit with VAT
    books.receive((units, 60))
    return books


def test_aging_puts_what_was_open_on_the_day_into_buckets_of_days_past_due(api: Api) -> None:
    books = stocked(api)
    customer = books.customer("Kaya Gıda", terms=30)
    order = books.order(customer, 6, ship=1)
    invoices = {}
    for name, on in (
        ("not_due", date(2026, 6, 15)),  # due 07-15
        ("days_1_30", date(2026, 5, 20)),  # due 06-19: 11 days past due on 06-30
        ("days_31_60", date(2026, 4, 10)),  # due 05-10: 51 days
        ("days_61_90", date(2026, 3, 10)),  # due 04-09: 82 days
        ("over_90", date(2026, 1, 2)),  # due 02-01: 149 days
        ("later", date(2026, 7, 5)),  # issued after the day: not in it
    ):
        if invoices:
            books.ship(order, 1)
        invoices[name] = books.invoice(order, on=on)
    books.pay(
        customer,
        "120.00",
        date="2026-07-01",
        allocations=[{"invoice_id": invoices["over_90"]["id"], "amount": "120.00"}],
    )
    books.pay(  # in part, after the day: on the day still owed in full
        customer,
        "50.00",
        date="2026-07-02",
        allocations=[{"invoice_id": invoices["days_1_30"]["id"], "amount": "50.00"}],
    )
    other = books.customer("Deniz Ltd")
    books.pay(other, "50.00", date="2026-06-01")  # nothing to pay yet: credit

    aging = api.ok("get", "/api/reports/receivables-aging", params={"as_of": "2026-06-30"})
    rows = {r["name"]: r for r in aging["customers"]}
    kaya = rows["Kaya Gıda"]
    assert [kaya[b] for b in aging["buckets"]] == ["120.00"] * 5
    assert (kaya["total"], kaya["unallocated_credit"], kaya["net"]) == ("600.00", "0.00", "600.00")
    assert {i["number"]: i["bucket"] for i in kaya["invoices"]} == {
        invoices[b]["number"]: b for b in aging["buckets"]
    }
    assert (rows["Deniz Ltd"]["total"], rows["Deniz Ltd"]["net"]) == ("0.00", "-50.00")
    assert aging["totals"]["total"] == "600.00"
    assert aging["totals"]["unallocated_credit"] == "50.00"

    # Paid on 07-01 and 07-02: on 07-10 the oldest is gone, the next owes 50 less, and
    # every one has aged ten days.
    later = api.ok("get", "/api/reports/receivables-aging", params={"as_of": "2026-07-10"})
    kaya = next(r for r in later["customers"] if r["name"] == "Kaya Gıda")
    assert [kaya[b] for b in later["buckets"]] == [
        "240.00",  # issued 06-15 and 07-05: not due yet
        "70.00",  # due 06-19: 21 days
        "0.00",
        "120.00",  # due 05-10: 61 days
        "120.00",  # due 04-09: 92 days
    ]
    # What the database adds up per customer and bucket is what the open invoices of each
    # day, put in their buckets one by one, add up to: on every day around the history.
    model = api.services.reads["invoices"]
    with api.services.reads.reader.connect() as conn:
        for day in (date(2025, 12, 31) + timedelta(days=n) for n in range(0, 240, 3)):
            by_invoice: dict[Any, dict[str, Decimal]] = {}
            for item in model.open_as_of(conn, day):  # type: ignore[attr-defined]
                owed = by_invoice.setdefault(item["customer_id"], dict.fromkeys(BUCKETS, ZERO))
                owed[aging_bucket((day - item["due_date"]).days)] += item["open_amount"]
            assert model.owed_by_customer(conn, day) == by_invoice, day  # type: ignore[attr-defined]


def test_reconciliation_catches_a_read_model_changed_behind_its_back(api: Api) -> None:
    books = stocked(api)
    customer = books.customer()
    books.invoice(books.order(customer, 15))
    books.pay(customer, "1000.00")
    url = api.services.settings.database_url
    assert api.ok("get", "/api/reports/reconciliation")["ok"] is True
    agreed = CliRunner().invoke(main, ["audit", "reconcile", "--db", url])
    assert agreed.exit_code == 0, agreed.output
    assert "all checks agree" in agreed.output

    invoices = api.services.reads["invoices"]["invoices"]
    with api.services.reads.writer.begin() as conn:
        conn.execute(update(invoices).values(untaxed=Decimal("1499.00")))

    report = api.ok("get", "/api/reports/reconciliation")
    assert report["ok"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["sales"]
    assert (failed[0]["read_model_amount"], failed[0]["ledger_amount"]) == ("1499.00", "1500.00")
    assert failed[0]["difference"] == "-1.00"
    caught = CliRunner().invoke(main, ["audit", "reconcile", "--db", url])
    assert caught.exit_code == 1, caught.output
    assert "FAIL sales" in caught.output
    assert "reconciliation FAILED" in caught.output


def test_the_statement_starts_from_the_balance_before_the_period(api: Api) -> None:
    books = stocked(api)
    customer = books.customer()
    order = books.order(customer, 3, ship=1)
    books.invoice(order, on=date(2026, 3, 1))  # 120.00
    books.pay(customer, "100.00", date="2026-03-20")
    books.ship(order, 2)
    books.invoice(order, on=date(2026, 4, 5))  # 240.00, 20.00 of the first still open
    books.pay(customer, "400.00", date="2026-04-20")  # 100.00 more than is owed

    april = api.ok(
        "get",
        f"/api/customers/{customer}/statement",
        params={"from": "2026-04-01", "to": "2026-04-30"},
    )
    assert (april["opening_balance"], april["opening_side"]) == ("20.00", "B")
    assert [
        (x["date"], x["type"], x["due_date"], x["balance"], x["side"]) for x in april["lines"]
    ] == [
        ("2026-04-05", "invoice", "2026-05-05", "260.00", "B"),
        ("2026-04-20", "payment", None, "140.00", "A"),
    ]
    assert (april["closing_balance"], april["closing_side"]) == ("140.00", "A")
    march = api.ok("get", f"/api/customers/{customer}/statement", params={"to": "2026-03-31"})
    assert [x["balance"] for x in march["lines"]] == ["120.00", "20.00"]
    missing = api.get("/api/customers/00000000-0000-0000-0000-000000000000/statement")
    assert missing.status_code == 404


def test_the_general_ledger_runs_its_balance_across_pages_from_the_opening(api: Api) -> None:
    finance = api.as_role("finance")
    for day, amount in (
        ("2026-01-31", "1000.00"),
        ("2026-02-10", "300.00"),
        ("2026-02-20", "200.00"),
    ):
        finance.ok(
            "post",
            "/api/journal-entries",
            {
                "date": day,
                "description": f"capital {day}",
                "lines": [
                    {"account": "102", "debit": amount},
                    {"account": "500", "credit": amount},
                ],
            },
        )
    finance.ok(
        "post",
        "/api/journal-entries",
        {
            "date": "2026-02-25",
            "description": "rent",
            "lines": [
                {"account": "770", "debit": "150.00"},
                {"account": "102", "credit": "150.00"},
            ],
        },
    )
    february = {"account": "102", "from": "2026-02-01", "to": "2026-02-28"}
    ledger = finance.ok("get", "/api/reports/general-ledger", params=february)
    assert ledger["opening_balance"] == "1000.00"
    assert [x["balance"] for x in ledger["lines"]] == ["1300.00", "1500.00", "1350.00"]
    assert (ledger["debit"], ledger["credit"], ledger["closing_balance"]) == (
        "500.00",
        "150.00",
        "1350.00",
    )
    page = finance.ok(
        "get", "/api/reports/general-ledger", params={**february, "limit": 1, "offset": 2}
    )
    assert [x["balance"] for x in page["lines"]] == ["1350.00"]
    assert page["total_lines"] == 3
    unknown = finance.get("/api/reports/general-ledger", params={"account": "999"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "account"

    period = {"from": "2026-02-01", "to": "2026-02-28"}
    income = finance.ok("get", "/api/reports/income-statement", params=period)
    assert income["net_profit"] == "-150.00"
    sheet = finance.ok("get", "/api/reports/balance-sheet", params=period)
    assert sheet["balanced"] is True
    assert sheet["total_assets"] == "1350.00"
    assert sheet["current_period_profit"] == "-150.00"
    trial = finance.ok("get", "/api/reports/trial-balance", params=period)
    bank = next(a for a in trial["accounts"] if a["account"] == "102")
    assert (bank["opening"], bank["debit"], bank["credit"], bank["balance"]) == (
        "1000.00",
        "500.00",
        "150.00",
        "1350.00",
    )
    assert trial["balanced"] is True
    january = finance.ok("get", "/api/reports/trial-balance", params={"as_of": "2026-01-31"})
    assert [
        (a["account"], a["debit_balance"], a["credit_balance"]) for a in january["accounts"]
    ] == [
        ("102", "1000.00", "0.00"),
        ("500", "0.00", "1000.00"),
    ]
    both = finance.get("/api/reports/trial-balance", params={"as_of": "2026-01-31", **period})
    assert both.status_code == 422


def test_a_general_ledger_page_may_begin_within_a_day_and_within_an_entry(api: Api) -> None:
    finance = api.as_role("finance")
    for day, lines in (
        ("2026-03-01", [("102", "100.00", None), ("500", None, "100.00")]),
        ("2026-03-02", [("102", "10.00", None), ("102", "20.00", None), ("500", None, "30.00")]),
        ("2026-03-02", [("770", "5.00", None), ("102", None, "5.00")]),
        ("2026-03-05", [("102", "1.00", None), ("500", None, "1.00")]),
    ):
        finance.ok(
            "post",
            "/api/journal-entries",
            {
                "date": day,
                "description": "entry",
                "lines": [
                    {"account": a, **({"debit": d} if d else {"credit": c})} for a, d, c in lines
                ],
            },
        )
    path = "/api/reports/general-ledger"
    whole = finance.ok("get", path, params={"account": "102"})
    balances = ["100.00", "110.00", "130.00", "125.00", "126.00"]
    assert [x["balance"] for x in whole["lines"]] == balances
    for offset in range(6):
        page = finance.ok("get", path, params={"account": "102", "offset": offset, "limit": 2})
        assert [x["balance"] for x in page["lines"]] == balances[offset : offset + 2], offset
        assert (page["total_lines"], page["closing_balance"]) == (5, "126.00")
    later = finance.ok(
        "get", path, params={"account": "102", "from": "2026-03-02", "offset": 2, "limit": 9}
    )
    assert later["opening_balance"] == "100.00"
    assert [x["balance"] for x in later["lines"]] == ["125.00", "126.00"]
    assert (later["total_lines"], later["debit"], later["credit"]) == (4, "31.00", "5.00")


def test_cash_flow_shows_cash_in_and_out_per_period_and_what_open_invoices_should_bring(
    api: Api,
) -> None:
    books = stocked(api)
    customer = books.customer(terms=30)
    order = books.order(customer, 10, ship=5)
    books.invoice(order, on=date(2026, 3, 2))  # 600.00, due 04-01
    books.pay(customer, "100.00", date="2026-03-03", method="cash")
    books.pay(customer, "200.00", date="2026-03-11")
    books.ship(order, 5)
    books.invoice(order, on=date(2026, 3, 20))  # 600.00, due 04-19
    finance = api.as_role("finance")
    finance.ok(
        "post",
        "/api/journal-entries",
        {
            "date": "2026-03-12",
            "description": "bank fee",
            "lines": [{"account": "780", "debit": "5.00"}, {"account": "102", "credit": "5.00"}],
        },
    )
    flow = finance.ok(
        "get",
        "/api/reports/cash-flow",
        params={"from": "2026-03-01", "to": "2026-04-30", "interval": "month"},
    )
    march, april = flow["periods"]
    assert (march["cash_in"], march["cash_out"], march["closing_balance"]) == (
        "300.00",
        "5.00",
        "295.00",
    )
    assert march["by_account"] == [
        {"account": "100", "in": "100.00", "out": "0.00"},
        {"account": "102", "in": "200.00", "out": "5.00"},
    ]
    assert (april["expected_in"], april["closing_balance"]) == ("900.00", "295.00")
    weekly = finance.ok(
        "get",
        "/api/reports/cash-flow",
        params={"from": "2026-03-01", "to": "2026-03-15", "interval": "week"},
    )
    assert [(p["period"], p["start"], p["cash_in"]) for p in weekly["periods"]] == [
        ("2026-W09", "2026-03-01", "0.00"),
        ("2026-W10", "2026-03-02", "100.00"),
        ("2026-W11", "2026-03-09", "200.00"),
    ]
    after = finance.ok(
        "get", "/api/reports/cash-flow", params={"from": "2026-04-05", "to": "2026-05-31"}
    )
    assert after["opening_balance"] == "295.00"
    assert after["expected_overdue"] == "300.00"  # due 04-01, still open
    assert after["totals"]["expected_in"] == "600.00"
    # What falls due after the window is neither expected in it nor overdue before it.
    between = finance.ok(
        "get", "/api/reports/cash-flow", params={"from": "2026-04-02", "to": "2026-04-18"}
    )
    assert (between["expected_overdue"], between["totals"]["expected_in"]) == ("300.00", "0.00")
    assert (weekly["expected_overdue"], weekly["totals"]["expected_in"]) == ("0.00", "0.00")


def test_profitability_groups_by_customer_and_product_and_sales_may_read_it(api: Api) -> None:
    books = Books(api)
    books.product("A-1", price=100)
    books.product("B-1", price=50)
    books.receive((10, 60), sku="A-1")
    books.receive((10, 20), sku="B-1")
    first = books.customer("Birinci")
    second = books.customer("İkinci")
    books.invoice(books.order(first, 2, sku="A-1"))
    books.invoice(books.order(second, 4, sku="B-1"))
    books.order(second, 1, sku="A-1")  # shipped, not invoiced: cost before revenue
    sales = api.as_role("sales")
    sales.last_position = api.last_position
    by_customer = sales.ok("get", "/api/reports/profitability", params={"by": "customer"})
    assert [
        (r["customer"], r["revenue"], r["cost_of_goods_sold"], r["gross_margin"])
        for r in by_customer["rows"]
    ] == [("Birinci", "200.00", "120.00", "80.00"), ("İkinci", "200.00", "140.00", "60.00")]
    assert by_customer["total"] == {
        "revenue": "400.00",
        "cost_of_goods_sold": "260.00",
        "gross_margin": "140.00",
        "margin_percent": "35.00",
    }
    by_product = sales.ok("get", "/api/reports/profitability", params={"by": "product"})
    assert [
        (r["product"], r["quantity_invoiced"], r["quantity_shipped"], r["margin_percent"])
        for r in by_product["rows"]
    ] == [("A-1", "2", "3", "10.00"), ("B-1", "4", "4", "60.00")]
    assert sales.get("/api/reports/trial-balance").status_code == 403
    assert sales.get("/api/reports/reconciliation").status_code == 403


def test_the_aging_pages_its_customers_in_the_order_asked_for(api: Api) -> None:
    """Finance starts with who owes most past due: customers sorted by a figure, a page at a
    time, the totals and the count always of them all."""
    books = Books(api)
    books.product(price=100)
    books.receive((20, 60))
    owes = {}
    for name, units, on in (
        ("A Ltd", 1, date(2026, 1, 1)),  # 120.00, due 01-31: past due on 06-30
        ("B Ltd", 3, date(2026, 1, 1)),  # 360.00, past due
        ("C Ltd", 2, date(2026, 6, 20)),  # 240.00, due 07-20: not yet
    ):
        owes[name] = books.customer(name)
        books.invoice(books.order(owes[name], units), on=on)

    def aging(**params: Any) -> dict[str, Any]:
        params = {"as_of": "2026-06-30", **params}
        return dict(api.ok("get", "/api/reports/receivables-aging", params=params))

    def seen(answer: dict[str, Any]) -> list[str]:
        return [c["name"] for c in answer["customers"]]

    everyone = aging()
    assert (everyone["sort"], everyone["total_rows"], everyone["limit"]) == ("name", 3, 1000)
    assert seen(everyone) == ["A Ltd", "B Ltd", "C Ltd"]
    assert seen(aging(sort="-overdue")) == ["B Ltd", "A Ltd", "C Ltd"]
    assert seen(aging(sort="-total")) == ["B Ltd", "C Ltd", "A Ltd"]
    page = aging(sort="overdue", limit=1, offset=1)
    assert seen(page) == ["A Ltd"]
    assert [i["open_amount"] for i in page["customers"][0]["invoices"]] == ["120.00"]
    assert page["totals"] == everyone["totals"]
    assert (page["totals"]["total"], page["total_rows"]) == ("720.00", 3)
    refused = api.get("/api/reports/receivables-aging", params={"sort": "oldest"})
    assert refused.status_code == 422
    assert "sort" in refused.text


def test_profitability_pages_its_rows_in_the_order_asked_for(api: Api) -> None:
    """Sales looks for the orders that earn least: rows sorted by a figure, a page at a time,
    the totals and the row count always of them all; a sort or page it cannot give is
    refused, naming the parameter."""
    books = Books(api)
    books.product("A-1", price=100)
    books.receive((30, 60), sku="A-1")
    buyer = books.customer("Birinci")
    numbers = []
    for quantity in (1, 3, 2):  # 40.00 margin a unit
        order = books.order(buyer, quantity, sku="A-1")
        books.invoice(order)
        numbers.append(api.ok("get", f"/api/orders/{order}")["number"])
    loss = books.order(buyer, 1, sku="A-1")  # shipped, not invoiced: cost only, -60.00
    numbers.append(api.ok("get", f"/api/orders/{loss}")["number"])

    def page(**params: Any) -> dict[str, Any]:
        return dict(api.ok("get", "/api/reports/profitability", params={"by": "order", **params}))

    def seen(answer: dict[str, Any]) -> list[tuple[str, str]]:
        return [(r["order"], r["gross_margin"]) for r in answer["rows"]]

    everything = page()
    assert (everything["sort"], everything["total_rows"], everything["limit"]) == ("name", 4, 1000)
    assert seen(everything) == [
        (numbers[0], "40.00"),
        (numbers[1], "120.00"),
        (numbers[2], "80.00"),
        (numbers[3], "-60.00"),
    ]
    worst = page(sort="margin")
    assert [m for _, m in seen(worst)] == ["-60.00", "40.00", "80.00", "120.00"]
    assert seen(page(sort="-margin", limit=2, offset=1)) == [
        (numbers[2], "80.00"),
        (numbers[0], "40.00"),
    ]
    # Without revenue there is no margin %: last, whichever way.
    assert seen(page(sort="margin_percent"))[-1] == (numbers[3], "-60.00")
    assert seen(page(sort="-margin_percent"))[-1] == (numbers[3], "-60.00")
    assert seen(page(sort="-revenue", limit=1)) == [(numbers[1], "120.00")]
    beyond = page(offset=10)
    assert (beyond["rows"], beyond["total_rows"]) == ([], 4)
    assert page(offset=2**62)["rows"] == []  # beyond a 32-bit integer, on both databases
    assert (
        beyond["total"]
        == everything["total"]
        == {
            "revenue": "600.00",
            "cost_of_goods_sold": "420.00",
            "gross_margin": "180.00",
            "margin_percent": "30.00",
        }
    )
    for params, field in (({"sort": "profit"}, "sort"), ({"limit": "0"}, "limit")):
        refused = api.get("/api/reports/profitability", params=params)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert field in refused.text


def test_the_statement_covers_this_year_from_the_balance_carried_over(
    api: Api, services: Services
) -> None:
    """As an ekstre is printed: without `from`, the lines of the year (of `to`, or of today)
    from 1 January, after the balance carried from the years before; an earlier `from`
    lists the older lines too, and the closing balance is the same either way."""
    this_year = services.business.today().year
    last_year = this_year - 1
    books = stocked(api)
    customer = books.customer()
    order = books.order(customer, 3, ship=1)
    books.invoice(order, on=date(last_year, 11, 10))  # 120.00
    books.pay(customer, "50.00", date=f"{last_year}-12-05")
    books.ship(order, 2)
    books.invoice(order, on=date(this_year, 1, 1))  # 240.00

    statement = api.ok("get", f"/api/customers/{customer}/statement")
    assert (statement["from"], statement["to"]) == (f"{this_year}-01-01", None)
    assert (statement["opening_balance"], statement["opening_side"]) == ("70.00", "B")
    assert [(x["date"], x["balance"]) for x in statement["lines"]] == [
        (f"{this_year}-01-01", "310.00")
    ]
    assert (statement["closing_balance"], statement["closing_side"]) == ("310.00", "B")

    everything = api.ok(
        "get", f"/api/customers/{customer}/statement", params={"from": f"{last_year}-01-01"}
    )
    assert everything["opening_balance"] == "0.00"
    assert [x["balance"] for x in everything["lines"]] == ["120.00", "70.00", "310.00"]
    assert everything["closing_balance"] == statement["closing_balance"]

    last = api.ok(
        "get", f"/api/customers/{customer}/statement", params={"to": f"{last_year}-12-31"}
    )
    assert (last["from"], last["opening_balance"]) == (f"{last_year}-01-01", "0.00")
    assert [x["balance"] for x in last["lines"]] == ["120.00", "70.00"]


def test_a_statement_from_mid_month_carries_the_month_so_far(api: Api) -> None:
    """The opening balance adds up the months before `from` and the days of its month
    before it; the lines of the day itself are in the statement."""
    books = stocked(api)
    customer = books.customer()
    order = books.order(customer, 4, ship=1)
    books.invoice(order, on=date(2026, 2, 27))  # 120.00
    books.ship(order, 1)
    books.invoice(order, on=date(2026, 3, 9))  # 120.00
    books.pay(customer, "30.00", date="2026-03-09")
    books.ship(order, 2)
    books.invoice(order, on=date(2026, 3, 10))  # 240.00

    def opening(day: str) -> tuple[str, str | None, int]:
        got = api.ok("get", f"/api/customers/{customer}/statement", params={"from": day})
        return got["opening_balance"], got["opening_side"], len(got["lines"])

    assert opening("2026-02-27") == ("0.00", None, 4)
    assert opening("2026-02-28") == ("120.00", "B", 3)
    assert opening("2026-03-01") == ("120.00", "B", 3)
    assert opening("2026-03-09") == ("120.00", "B", 3)
    assert opening("2026-03-10") == ("210.00", "B", 1)
    assert opening("2026-03-11") == ("450.00", "B", 0)
    assert opening("2027-01-01") == ("450.00", "B", 0)
