"""Order to cash over HTTP, on SQLite and PostgreSQL: goods are received, quoted, ordered,
shipped, invoiced and paid, and finance's views (ledger, statement, profitability,
reconciliation) follow. Invoices, payments and journal entries are refused with nothing
recorded when they break a rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.conftest import Api, event_count


class Books:
    """Drives order to cash over HTTP as one caller, reading every report with the caller's
    last position (read-your-writes)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.numbers: dict[str, str] = {}

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.api.ok("post", path, body))

    def product(self, sku: str = "W-1", price: int = 100) -> None:
        self.post("/api/products", {"sku": sku, "name": f"Widget {sku}", "list_price": str(price)})

    def receive(self, *layers: tuple[int, int], sku: str = "W-1") -> None:
        lines = [{"sku": sku, "quantity": str(q), "unit_cost": str(c)} for q, c in layers]
        self.post("/api/stock/receipts", {"lines": lines})

    def customer(self, name: str = "Anadolu Gıda", terms: int = 30) -> str:
        return str(self.post("/api/customers", {"name": name, "payment_terms_days": terms})["id"])

    def order(self, customer: str, quantity: int, sku: str = "W-1", ship: int | None = None) -> str:
        """An accepted quote turned into a confirmed order, shipped (all, or `ship` units)."""
        line = {"sku": sku, "quantity": str(quantity)}
        quote = self.post("/api/quotes", {"customer_id": customer, "lines": [line]})
        self.post(f"/api/quotes/{quote['id']}/accept")
        order = self.post("/api/orders", {"quote_id": quote["id"]})
        self.post(f"/api/orders/{order['id']}/confirm")
        self.ship(order["id"], ship)
        self.numbers[order["id"]] = order["number"]
        return str(order["id"])

    def ship(self, order: str, quantity: int | None = None) -> None:
        body: dict[str, Any] = {"order_id": order}
        if quantity is not None:
            body["lines"] = [{"line": 1, "quantity": str(quantity)}]
        self.post("/api/shipments", body)

    def invoice(self, order: str, on: date | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"order_id": order}
        if on is not None:
            body["date"] = on.isoformat()
        answer = self.post("/api/invoices", body)
        return dict(self.api.ok("get", f"/api/invoices/{answer['id']}"))

    def pay(self, customer: str, amount: str, **more: Any) -> dict[str, Any]:
        return self.post(
            "/api/payments", {"customer_id": customer, "amount": amount, "method": "bank", **more}
        )

    def balances(self) -> dict[str, str]:
        trial = self.api.ok("get", "/api/reports/trial-balance")
        return {a["account"]: a["balance"] for a in trial["accounts"]}


