"""Drill-down over HTTP, on SQLite and PostgreSQL: with ?explain=true every figure of every
report names the events that made it — their positions in the store, their names and the
amounts they add, which add up exactly to the figure — live and as of a past moment, while
the answer without explain stays what it was."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from api.jobs import mark_overdue_invoices
from tests.api.test_order_to_cash import Books
from tests.conftest import Api

AGING = ("not_due", "days_1_30", "days_31_60", "days_61_90", "over_90")
FUNNEL = ("captured", "qualified", "converted", "disqualified")
PIPELINE = ("count", "amount", "weighted_amount")
LEDGER_PAGE = ("/opening_balance", "/lines/*/debit", "/lines/*/credit", "/lines/*/balance")
LEDGER_TOTALS = ("/debit", "/credit", "/closing_balance")

# The figures each report must explain (`*`: every element of a list). Every other number in
# an answer is an echo or a ratio of explained figures, named in ECHOES.
FIGURES: dict[str, tuple[str, ...]] = {
    "trial-balance": (
        *(
            f"/accounts/*/{f}"
            for f in ("opening", "debit", "credit", "balance", "debit_balance", "credit_balance")
        ),
        *(
            f"/totals/{f}"
            for f in ("opening", "debit", "credit", "debit_balance", "credit_balance")
        ),
    ),
    "income-statement": (
        "/income/*/amount",
        "/expenses/*/amount",
        "/total_income",
        "/total_expenses",
        "/net_profit",
    ),
    "balance-sheet": (
        "/assets/*/amount",
        "/liabilities/*/amount",
        "/equity/*/amount",
        "/total_assets",
        "/total_liabilities",
        "/total_equity",
        "/current_period_profit",
        "/total_liabilities_and_equity",
    ),
    "general-ledger": (*LEDGER_PAGE, *LEDGER_TOTALS, "/total_lines"),
    "cash-flow": (
        "/opening_balance",
        *(
            f"/periods/*/{f}"
            for f in ("cash_in", "cash_out", "net", "closing_balance", "expected_in")
        ),
        "/periods/*/by_account/*/in",
        "/periods/*/by_account/*/out",
        *(f"/totals/{f}" for f in ("cash_in", "cash_out", "net", "expected_in")),
        "/closing_balance",
        "/expected_overdue",
    ),
    "profitability": (
        *(f"/rows/*/{f}" for f in ("revenue", "cost_of_goods_sold", "gross_margin")),
        *(f"/total/{f}" for f in ("revenue", "cost_of_goods_sold", "gross_margin")),
    ),
    "profitability-by-product": (
        *(
            f"/rows/*/{f}"
            for f in (
                "revenue",
                "cost_of_goods_sold",
                "gross_margin",
                "quantity_invoiced",
                "quantity_shipped",
            )
        ),
        *(f"/total/{f}" for f in ("revenue", "cost_of_goods_sold", "gross_margin")),
    ),
    "receivables-aging": (
        *(f"/customers/*/{f}" for f in (*AGING, "total", "unallocated_credit", "net")),
        "/customers/*/invoices/*/open_amount",
        *(f"/totals/{f}" for f in (*AGING, "total", "unallocated_credit", "net")),
    ),
    "stock": (
        *(f"/items/*/{f}" for f in ("on_hand", "reserved", "available", "value")),
        "/by_warehouse/*/value",
        "/totals/items",
        "/totals/value",
    ),
    "pipeline": tuple(
        f"/{section}/*/{f}"
        for section in ("by_stage", "by_owner", "forecast", "closed")
        for f in PIPELINE
    ),
    "lead-funnel": (
        *(f"/{section}/*/{f}" for section in ("by_source", "by_campaign") for f in FUNNEL),
        *(f"/total/{f}" for f in FUNNEL),
    ),
    "statement": (*LEDGER_PAGE, *LEDGER_TOTALS),
}
ECHOES = {
    "account",  # a code
    "position",  # the general ledger's own pointer into the store
    "line",
    "limit",
    "offset",
    "total_rows",  # how many groups profitability has: a count of rows, not of events
    "days_past_due",
    "margin_percent",  # ratios of explained figures
    "qualification_rate",
    "conversion_rate",
    "qualified_to_converted_rate",
}
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# Each request: the report (its key in FIGURES), the path and the parameters; a customer's
# statement names the customer by its key in Scenario.customers.
REQUESTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "trial-balance": ("trial-balance", "/api/reports/trial-balance", {}),
    "trial-balance-from": ("trial-balance", "/api/reports/trial-balance", {"from": "2026-06-01"}),
    "income-statement": ("income-statement", "/api/reports/income-statement", {}),
    "income-statement-period": (
        "income-statement",
        "/api/reports/income-statement",
        {"from": "2026-06-01", "to": "2026-10-31"},
    ),
    "balance-sheet": ("balance-sheet", "/api/reports/balance-sheet", {}),
    "balance-sheet-from": ("balance-sheet", "/api/reports/balance-sheet", {"from": "2026-06-01"}),
    "general-ledger": ("general-ledger", "/api/reports/general-ledger", {"account": "120"}),
    "general-ledger-page": (
        "general-ledger",
        "/api/reports/general-ledger",
        {"account": "102", "from": "2026-02-01", "offset": "1", "limit": "2"},
    ),
    "cash-flow": (
        "cash-flow",
        "/api/reports/cash-flow",
        {"from": "2026-01-01", "to": "2027-03-31", "interval": "month"},
    ),
    "cash-flow-weeks": ("cash-flow", "/api/reports/cash-flow", {"interval": "week"}),
    "profitability": ("profitability", "/api/reports/profitability", {}),
    "profitability-by-customer": (
        "profitability",
        "/api/reports/profitability",
        {"by": "customer"},
    ),
    "profitability-by-product": (
        "profitability-by-product",
        "/api/reports/profitability",
        {"by": "product", "from": "2026-01-01"},
    ),
    "receivables-aging": ("receivables-aging", "/api/reports/receivables-aging", {}),
    "receivables-aging-on-a-day": (
        "receivables-aging",
        "/api/reports/receivables-aging",
        {"as_of": "2026-09-30"},
    ),
    # A page: its rows by their own events, the totals by every customer's.
    "receivables-aging-a-page": (
        "receivables-aging",
        "/api/reports/receivables-aging",
        {"sort": "-total", "limit": "1", "offset": "1"},
    ),
    "profitability-a-page": (
        "profitability",
        "/api/reports/profitability",
        {"by": "order", "sort": "margin", "limit": "1", "offset": "1"},
    ),
    "stock": ("stock", "/api/reports/stock", {}),
    "stock-west": ("stock", "/api/reports/stock", {"warehouse": "west"}),
    "pipeline": ("pipeline", "/api/reports/pipeline", {}),
    "lead-funnel": ("lead-funnel", "/api/reports/lead-funnel", {}),
    "statement": ("statement", "/api/customers/{anadolu}/statement", {}),
    "statement-from": ("statement", "/api/customers/{veli}/statement", {"from": "2026-11-01"}),
    "statement-in-credit": ("statement", "/api/customers/{deniz}/statement", {}),
}


@dataclass
class Scenario:
    api: Api
    customers: dict[str, str]
    # A moment in the middle of it: goods shipped and invoiced, nothing paid yet.
    midway: int

    def ask(self, name: str, **params: str) -> dict[str, Any]:
        _, path, defaults = REQUESTS[name]
        return dict(
            self.api.ok("get", path.format(**self.customers), params={**defaults, **params})
        )

    def raw(self, name: str, **params: str) -> Any:
        _, path, defaults = REQUESTS[name]
        return self.api.get(path.format(**self.customers), params={**defaults, **params})


def build(api: Api) -> Scenario:
    """Receipts in two warehouses, capital and rent by hand, leads through every stage,
    opportunities in several stages (won, lost), orders shipped in part and invoiced on
    several dates, payments in part, in excess and ahead (credit used on the next invoice),
    a reservation held, one released, and invoices marked overdue."""
    books = Books(api)
    ok = api.ok
    ok("post", "/api/warehouses", {"code": "WEST", "name": "West depot"})
    books.product("W-1", price=100)
    books.product("W-2", price=50)
    books.receive((10, 60), (12, 70))
    books.receive((20, 30), sku="W-2")
    west = {"warehouse": "WEST", "lines": [{"sku": "W-1", "quantity": "4", "unit_cost": "65.50"}]}
    ok("post", "/api/stock/receipts", west)
    for day, description, debit, credit, amount in (
        ("2026-01-15", "Capital paid in", "102", "500", "10000.00"),
        ("2026-05-01", "May rent", "770", "102", "500.00"),
    ):
        lines = [{"account": debit, "debit": amount}, {"account": credit, "credit": amount}]
        ok(
            "post",
            "/api/journal-entries",
            {"date": day, "description": description, "lines": lines},
        )

    leads = [
        ok("post", "/api/leads", body)["id"]
        for body in (
            {"name": "Ali", "company": "Veli Döküm", "source": "web", "campaign": "SPRING26"},
            {"name": "Ayşe", "company": "Yılmaz Tekstil", "source": "web"},
            {"name": "Can", "company": "Can Ltd", "source": "referral", "campaign": "SPRING26"},
            {"name": "Deniz", "company": "Deniz AŞ", "source": "fair"},
            {"name": "Ece", "company": "Ece Ltd", "source": "fair"},
        )
    ]
    ok("post", f"/api/leads/{leads[1]}/qualify")
    ok("post", f"/api/leads/{leads[2]}/qualify")
    ok("post", f"/api/leads/{leads[2]}/disqualify", {"reason": "no budget"})
    ok("post", f"/api/leads/{leads[3]}/disqualify", {"reason": "student"})
    converted = ok(
        "post",
        f"/api/leads/{leads[0]}/convert",
        {"opportunity": {"title": "Moulds", "amount": "90000.00", "expected_close": "2027-02-28"}},
    )
    ok("post", f"/api/leads/{leads[1]}/convert", {"create_opportunity": False})
    veli = converted["customer_id"]
    anadolu = books.customer("Anadolu Gıda")
    deniz = books.customer("Deniz Ltd", terms=0)

    opportunities = {}
    for title, amount, stage, probability, close in (
        ("Shelving", "50000.00", "proposal", None, "2026-12-15"),
        ("Racks", "20000.00", "qualification", "35.5", "2027-01-10"),
        ("Bins", "3333.33", "prospecting", "33", None),
        ("Pallets", "8000.00", "proposal", None, "2026-12-20"),
        ("Crates", "1500.00", "negotiation", None, "2026-12-01"),
    ):
        body = {"customer_id": anadolu, "title": title, "amount": amount, "stage": stage}
        if probability:
            body["probability"] = probability
        if close:
            body["expected_close"] = close
        opportunities[title] = ok("post", "/api/opportunities", body)["id"]
    racks = {"stage": "proposal", "probability": "62.5"}
    ok("post", f"/api/opportunities/{opportunities['Racks']}/stage", racks)
    ok("post", f"/api/opportunities/{opportunities['Pallets']}/win")
    ok("post", f"/api/opportunities/{opportunities['Crates']}/lose", {"reason": "price"})
    ok("post", f"/api/opportunities/{converted['opportunity_id']}/stage", {"stage": "negotiation"})

    first = books.order(veli, 15, ship=12)
    books.invoice(first)
    books.ship(first, 3)  # shipped, not invoiced yet
    books.invoice(books.order(anadolu, 10, sku="W-2"), on=date(2026, 6, 10))
    books.invoice(books.order(anadolu, 5), on=date(2026, 9, 1))
    midway = api.last_position
    books.pay(veli, "1000.00")
    books.pay(anadolu, "500.00", date="2026-07-01")
    books.pay(deniz, "200.00", date="2026-10-01")  # nothing to pay yet: credit
    books.invoice(books.order(deniz, 1, sku="W-2"), on=date(2026, 10, 20))  # from the credit
    for sku, quantity, cancel in (("W-2", "4", False), ("W-1", "2", True)):
        line = {"sku": sku, "quantity": quantity}
        quote = books.post("/api/quotes", {"customer_id": anadolu, "lines": [line]})
        books.post(f"/api/quotes/{quote['id']}/accept")
        order = books.post("/api/orders", {"quote_id": quote["id"]})
        books.post(f"/api/orders/{order['id']}/confirm")
        if cancel:
            books.post(f"/api/orders/{order['id']}/cancel")
    mark_overdue_invoices(api.services, date(2026, 11, 27))
    api.last_position = api.services.business.recorder.max_notification_id() or 0
    return Scenario(api, {"veli": veli, "anadolu": anadolu, "deniz": deniz}, midway)


@pytest.fixture(scope="module")
def scenario(shared_api: Api) -> Scenario:
    return build(shared_api)


@dataclass(frozen=True)
class Stored:
    name: str  # Class.Event
    amounts: frozenset[Decimal]  # every number the event carries


def carried(value: Any) -> Iterator[Decimal]:
    if isinstance(value, dict) and value.get("_type_") == "decimal_str":
        yield abs(Decimal(value["_data_"]))
    elif isinstance(value, dict):
        for item in value.values():
            yield from carried(item)
    elif isinstance(value, list):
        for item in value:
            yield from carried(item)
    elif isinstance(value, str) and NUMBER.match(value):
        yield abs(Decimal(value))


@pytest.fixture(scope="module")
def stored_events(scenario: Scenario) -> dict[int, Stored]:
    """Every event in the store, by position: its name and the amounts it carries."""
    recorder = scenario.api.services.business.recorder
    head = recorder.max_notification_id() or 0
    return {
        n.id: Stored(n.topic.split(":")[-1], frozenset(carried(json.loads(bytes(n.state)))))
        for n in recorder.select_notifications(1, head)
    }


# -- checks ----------------------------------------------------------------------------------


def resolve(answer: Any, path: str) -> Any:
    """The value at a JSON pointer."""
    value = answer
    for part in path.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def expand(answer: Any, pattern: str) -> Iterator[str]:
    """The concrete pointers a pattern names in this answer."""

    def walk(value: Any, parts: list[str], prefix: str) -> Iterator[str]:
        if not parts:
            yield prefix
            return
        head, *rest = parts
        if head == "*":
            for i, item in enumerate(value):
                yield from walk(item, rest, f"{prefix}/{i}")
        elif isinstance(value, dict) and head in value:
            yield from walk(value[head], rest, f"{prefix}/{head}")

    yield from walk(answer, pattern.split("/")[1:], "")


def numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every number in an answer (amounts are strings): its pointer and its last key."""
    if isinstance(value, dict):
        for key, item in value.items():
            if prefix == "" and key == "explain":
                continue
            if isinstance(item, (dict, list)):
                yield from numbers(item, f"{prefix}/{key}")
            elif (isinstance(item, int) and not isinstance(item, bool)) or (
                isinstance(item, str) and NUMBER.match(item)
            ):
                yield f"{prefix}/{key}", key
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, f"{prefix}/{i}")


