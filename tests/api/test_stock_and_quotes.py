"""Products, stock and quotes over HTTP, on SQLite and PostgreSQL: goods are received into FIFO
layers, and the quote sales looks at shows what is available, what it would cost now and the
margin it leaves. Rejected requests answer with the right status and record nothing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Api, event_count

TODAY = date(2026, 11, 27)


def sku(prefix: str = "W") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def define(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku(), "name": "Steel widget", "list_price": "100", "vat_rate": 20, **fields}
    answer = api.ok("post", "/api/products", body)
    return {**body, "id": answer["id"]}


def receive(api: Api, product: dict[str, Any], *layers: tuple[int, str], **body: Any) -> Any:
    lines = [{"product_id": product["id"], "quantity": q, "unit_cost": c} for q, c in layers]
    return api.ok("post", "/api/stock/receipts", {"lines": lines, **body})


def customer(api: Api, name: str = "Anadolu Gıda") -> str:
    return str(api.ok("post", "/api/customers", {"name": name})["id"])


def quote(api: Api, customer_id: str, *lines: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.ok(
        "post", "/api/quotes", {"customer_id": customer_id, "lines": list(lines), **body}
    )
    return answer


def stock_row(api: Api, product: dict[str, Any], warehouse: str = "MAIN") -> dict[str, Any]:
    report = api.ok("get", "/api/reports/stock", params={"product_id": product["id"]})
    row: dict[str, Any] = next(i for i in report["items"] if i["warehouse"] == warehouse)
    return row


# The tests of this module share one store per backend (conftest.shared_api): each makes
# products and customers of its own, so none sees another's stock or quotes.


@pytest.fixture
def api(shared_api: Api) -> Api:
    return shared_api


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch, api: Api) -> date:
    """The business date, fixed: quotes and their previews are dated by it."""
    monkeypatch.setattr(api.services.business, "today", lambda: TODAY)
    return TODAY


def test_the_quote_shows_what_is_in_stock_what_it_would_cost_at_fifo_and_the_margin(
    api: Api, today: date
) -> None:
    widget = define(api, standard_cost="65", lead_time_days=14)
    first = receive(api, widget, (10, "60"))
    assert first["number"].startswith("GRS2026")
    assert first["position"] > 0
    receive(api, widget, (10, "70"), reference="delivery 4711")
    row = stock_row(api, widget)
    assert (row["on_hand"], row["reserved"], row["available"], row["value"]) == (
        "20",
        "0",
        "20",
        "1300.00",
    )

    created = quote(
        api, customer(api), {"product_id": widget["id"], "quantity": 15, "unit_price": "100"}
    )
    assert created["number"].startswith("TKL2026")
    view = api.ok("get", f"/api/quotes/{created['id']}")

    assert (view["number"], view["revision"], view["status"]) == (created["number"], 1, "draft")
    assert (view["untaxed"], view["tax"], view["total"]) == ("1500.00", "300.00", "1800.00")
    assert view["tax_by_rate"] == {"20": "300.00"}
    assert view["valid_until"] == (today + timedelta(days=30)).isoformat()
    line = view["lines"][0]
    assert (line["quantity"], line["net"], line["vat"]) == ("15", "1500.00", "300.00")
    assert line["availability"] == [
        {"warehouse": "MAIN", "on_hand": "20", "reserved": "0", "available": "20"}
    ]
    assert (line["available"], line["available_total"], line["short"]) == (
        "20",
        "20",
        False,
    )
    assert (line["lead_time_days"], line["earliest_ship_date"]) == (None, None)
    assert (line["cost"], line["cost_estimated"]) == ("950.00", False)
    assert (line["margin"], line["margin_percent"]) == ("550.00", "36.67")
    assert (view["cost"], view["margin"], view["margin_percent"]) == ("950.00", "550.00", "36.67")
    assert (view["warehouse"], view["as_of"], view["cost_estimated"]) == (
        "MAIN",
        today.isoformat(),
        False,
    )


def test_a_short_line_shows_the_lead_time_the_earliest_ship_date_and_an_estimated_cost(
    api: Api, today: date
) -> None:
    widget = define(api, standard_cost="65", lead_time_days=14)
    receive(api, widget, (10, "60"))
    service = define(api, type="service", name="Installation", standard_cost="40.50")

    created = quote(
        api,
        customer(api),
        {"sku": widget["sku"], "quantity": 15},
        {"sku": service["sku"], "quantity": 2, "unit_price": "75", "discount_percent": "10"},
    )
    view = api.ok("get", f"/api/quotes/{created['id']}")

    short, installation = view["lines"]
    assert (short["available"], short["short"]) == ("10", True)
    assert (short["lead_time_days"], short["earliest_ship_date"]) == (
        14,
        (today + timedelta(days=14)).isoformat(),
    )
    # 10 in stock at 60, the 5 missing at the standard cost of 65.
    assert (short["cost"], short["cost_estimated"]) == ("925.00", True)
    assert (short["margin"], short["margin_percent"]) == ("575.00", "38.33")
    assert installation["net"] == "135.00"
    assert (installation["availability"], installation["short"]) == ([], False)
    assert (installation["cost"], installation["cost_estimated"]) == ("81.00", True)
    assert (view["untaxed"], view["cost"], view["margin"]) == ("1635.00", "1006.00", "629.00")
    assert view["cost_estimated"] is True


def test_stock_reserved_for_confirmed_orders_is_not_offered_again_in_a_quote(api: Api) -> None:
    widget = define(api, standard_cost="65", lead_time_days=7)
    receive(api, widget, (10, "60"), (10, "70"))
    buyer = customer(api)
    order = api.ok(
        "post",
        "/api/orders",
        {"customer_id": buyer, "lines": [{"sku": widget["sku"], "quantity": 5}]},
    )
    api.ok("post", f"/api/orders/{order['id']}/confirm")

    created = quote(api, buyer, {"sku": widget["sku"], "quantity": 10})
    line = api.ok("get", f"/api/quotes/{created['id']}")["lines"][0]

    # The 5 reserved leave first from the oldest layer: the quote gets 5 at 60 and 5 at 70.
    assert line["availability"][0]["reserved"] == "5"
    assert (line["available"], line["short"], line["cost"]) == ("15", False, "650.00")


def test_the_preview_can_be_asked_for_another_warehouse(api: Api) -> None:
    widget = define(api, standard_cost="65")
    api.ok("post", "/api/warehouses", {"code": "izmir", "name": "İzmir depo"})
    receive(api, widget, (4, "80"), warehouse="IZMIR")
    receive(api, widget, (10, "60"))
    created = quote(api, customer(api), {"sku": widget["sku"], "quantity": 5})

    line = api.ok("get", f"/api/quotes/{created['id']}", params={"warehouse": "izmir"})["lines"][0]

    assert [(a["warehouse"], a["available"]) for a in line["availability"]] == [
        ("IZMIR", "4"),
        ("MAIN", "10"),
    ]
    assert (line["available"], line["available_total"], line["short"]) == (
        "4",
        "14",
        True,
    )
    assert line["cost"] == "385.00"  # 4 at 80 and one at the standard cost of 65
    report = api.ok("get", "/api/reports/stock", params={"product_id": widget["id"]})
    assert report["by_warehouse"] == [
        {"warehouse": "IZMIR", "value": "320.00"},
        {"warehouse": "MAIN", "value": "600.00"},
    ]
    assert report["totals"] == {"items": 2, "value": "920.00"}


def test_a_revision_is_a_new_quote_and_the_old_one_stays_readable(api: Api) -> None:
    widget = define(api)
    old = quote(api, customer(api), {"sku": widget["sku"], "quantity": 3})
    api.ok("post", f"/api/quotes/{old['id']}/send")

    new = api.ok(
        "post",
        f"/api/quotes/{old['id']}/revise",
        {"lines": [{"sku": widget["sku"], "quantity": 4, "unit_price": "90"}]},
    )

    assert new["id"] != old["id"]
    assert (new["number"], new["revision_of"]) == (f"{old['number']}-R2", old["id"])
    before = api.ok("get", f"/api/quotes/{old['id']}")
    assert (before["status"], before["revised_by"]) == ("revised", new["id"])
    assert (before["lines"][0]["quantity"], before["untaxed"]) == ("3", "300.00")
    after = api.ok("get", f"/api/quotes/{new['id']}")
    assert (after["status"], after["revision"], after["revision_of"]) == ("draft", 2, old["id"])
    assert (after["lines"][0]["quantity"], after["untaxed"]) == ("4", "360.00")

    again = api.ok("post", f"/api/quotes/{new['id']}/revise")
    assert again["number"] == f"{old['number']}-R3"
    numbers = api.ok("get", "/api/quotes", params={"number": old["number"]})
    assert [(q["number"], q["status"]) for q in numbers["items"]] == [
        (f"{old['number']}-R3", "draft"),
        (f"{old['number']}-R2", "revised"),
        (old["number"], "revised"),
    ]


def test_quotes_move_from_draft_to_sent_to_accepted_or_rejected(api: Api) -> None:
    widget = define(api)
    buyer = customer(api)
    taken = quote(api, buyer, {"sku": widget["sku"], "quantity": 1})
    declined = quote(api, buyer, {"sku": widget["sku"], "quantity": 2})
    api.ok("post", f"/api/quotes/{taken['id']}/send")
    accepted = api.ok("post", f"/api/quotes/{taken['id']}/accept")
    api.ok("post", f"/api/quotes/{declined['id']}/reject", {"reason": "too expensive"})

    assert accepted["version"] == 3
    view = api.ok("get", f"/api/quotes/{declined['id']}")
    assert (view["status"], view["reject_reason"]) == ("rejected", "too expensive")
    listed = api.ok("get", "/api/quotes", params={"customer_id": buyer, "status": "accepted"})
    assert [q["id"] for q in listed["items"]] == [taken["id"]]
    assert listed["items"][0]["sent_at"] is not None


def test_products_and_warehouses_are_listed_and_found(api: Api) -> None:
    code = sku("LIST")
    widget = define(api, sku=code, name="Flanged valve", unit="adet", standard_cost="12.5")
    define(api, sku=f"{code}-S", type="service", name="Valve fitting", list_price="30")
    api.ok("post", "/api/warehouses", {"code": "ANK", "name": "Ankara depo"})
    receive(api, widget, (3, "12"))

    services = api.ok("get", "/api/products", params={"type": "service", "q": code.lower()})
    assert [p["sku"] for p in services["items"]] == [f"{code}-S"]
    found = api.ok("get", "/api/products", params={"q": "flanged"})
    assert (found["total"], found["items"][0]["id"]) == (1, widget["id"])
    detail = api.ok("get", f"/api/products/{widget['id']}")
    assert (detail["sku"], detail["type"], detail["list_price"], detail["vat_rate"]) == (
        code,
        "stocked",
        "100.00",
        "20",
    )
    assert [(s["warehouse"], s["on_hand"], s["value"]) for s in detail["stock"]] == [
        ("MAIN", "3", "36.00")
    ]
    warehouses = api.ok("get", "/api/warehouses")
    codes = [w["code"] for w in warehouses["items"]]
    assert codes == sorted(codes)
    assert {"ANK", "MAIN"} <= set(codes)
    assert next(w for w in warehouses["items"] if w["code"] == "ANK")["name"] == "Ankara depo"


def test_every_read_and_write_checks_the_callers_role(api: Api) -> None:
    widget = define(api)
    seller, storekeeper, auditor = (
        api.as_role("sales"),
        api.as_role("warehouse"),
        api.as_role("auditor"),
    )
    line = {"lines": [{"product_id": widget["id"], "quantity": 1, "unit_cost": "5"}]}
    assert seller.post("/api/stock/receipts", line).status_code == 403
    assert seller.post("/api/products", {"sku": sku(), "name": "x"}).status_code == 403
    assert auditor.post("/api/warehouses", {"code": "X", "name": "x"}).status_code == 403
    assert (
        storekeeper.post("/api/quotes", {"customer_id": str(uuid.uuid4()), "lines": []}).status_code
        == 403
    )
    assert storekeeper.post("/api/stock/receipts", line).status_code == 201
    assert auditor.get("/api/reports/stock").status_code == 200


# -- rejected requests record nothing --------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(shared_api: Api) -> dict[str, Any]:
    """A stocked product with 10 in stock, a service, a customer, and a sent quote."""
    api = shared_api
    widget = define(api, sku=sku("REJ"))
    receive(api, widget, (10, "60"))
    service = define(api, sku=sku("SRV"), type="service")
    buyer = customer(api)
    sent = quote(api, buyer, {"sku": widget["sku"], "quantity": 1})
    api.ok("post", f"/api/quotes/{sent['id']}/send")
    return {"widget": widget, "service": service, "customer": buyer, "quote": sent["id"]}


def rejected(api: Api, path: str, body: Any, status: int) -> dict[str, Any]:
    before = event_count(api.services)
    response = api.post(path, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert event_count(api.services) == before
    problem: dict[str, Any] = response.json()
    return problem


def fields(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem.get("errors", [])]


def test_a_second_product_with_the_same_sku_is_refused(shared_api: Api, catalog: Any) -> None:
    again = {"sku": catalog["widget"]["sku"].lower(), "name": "Another widget"}
    problem = rejected(shared_api, "/api/products", again, 409)
    assert catalog["widget"]["sku"] in problem["detail"]


def test_a_service_cannot_be_received_into_stock(shared_api: Api, catalog: Any) -> None:
    body = {"lines": [{"sku": catalog["service"]["sku"], "quantity": 1, "unit_cost": "5"}]}
    problem = rejected(shared_api, "/api/stock/receipts", body, 409)
    assert "service" in problem["detail"]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": 0, "unit_cost": "5"}, "lines[0].quantity"),
        ({"quantity": -2, "unit_cost": "5"}, "lines[0].quantity"),
        ({"quantity": 1, "unit_cost": "-5"}, "lines[0].unit_cost"),
        ({"quantity": "1.23456", "unit_cost": "5"}, "lines[0].quantity"),
    ],
)
def test_receipt_lines_need_a_positive_quantity_and_a_cost(
    shared_api: Api, catalog: Any, line: dict[str, Any], field: str
) -> None:
    body = {"lines": [{"product_id": catalog["widget"]["id"], **line}]}
    assert fields(rejected(shared_api, "/api/stock/receipts", body, 422)) == [field]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": 0}, "lines[0].quantity"),
        ({"quantity": -1}, "lines[0].quantity"),
        ({"quantity": 1, "unit_price": "-100"}, "lines[0].unit_price"),
        ({"quantity": 1, "discount_percent": "120"}, "lines[0].discount_percent"),
        ({"quantity": "9999999999", "unit_price": "9999999"}, "lines[0]"),
    ],
)
def test_quote_lines_need_a_positive_quantity_and_a_price(
    shared_api: Api, catalog: Any, line: dict[str, Any], field: str
) -> None:
    body = {
        "customer_id": catalog["customer"],
        "lines": [{"sku": catalog["widget"]["sku"], **line}],
    }
    assert fields(rejected(shared_api, "/api/quotes", body, 422)) == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"list_price": "-1"}, "list_price"),
        ({"standard_cost": "-1"}, "standard_cost"),
        ({"vat_rate": 18}, "vat_rate"),
        ({"type": "bundle"}, "type"),
        ({"lead_time_days": -3}, "lead_time_days"),
        ({"name": " "}, "name"),
    ],
)
def test_a_product_needs_valid_prices_rates_and_names(
    shared_api: Api, body: dict[str, Any], field: str
) -> None:
    product = {"sku": sku(), "name": "Widget", **body}
    assert fields(rejected(shared_api, "/api/products", product, 422)) == [field]


def test_unknown_ids_are_not_found(shared_api: Api, catalog: Any) -> None:
    nobody = str(uuid.uuid4())
    line = {"sku": catalog["widget"]["sku"], "quantity": 1}
    rejected(shared_api, "/api/quotes", {"customer_id": nobody, "lines": [line]}, 404)
    unknown_product = {"product_id": nobody, "quantity": 1}
    body = {"customer_id": catalog["customer"], "lines": [unknown_product]}
    rejected(shared_api, "/api/quotes", body, 404)
    rejected(
        shared_api, "/api/stock/receipts", {"lines": [{**unknown_product, "unit_cost": 1}]}, 404
    )
    receipt = {"warehouse": "NOWHERE", "lines": [{**line, "unit_cost": 1}]}
    rejected(shared_api, "/api/stock/receipts", receipt, 404)
    rejected(shared_api, f"/api/quotes/{nobody}/accept", None, 404)
    rejected(shared_api, f"/api/quotes/{nobody}/revise", None, 404)
    for path in (
        f"/api/quotes/{nobody}",
        f"/api/products/{nobody}",
        f"/api/stock/receipts/{nobody}",
    ):
        assert shared_api.get(path).status_code == 404
    unknown_warehouse = shared_api.get(f"/api/quotes/{catalog['quote']}", {"warehouse": "NOPE"})
    assert unknown_warehouse.status_code == 404


def test_an_expired_quote_cannot_be_accepted(
    shared_api: Api, catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    business = shared_api.services.business
    today = business.today()
    lasting = quote(
        shared_api,
        catalog["customer"],
        {"sku": catalog["widget"]["sku"], "quantity": 1},
        valid_until=today.isoformat(),
    )
    monkeypatch.setattr(business, "today", lambda: today + timedelta(days=1))

    problem = rejected(shared_api, f"/api/quotes/{lasting['id']}/accept", None, 409)

    assert "expired" in problem["detail"]
    assert shared_api.ok("get", f"/api/quotes/{lasting['id']}")["status"] == "draft"


def test_a_quote_cannot_be_sent_twice_nor_valid_until_a_past_date(
    shared_api: Api, catalog: Any
) -> None:
    rejected(shared_api, f"/api/quotes/{catalog['quote']}/send", None, 409)
    yesterday = shared_api.services.business.today() - timedelta(days=1)
    body = {
        "customer_id": catalog["customer"],
        "lines": [{"sku": catalog["widget"]["sku"], "quantity": 1}],
        "valid_until": yesterday.isoformat(),
    }
    assert fields(rejected(shared_api, "/api/quotes", body, 422)) == ["valid_until"]


# -- domain issues (these fail until the domain is fixed; see the report on issue 3) ---------


def test_a_revision_can_change_the_payment_terms_to_zero_days(api: Api) -> None:
    """SalesCommands.revise_quote takes `payment_terms_days or old.payment_terms_days`: 0
    (cash in advance) is falsy, so the old terms are kept."""
    widget = define(api)
    old = quote(api, customer(api), {"sku": widget["sku"], "quantity": 1}, payment_terms_days=30)

    new = api.ok("post", f"/api/quotes/{old['id']}/revise", {"payment_terms_days": 0})

    assert api.ok("get", f"/api/quotes/{new['id']}")["payment_terms_days"] == 0