def test_goods_received_quoted_shipped_invoiced_and_paid_show_in_every_view(api: Api) -> None:
    books = Books(api)
    books.product(price=100)
    books.receive((10, 60), (10, 70))
    customer = books.customer()
    order = books.order(customer, 15)
    invoice = books.invoice(order)
    assert (invoice["untaxed"], invoice["tax"], invoice["total"]) == (
        "1500.00",
        "300.00",
        "1800.00",
    )
    paid = books.pay(customer, "1000.00")
    assert paid["allocations"] == [{"invoice_id": invoice["id"], "amount": "1000.00"}]

    assert books.balances() == {
        "102": "1000.00",  # bank
        "120": "800.00",  # receivables
        "153": "350.00",  # 5 units left at 70
        "391": "-300.00",  # output VAT
        "500": "-1300.00",  # opening stock against capital
        "600": "-1500.00",  # sales
        "621": "950.00",  # cost of goods sold: 10 x 60 + 5 x 70
    }
    trial = api.ok("get", "/api/reports/trial-balance")
    assert trial["balanced"] is True
    assert trial["totals"]["debit"] == trial["totals"]["credit"] == "5050.00"

    income = api.ok("get", "/api/reports/income-statement")
    assert (income["total_income"], income["total_expenses"], income["net_profit"]) == (
        "1500.00",
        "950.00",
        "550.00",
    )
    sheet = api.ok("get", "/api/reports/balance-sheet")
    assert sheet["balanced"] is True
    assert sheet["total_assets"] == sheet["total_liabilities_and_equity"] == "2150.00"
    assert sheet["current_period_profit"] == "550.00"

    profit = api.ok("get", "/api/reports/profitability", params={"by": "order"})
    assert profit["rows"] == [
        {
            "order_id": order,
            "order": books.numbers[order],
            "revenue": "1500.00",
            "cost_of_goods_sold": "950.00",
            "gross_margin": "550.00",
            "margin_percent": "36.67",
        }
    ]

    statement = api.ok("get", f"/api/customers/{customer}/statement")
    assert [
        (x["type"], x["debit"], x["credit"], x["balance"], x["side"]) for x in statement["lines"]
    ] == [
        ("invoice", "1800.00", "0.00", "1800.00", "B"),
        ("payment", "0.00", "1000.00", "800.00", "B"),
    ]
    assert statement["lines"][0]["due_date"] == invoice["due_date"]
    assert statement["lines"][0]["document"] == invoice["number"]
    assert (statement["closing_balance"], statement["closing_side"]) == ("800.00", "B")

    listed = api.ok("get", "/api/invoices", params={"customer_id": customer})["items"]
    assert [(i["open_amount"], i["status"]) for i in listed] == [("800.00", "open")]

    reconciliation = api.ok("get", "/api/reports/reconciliation")
    assert reconciliation["ok"] is True, reconciliation
    checks = {c["name"]: c for c in reconciliation["checks"]}
    assert checks["stock"]["read_model_amount"] == checks["stock"]["ledger_amount"] == "350.00"
    assert checks["receivables"]["ledger_amount"] == "800.00"
    assert checks["cash"]["read_model_amount"] == "1000.00"