def check_explained(
    report: str, answer: dict[str, Any], stored: dict[int, Stored], up_to: int | None = None
) -> int:
    """Every figure of the report is explained, by events in the store (at or before
    `up_to`) that carry the amounts they contribute, which add up to it exactly; answers how
    many figures there were. (A weighted amount is the event's amount times its probability,
    so it is not carried as such.)"""
    explain = answer["explain"]
    wanted = {path for pattern in FIGURES[report] for path in expand(answer, pattern)}
    assert set(explain) == wanted, (
        f"{report}: unexplained {sorted(wanted - set(explain))}, "
        f"unexpected {sorted(set(explain) - wanted)}"
    )
    for path, key in numbers(answer):
        assert path in explain or key in ECHOES, f"{report}: {path} is not explained"
    for path, contributions in explain.items():
        figure = resolve(answer, path)
        total = sum((Decimal(c["amount"]) for c in contributions), Decimal(0))
        assert total == Decimal(figure), f"{report}: {path} is {figure}, explained as {total}"
        if isinstance(figure, int):
            assert all(c["amount"] == "1" for c in contributions), f"{report}: {path}"
        for c in contributions:
            assert set(c) == {"position", "event", "amount"}
            event = stored.get(c["position"])
            assert event is not None, f"{report}: {path}: {c} is not in the store"
            assert event.name == c["event"], f"{report}: {path}: {c}"
            if not isinstance(figure, int) and not path.endswith("/weighted_amount"):
                assert abs(Decimal(c["amount"])) in event.amounts, f"{report}: {path}: {c}"
            assert up_to is None or c["position"] <= up_to, f"{report}: {path}: {c}"
    return len(explain)


