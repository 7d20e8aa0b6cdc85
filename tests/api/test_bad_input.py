"""Bad input across the business, on SQLite and PostgreSQL: wrong types, missing fields, zero,
negative and over-precise amounts, unknown choices, huge strings and bodies. Each gets a 4xx
problem+json naming the field and records nothing. Turkish names go in and come back exactly;
text that looks like SQL is only text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import DEFAULT_MAX_BODY_BYTES
from tests.conftest import Api, event_count

PROBLEM = "application/problem+json"
UNKNOWN = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture(scope="module")
def books(shared_api: Api) -> dict[str, str]:
    """Records to aim at: a stocked product, a customer, a sent quote, a shipped order."""
    api = shared_api
    api.ok("post", "/api/products", {"sku": "BI-1", "name": "Widget", "list_price": "100.00"})
    api.ok("post", "/api/stock/receipts", {"lines": [{"sku": "BI-1", "quantity": 50,
                                                       "unit_cost": "60.00"}]})  # fmt: skip
    customer = api.ok("post", "/api/customers", {"name": "Kaya Gıda", "tax_number": "1234567890"})
    lines = [{"sku": "BI-1", "quantity": 2}]
    quote = api.ok("post", "/api/quotes", {"customer_id": customer["id"], "lines": lines})
    api.ok("post", f"/api/quotes/{quote['id']}/send")
    accepted = api.ok("post", "/api/quotes", {"customer_id": customer["id"], "lines": lines})
    api.ok("post", f"/api/quotes/{accepted['id']}/send")
    api.ok("post", f"/api/quotes/{accepted['id']}/accept")
    order = api.ok("post", "/api/orders", {"quote_id": accepted["id"]})
    api.ok("post", f"/api/orders/{order['id']}/confirm")
    api.ok("post", "/api/shipments", {"order_id": order["id"]})
    lead = api.ok("post", "/api/leads", {"name": "Ali Veli"})
    return {
        "customer": customer["id"],
        "quote": quote["id"],
        "order": order["id"],
        "lead": lead["id"],
    }


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def assert_rejected(api: Api, response: Any, field: str, before: int) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == response.status_code
    assert field in [e["field"] for e in problem.get("errors", [])], problem
    assert event_count(api.services) == before
    return dict(problem)


LONG = "x" * 100_000
TEN_DECIMALS = "100.0000000001"
LINE = {"sku": "BI-1", "quantity": 1}
ENTRY = {"date": "2026-05-01", "description": "Rent"}
PAID = {"customer_id": "{customer}", "method": "bank"}

# (endpoint, body, the field the answer names)
CASES: list[tuple[str, Any, str]] = [
    # leads
    ("/api/leads", {"name": ["Ali"]}, "name"),
    ("/api/leads", {"name": None}, "name"),
    ("/api/leads", {"email": "ali@veli.com"}, "name"),
    ("/api/leads", {"name": LONG}, "name"),
    ("/api/leads", {"name": "Ali", "company": LONG}, "company"),
    ("/api/leads", {"name": "Ali", "source": LONG}, "source"),
    ("/api/leads", {"name": "Ali\x00Veli"}, "name"),
    ("/api/payments", b"0\xff", "body"),
    ("/api/leads", b'{"name": "Ali \xff Veli"}', "body"),
    ("/api/leads", b'{"name": "Ali \\ud800 Veli"}', "name"),
    ("/api/customers", {"name": "Kaya", "contacts": [{"name": "Elif", "role": "\x00"}]},
     "contacts[0].role"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "770", "debit": "5.00",
                                                  "memo": "rent\x00"},
                                                 {"account": "102", "credit": "5.00"}]},
     "lines[0].memo"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": TEN_DECIMALS}}, "opportunity.amount"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": "-0.01"}}, "opportunity.amount"),
    # customers
    ("/api/customers", {"name": "Kaya", "payment_terms_days": 1.5}, "payment_terms_days"),
    ("/api/customers", {"name": "Kaya", "payment_terms_days": -1}, "payment_terms_days"),
    ("/api/customers", {"name": "Kaya", "credit_limit": "0.0000000001"}, "credit_limit"),
    ("/api/customers", {"name": "Kaya", "credit_limit": -1}, "credit_limit"),
    ("/api/customers", {"name": "Kaya", "kind": "robot"}, "kind"),
    ("/api/customers", {"name": "Kaya", "currency": "DOGE"}, "currency"),
    ("/api/customers", {"name": "x" * 201}, "name"),
    ("/api/customers", {"name": "Kaya", "tax_office": LONG}, "tax_office"),
    ("/api/customers", {"name": "Kaya", "addresses": "Cad. 1"}, "addresses"),
    ("/api/customers", {"name": "Kaya", "contacts": [{"email": "a@b.co"}]}, "contacts[0].name"),
    # products
    ("/api/products", {"name": "Widget"}, "sku"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "type": "digital"}, "type"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "list_price": "-1.00"}, "list_price"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "list_price": TEN_DECIMALS}, "list_price"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "standard_cost": "-5"}, "standard_cost"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "vat_rate": 18}, "vat_rate"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "vat_rate": "twenty"}, "vat_rate"),
    ("/api/products", {"sku": "P-1", "name": "Widget", "lead_time_days": -3}, "lead_time_days"),
    ("/api/products", {"sku": LONG, "name": "Widget"}, "sku"),
    ("/api/products", b'{"sku": "P-1", "name": "Widget", "list_price": 1e400}', "list_price"),
    # stock
    ("/api/stock/receipts", {"lines": [{"sku": "BI-1", "quantity": 0, "unit_cost": "1"}]},
     "lines[0].quantity"),
    ("/api/stock/receipts", {"lines": [{"sku": "BI-1", "quantity": -5, "unit_cost": "1"}]},
     "lines[0].quantity"),
    ("/api/stock/receipts", {"lines": [{"sku": "BI-1", "quantity": 1, "unit_cost": "-1"}]},
     "lines[0].unit_cost"),
    # quotes
    ("/api/quotes", {"lines": [LINE]}, "customer_id"),
    ("/api/quotes", {"customer_id": "{customer}"}, "lines"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": []}, "lines"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": [{"sku": "BI-1", "quantity": 0}]},
     "lines[0].quantity"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": [{"sku": "BI-1", "quantity": -2}]},
     "lines[0].quantity"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": [{"sku": "BI-1", "quantity": "one"}]},
     "lines[0].quantity"),
    ("/api/quotes", {"customer_id": "{customer}",
                     "lines": [{**LINE, "unit_price": TEN_DECIMALS}]}, "lines[0].unit_price"),
    ("/api/quotes", {"customer_id": "{customer}",
                     "lines": [{**LINE, "unit_price": "-100.00"}]}, "lines[0].unit_price"),
    ("/api/quotes", {"customer_id": "{customer}",
                     "lines": [{**LINE, "discount_percent": "101"}]}, "lines[0].discount_percent"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": [LINE], "currency": "DOGE"},
     "currency"),
    ("/api/quotes", {"customer_id": "{customer}", "lines": [LINE], "valid_until": "soon"},
     "valid_until"),
    ("/api/quotes/{quote}/reject", {"reason": LONG}, "reason"),
    # orders
    ("/api/orders", {"quote_id": "TKL2026000000001"}, "quote_id"),
    ("/api/orders", {"customer_id": "{customer}", "lines": [{"sku": "BI-1", "quantity": 0}]},
     "lines[0].quantity"),
    ("/api/orders", {"customer_id": "{customer}",
                     "lines": [{"sku": "BI-1", "quantity": "1e3000"}]}, "lines[0].quantity"),
    ("/api/orders", {"customer_id": "{customer}", "lines": [LINE],
                     "payment_terms_days": "net 30"}, "payment_terms_days"),
    # invoices
    ("/api/invoices", {}, "order_id"),
    ("/api/invoices", {"order_id": 42}, "order_id"),
    ("/api/invoices", {"order_id": "{order}", "series": "sat"}, "series"),
    ("/api/invoices", {"order_id": "{order}", "date": "31.12.2026"}, "date"),
    # payments
    ("/api/payments", {**PAID, "amount": "0.00"}, "amount"),
    ("/api/payments", {**PAID, "amount": "-100.00"}, "amount"),
    ("/api/payments", {**PAID, "amount": TEN_DECIMALS}, "amount"),
    ("/api/payments", {**PAID, "amount": "a lot"}, "amount"),
    ("/api/payments", {"customer_id": "{customer}", "amount": "10.00"}, "method"),
    ("/api/payments", {**PAID, "amount": "10.00", "method": "cheque"}, "method"),
    ("/api/payments", {**PAID, "amount": "10.00", "date": "2026-13-01"}, "date"),
    ("/api/payments", {**PAID, "amount": "10.00", "reference": LONG}, "reference"),
    ("/api/payments", {"method": "bank", "amount": "10.00"}, "customer_id"),
    # journal entries
    ("/api/journal-entries", {**ENTRY, "lines": []}, "lines"),
    ("/api/journal-entries", {"description": "Rent", "lines": []}, "date"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "770", "debit": "500.00"},
                                                 {"account": "102", "credit": "499.99"}]},
     "lines"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "770", "debit": TEN_DECIMALS},
                                                 {"account": "102", "credit": TEN_DECIMALS}]},
     "lines[0].debit"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "770", "debit": "-5.00"},
                                                 {"account": "102", "credit": "-5.00"}]},
     "lines[0].debit"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "770", "debit": "0.00"},
                                                 {"account": "102", "credit": "0.00"}]},
     "lines"),
    ("/api/journal-entries", {**ENTRY, "lines": [{"account": "'; DROP TABLE x;--",
                                                  "debit": "5.00"},
                                                 {"account": "102", "credit": "5.00"}]},
     "lines[0].account"),
    ("/api/journal-entries", {**ENTRY, "description": LONG,
                              "lines": [{"account": "770", "debit": "5.00"},
                                        {"account": "102", "credit": "5.00"}]}, "description"),
]  # fmt: skip


def case_id(case: tuple[str, Any, str]) -> str:
    endpoint, body, field = case
    shown = repr(body)
    return f"{endpoint} {field} {shown[:60]}"


@pytest.mark.parametrize(("endpoint", "body", "field"), CASES, ids=[case_id(c) for c in CASES])
def test_bad_input_is_rejected_naming_the_field_and_records_nothing(
    shared_api: Api, books: dict[str, str], endpoint: str, body: Any, field: str
) -> None:
    before = event_count(shared_api.services)

    if isinstance(body, bytes):
        response = shared_api.post_raw(fill(endpoint, books), body)
    else:
        response = shared_api.post(fill(endpoint, books), fill(body, books))

    assert_rejected(shared_api, response, field, before)


# -- Turkish text ----------------------------------------------------------------------------


def test_turkish_names_are_accepted_and_come_back_exactly(shared_api: Api) -> None:
    api = shared_api
    person = "Işıl Çağlayan Öğüt"
    company = "İğneci Şükrü Ltd. Şti."
    lead = api.ok("post", "/api/leads", {"name": person, "company": company,
                                          "email": "isil@igneci.com.tr"})  # fmt: skip
    customer = api.ok(
        "post",
        "/api/customers",
        {
            "name": "IŞIK İNŞAAT ĞÜÇ A.Ş.",
            "tax_office": "Kadıköy",
            "addresses": [{"line1": "Bağdat Cad. No:1", "district": "Göztepe", "city": "İstanbul"}],
            "contacts": [{"name": "Ayşegül Işıkçı", "role": "Satın alma müdürü"}],
        },
    )
    sku = f"ÇİĞ-{uuid.uuid4().hex[:4]}"
    product = api.ok("post", "/api/products", {"sku": sku, "name": "Çelik ütü iğnesi (ıslak)"})

    got_lead = api.ok("get", f"/api/leads/{lead['id']}")
    got_customer = api.ok("get", f"/api/customers/{customer['id']}")
    got_product = api.ok("get", f"/api/products/{product['id']}")

    assert (got_lead["name"], got_lead["company"]) == (person, company)
    assert got_customer["name"] == "IŞIK İNŞAAT ĞÜÇ A.Ş."
    assert got_customer["tax_office"] == "Kadıköy"
    assert got_customer["addresses"][0]["city"] == "İstanbul"
    assert got_customer["addresses"][0]["district"] == "Göztepe"
    assert got_customer["contacts"][0]["name"] == "Ayşegül Işıkçı"
    assert got_product["name"] == "Çelik ütü iğnesi (ıslak)"
    assert got_product["sku"].casefold() == sku.casefold()
    found = api.ok("get", "/api/customers", params={"q": "IŞIK İNŞAAT"})
    assert [c["id"] for c in found["items"]] == [customer["id"]]


# -- text that looks like SQL ----------------------------------------------------------------

SQLISH = [
    "Robert'); DROP TABLE stored_events;--",
    "x' OR '1'='1",
    '"; DELETE FROM api_keys; --',
    "1; UPDATE leads SET status='won'",
]


@pytest.mark.parametrize("text", SQLISH)
def test_text_that_looks_like_sql_is_stored_as_text_and_harms_nothing(
    shared_api: Api, text: str
) -> None:
    api = shared_api
    before = event_count(api.services)

    lead = api.ok("post", "/api/leads", {"name": text, "company": text, "source": "web"})
    customer = api.ok("post", "/api/customers", {"name": text, "tax_office": text})

    assert api.ok("get", f"/api/leads/{lead['id']}")["name"] == text
    assert api.ok("get", f"/api/customers/{customer['id']}")["name"] == text
    assert event_count(api.services) > before
    search = api.ok("get", "/api/customers", params={"q": text})
    assert customer["id"] in [c["id"] for c in search["items"]]
    assert all(c["name"] == text for c in search["items"])
    none = api.ok("get", "/api/customers", params={"q": "' OR '1'='1' --"})
    assert none["total"] == 0
    assert api.get("/api/leads").json()["total"] >= 1
    assert api.services.keys.authenticate(api.key) is not None


def test_sql_looking_query_parameters_are_answered_not_run(shared_api: Api) -> None:
    for params in (
        {"status": "new' OR '1'='1"},
        {"email": "a@b.co' --"},
        {"limit": "1; DROP TABLE leads"},
        {"offset": "0 OR 1=1"},
    ):
        response = shared_api.get("/api/leads", params=params)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert response.json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/customers", {"q": "Kaya\x00"}, "q"),
        ("/api/leads", {"status": "\x00"}, "status"),
        ("/api/audit/history/W-1%00", {}, "path"),
    ],
)
def test_a_nul_character_in_the_url_is_invalid_input_not_a_database_error(
    shared_api: Api, path: str, params: dict[str, str], field: str
) -> None:
    response = shared_api.get(path, params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_the_read_models_keep_up_after_all_that_bad_input(
    shared_api: Api, books: dict[str, str]
) -> None:
    lead = shared_api.ok("post", "/api/leads", {"name": "Son Kayıt"})

    got = shared_api.ok(
        "get", f"/api/leads/{lead['id']}", params={"min_position": lead["position"]}
    )

    assert got["name"] == "Son Kayıt"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/payments", {"offset": str(2**63)}, "offset"),
        ("/api/reports/general-ledger", {"account": "100", "offset": str(2**63)}, "offset"),
        ("/api/audit/trail", {"offset": str(2**63)}, "offset"),
        ("/api/audit/trail", {"from": "0001-01-01T00:00:00+00:01"}, "from"),
        ("/api/audit/trail", {"to": "9999-12-31T23:59:59-00:01"}, "to"),
        ("/api/leads", {"min_position": str(10**12)}, "min_position"),
    ],
)
def test_query_values_past_what_the_database_holds_are_invalid_input(
    shared_api: Api, path: str, params: dict[str, str], field: str
) -> None:
    response = shared_api.get(path, params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("path", "params", "rows"),
    [
        ("/api/payments", {}, "items"),
        ("/api/reports/general-ledger", {"account": "100"}, "lines"),
        ("/api/audit/trail", {}, "events"),
        ("/api/reports/profitability", {"by": "order"}, "rows"),
        ("/api/reports/receivables-aging", {}, "customers"),
    ],
)
def test_the_largest_offset_allowed_answers_an_empty_page(
    shared_api: Api, path: str, params: dict[str, str], rows: str
) -> None:
    """An offset within what the API takes is a page past the end, on both databases (not
    a number too big for the database's integer)."""
    answer = shared_api.ok("get", path, params={**params, "offset": str(2**63 - 1)})

    assert answer[rows] == []


# -- the size of a body ----------------------------------------------------------------------


def big_lead(size: int) -> bytes:
    padding = size - len(b'{"name": "Ali", "company": ""}')
    return b'{"name": "Ali", "company": "' + b"x" * padding + b'"}'


def test_a_body_over_the_limit_is_refused_with_413_and_records_nothing(shared_api: Api) -> None:
    before = event_count(shared_api.services)

    response = shared_api.post_raw("/api/leads", big_lead(DEFAULT_MAX_BODY_BYTES + 1))

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "https://tekil.dev/problems/content-too-large"
    assert problem["detail"] == (
        f"the request body is larger than the limit of {DEFAULT_MAX_BODY_BYTES} bytes"
    )
    assert event_count(shared_api.services) == before


@pytest.fixture(scope="module")
def small_limit(shared_api: Api) -> Iterator[Api]:
    app = create_app(shared_api.services, run_projections=False, max_body_bytes=200)
    with TestClient(app) as client:
        yield Api(client, shared_api.services, shared_api.key)


def test_a_body_at_the_limit_goes_through(small_limit: Api) -> None:
    response = small_limit.post_raw("/api/leads", big_lead(200))

    assert response.status_code == 201, response.text


def test_the_bytes_received_count_whatever_content_length_says(small_limit: Api) -> None:
    before = event_count(small_limit.services)
    body = big_lead(201)

    understated = small_limit.post_raw("/api/leads", body, headers={"Content-Length": "20"})
    chunked = small_limit.client.post(
        "/api/leads",
        content=iter([body[:100], body[100:]]),
        headers=small_limit.headers({"Content-Type": "application/json"}),
    )
    declared = small_limit.post_raw("/api/leads", body)

    for response in (understated, chunked, declared):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == PROBLEM
    assert "Content-Length" not in chunked.request.headers
    assert event_count(small_limit.services) == before


def test_the_limit_comes_from_the_environment(
    shared_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKIL_MAX_BODY_BYTES", "100")
    app = create_app(shared_api.services, run_projections=False)
    with TestClient(app) as client:
        response = client.post("/api/leads", content=big_lead(101), headers=shared_api.headers())

    assert response.status_code == 413