def test_invoicing_an_order_twice_is_refused_and_records_nothing(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((5, 60))
    order = books.order(books.customer(), 5)
    books.invoice(order)
    before = event_count(api.services)
    response = api.post("/api/invoices", {"order_id": order})
    assert response.status_code == 409, response.text
    assert "nothing of order" in response.json()["detail"]
    assert event_count(api.services) == before
    assert api.ok("get", "/api/invoices")["total"] == 1


def test_over_allocating_a_payment_is_refused_naming_the_allocation(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((5, 60))
    customer = books.customer()
    invoice = books.invoice(books.order(customer, 5))  # 600.00
    before = event_count(api.services)
    response = api.post(
        "/api/payments",
        {
            "customer_id": customer,
            "amount": "1000.00",
            "method": "bank",
            "allocations": [{"invoice_id": invoice["id"], "amount": "700.00"}],
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "allocations[0].amount"
    assert event_count(api.services) == before
    assert api.ok("get", "/api/payments")["total"] == 0


def test_a_partial_payment_leaves_the_rest_open(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((5, 60))
    customer = books.customer()
    invoice = books.invoice(books.order(customer, 5))  # 600.00
    books.pay(customer, "250.00", allocations=[{"invoice_id": invoice["id"], "amount": "250.00"}])
    after = api.ok("get", f"/api/invoices/{invoice['id']}")
    assert (after["settled"], after["open_amount"], after["status"]) == ("250.00", "350.00", "open")
    assert [(s["kind"], s["amount"]) for s in after["settlements"]] == [("payment", "250.00")]
    books.pay(customer, "350.00", method="cash")
    paid = api.ok("get", f"/api/invoices/{invoice['id']}")
    assert (paid["open_amount"], paid["status"]) == ("0.00", "paid")
    assert api.ok("get", "/api/invoices", params={"status": "open"})["total"] == 0
    assert books.balances()["100"] == "350.00"
    assert books.balances()["102"] == "250.00"


def test_an_excess_payment_stays_as_credit_and_settles_the_next_invoice(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((20, 60))
    customer = books.customer()
    first = books.invoice(books.order(customer, 5))  # 600.00
    paid = books.pay(customer, "800.00")
    assert paid["unallocated"] == "200.00"
    aging = api.ok("get", "/api/reports/receivables-aging")
    assert aging["totals"]["unallocated_credit"] == "200.00"
    assert aging["totals"]["net"] == "-200.00"
    assert books.balances()["120"] == "-200.00"
    assert api.ok("get", "/api/reports/reconciliation")["ok"] is True

    second = books.invoice(books.order(customer, 5))  # 600.00, 200.00 of it from credit
    assert (second["settled"], second["open_amount"]) == ("200.00", "400.00")
    assert [(s["kind"], s["amount"]) for s in second["settlements"]] == [("credit", "200.00")]
    assert api.ok("get", f"/api/invoices/{first['id']}")["status"] == "paid"
    aging = api.ok("get", "/api/reports/receivables-aging")
    assert (aging["totals"]["unallocated_credit"], aging["totals"]["net"]) == ("0.00", "400.00")
    assert api.ok("get", "/api/reports/reconciliation")["ok"] is True


def test_a_payment_without_allocations_settles_the_oldest_open_invoice_first(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((20, 60))
    customer = books.customer()
    newer = books.invoice(books.order(customer, 5), on=date(2026, 3, 10))
    older = books.invoice(books.order(customer, 5), on=date(2026, 2, 10))
    paid = books.pay(customer, "700.00")
    assert paid["allocations"] == [
        {"invoice_id": older["id"], "amount": "600.00"},
        {"invoice_id": newer["id"], "amount": "100.00"},
    ]
    assert api.ok("get", f"/api/invoices/{older['id']}")["status"] == "paid"
    assert api.ok("get", f"/api/invoices/{newer['id']}")["open_amount"] == "500.00"


def test_invoice_numbers_have_no_gaps_within_a_series_and_year(api: Api) -> None:
    books = Books(api)
    books.product()
    books.receive((20, 60))
    customer = books.customer()
    year = api.services.business.today().year
    order = books.order(customer, 10, ship=4)
    first = books.invoice(order)
    rejected = api.post("/api/invoices", {"order_id": order})
    assert rejected.status_code == 409
    books.ship(order, 6)
    second = books.invoice(order)
    assert [first["number"], second["number"]] == [
        f"SAT{year}000000001",
        f"SAT{year}000000002",
    ]
    other = books.invoice(books.order(customer, 1), on=date(year - 1, 12, 31))
    assert other["number"] == f"SAT{year - 1}000000001"


def test_an_unbalanced_manual_entry_is_refused_and_records_nothing(api: Api) -> None:
    before = event_count(api.services)
    response = api.post(
        "/api/journal-entries",
        {
            "date": "2026-05-01",
            "description": "Rent",
            "lines": [
                {"account": "770", "debit": "500.00"},
                {"account": "102", "credit": "400.00"},
            ],
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "lines"
    assert "not balanced" in response.json()["detail"]
    assert event_count(api.services) == before


def test_manual_entries_are_finance_s_alone_and_show_in_the_journal(api: Api) -> None:
    entry = {
        "date": "2026-05-01",
        "description": "May rent",
        "lines": [
            {"account": "770", "debit": "500.00", "memo": "office"},
            {"account": "102", "credit": "500.00"},
        ],
    }
    for role in ("sales", "manager", "auditor"):
        response = api.as_role(role).post("/api/journal-entries", entry)
        assert response.status_code == 403, (role, response.text)
    finance = api.as_role("finance")
    answer = finance.ok("post", "/api/journal-entries", entry)
    entries = finance.ok("get", "/api/journal-entries", params={"source_kind": "manual"})
    assert entries["total"] == 1
    [posted] = entries["items"]
    assert posted["entry_id"] == answer["id"]
    assert posted["posted_by"].startswith("finance")
    assert [(x["account"], x["debit"], x["credit"], x["memo"]) for x in posted["lines"]] == [
        ("770", "500.00", "0.00", "office"),
        ("102", "0.00", "500.00", None),
    ]
    income = finance.ok("get", "/api/reports/income-statement")
    assert income["net_profit"] == "-500.00"
    assert Decimal(finance.ok("get", "/api/reports/balance-sheet")["total_assets"]) == -500