def without_explain(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "explain"}


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REQUESTS)
def test_every_figure_of_the_report_adds_up_from_the_events_that_made_it(
    scenario: Scenario, stored_events: dict[int, Stored], name: str
) -> None:
    plain = scenario.raw(name)
    explained = scenario.ask(name, explain="true")

    assert check_explained(REQUESTS[name][0], explained, stored_events) > 0
    if "offset" in REQUESTS[name][2]:  # a page past the first: it has rows of its own
        assert any(explained.get(k) for k in ("rows", "customers", "lines")), name
    assert without_explain(explained) == plain.json()
    assert list(explained) == [*plain.json(), "explain"]
    assert scenario.raw(name, explain="false").content == plain.content


@pytest.mark.parametrize(
    "name",
    [
        "trial-balance",
        "balance-sheet",
        "general-ledger",
        "cash-flow",
        "profitability-by-product",
        "receivables-aging",
        "stock",
        "pipeline",
        "lead-funnel",
        "statement",
    ],
)
def test_a_report_as_of_a_past_position_is_explained_by_the_events_before_it(
    scenario: Scenario, stored_events: dict[int, Stored], name: str
) -> None:
    moment = str(scenario.midway)
    plain = scenario.ask(name, as_of=moment)
    explained = scenario.ask(name, as_of=moment, explain="true")
    assert without_explain(explained) == plain
    check_explained(REQUESTS[name][0], explained, stored_events, up_to=scenario.midway)


def test_a_report_on_a_business_day_is_explained_by_the_lines_dated_by_then(
    scenario: Scenario, stored_events: dict[int, Stored]
) -> None:
    explained = scenario.ask("trial-balance", as_of="2026-06-30", explain="true")
    check_explained("trial-balance", explained, stored_events)
    capital = next(i for i, a in enumerate(explained["accounts"]) if a["account"] == "500")
    assert explained["accounts"][capital]["credit"] == "10000.00"  # receipts are dated later
    [paid_in] = explained["explain"][f"/accounts/{capital}/credit"]
    assert (paid_in["event"], paid_in["amount"]) == ("JournalEntry.Posted", "10000.00")


def events(contributions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["event"], c["amount"]) for c in contributions]


def test_each_amount_is_explained_by_the_event_that_set_it(scenario: Scenario) -> None:
    stock = scenario.ask("stock", explain="true")
    rows = {(row["sku"], row["warehouse"]): i for i, row in enumerate(stock["items"])}
    w2 = rows[("W-2", "MAIN")]
    assert stock["items"][w2]["reserved"] == "4"
    assert events(stock["explain"][f"/items/{w2}/reserved"]) == [
        ("StockItem.Reserved", "10"),
        ("StockItem.Issued", "-10"),  # shipping used the order's reservation
        ("StockItem.Reserved", "1"),
        ("StockItem.Issued", "-1"),
        ("StockItem.Reserved", "4"),  # held: confirmed, not shipped
    ]
    w1 = rows[("W-1", "MAIN")]
    assert events(stock["explain"][f"/items/{w1}/reserved"])[-2:] == [
        ("StockItem.Reserved", "2"),
        ("StockItem.Released", "-2"),  # the order was cancelled
    ]

    pipeline = scenario.ask("pipeline", explain="true")
    proposal = next(i for i, row in enumerate(pipeline["by_stage"]) if row["stage"] == "proposal")
    assert {c["event"] for c in pipeline["explain"][f"/by_stage/{proposal}/amount"]} == {
        "Opportunity.Opened"
    }
    # Racks moved to proposal at 62.5 %: its weighted amount is that event's.
    weighted = pipeline["explain"][f"/by_stage/{proposal}/weighted_amount"]
    assert ("Opportunity.StageChanged", "12500.00") in events(weighted)

    funnel = scenario.ask("lead-funnel", explain="true")
    assert sorted(c["event"] for c in funnel["explain"]["/total/qualified"]) == [
        "Lead.Converted",  # converted straight from new
        "Lead.Qualified",
        "Lead.Qualified",
    ]

    aging = scenario.ask("receivables-aging", explain="true")
    customers = {c["name"]: i for i, c in enumerate(aging["customers"])}
    # Marked overdue since, the invoice is still explained by its issue.
    assert events(aging["explain"][f"/customers/{customers['Anadolu Gıda']}/over_90"]) == [
        ("Invoice.Issued", "600.00"),
        ("Payment.Received", "-500.00"),
    ]
    assert events(aging["explain"][f"/customers/{customers['Deniz Ltd']}/net"]) == [
        ("Payment.Received", "-200.00"),
        ("ReceivableAccount.CreditApplied", "60.00"),
    ]

    profit = scenario.ask("profitability-by-customer", explain="true")
    assert {c["event"] for c in profit["explain"]["/total/gross_margin"]} == {
        "Invoice.Issued",
        "Shipment.Dispatched",
    }


def test_a_pointer_explains_only_the_figures_under_it(scenario: Scenario) -> None:
    everything = scenario.ask("trial-balance", explain="true")["explain"]
    one = scenario.ask("trial-balance", explain="/accounts/1")["explain"]
    assert one == {p: c for p, c in everything.items() if p.startswith("/accounts/1/")}
    assert scenario.ask("trial-balance", explain="/totals/debit")["explain"] == {
        "/totals/debit": everything["/totals/debit"]
    }
    refused = scenario.raw("trial-balance", explain="please")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "explain"
