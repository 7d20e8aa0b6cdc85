"""Who may do what: every route of the app against every role, from one explicit table; and
the API keys themselves (missing, made up, revoked, stored hashed, the only source of the
actor). A route added without an entry here fails the first test below."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from api import keys
from api.keys import ROLES, KeyStore, api_keys
from tests.conftest import Api, event_count, open_services, serve

PROBLEM = "application/problem+json"


def allow(*roles: str) -> frozenset[str]:
    return frozenset({"admin", *roles})


PUBLIC = None  # answered without a key

# Who reads what. Managers and auditors read everything a business decision or an audit
# needs, and write nothing; hr has no business in sales, stock or the books.
OVERSIGHT = ("manager", "auditor")
CRM_READERS = allow("sales", "finance", *OVERSIGHT)
CUSTOMER_READERS = allow("sales", "finance", "warehouse", *OVERSIGHT)
STOCK_READERS = allow("sales", "finance", "warehouse", "purchasing", *OVERSIGHT)
INVOICE_READERS = allow("sales", "finance", *OVERSIGHT)
BOOK_READERS = allow("finance", *OVERSIGHT)

# Who writes what: sales sells, the warehouse moves goods, purchasing keeps the catalogue and
# receives, finance bills, collects and posts. Nobody ships what they sold, nor bills it.
SALES = allow("sales")
CATALOGUE = allow("warehouse", "purchasing")

EXPECTED: dict[str, frozenset[str] | None] = {
    "GET /health": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    # CRM
    "POST /api/leads": SALES,
    "POST /api/leads/{lead_id}/qualify": SALES,
    "POST /api/leads/{lead_id}/disqualify": SALES,
    "POST /api/leads/{lead_id}/convert": SALES,
    "GET /api/leads": CRM_READERS,
    "GET /api/leads/{lead_id}": CRM_READERS,
    "POST /api/customers": allow("sales", "finance"),
    "GET /api/customers": CUSTOMER_READERS,
    "GET /api/customers/{customer_id}": CUSTOMER_READERS,
    "POST /api/opportunities": SALES,
    "POST /api/opportunities/{opportunity_id}/stage": SALES,
    "POST /api/opportunities/{opportunity_id}/win": SALES,
    "POST /api/opportunities/{opportunity_id}/lose": SALES,
    "GET /api/opportunities": CRM_READERS,
    "GET /api/opportunities/{opportunity_id}": CRM_READERS,
    "POST /api/activities": allow("sales", "finance"),  # finance logs its collection calls
    "POST /api/activities/{activity_id}/complete": allow("sales", "finance"),
    "GET /api/activities": CRM_READERS,
    "GET /api/activities/{activity_id}": CRM_READERS,
    "GET /api/reports/pipeline": CRM_READERS,
    "GET /api/reports/lead-funnel": CRM_READERS,
    # Catalogue and stock
    "POST /api/products": CATALOGUE,
    "GET /api/products": STOCK_READERS,
    "GET /api/products/{product_id}": STOCK_READERS,
    "POST /api/warehouses": CATALOGUE,
    "GET /api/warehouses": STOCK_READERS,
    "POST /api/stock/receipts": CATALOGUE,
    "GET /api/stock/receipts": STOCK_READERS,
    "GET /api/stock/receipts/{receipt_id}": STOCK_READERS,
    "GET /api/stock/movements": STOCK_READERS,
    "GET /api/reports/stock": STOCK_READERS,
    # Selling
    "POST /api/quotes": SALES,
    "POST /api/quotes/{quote_id}/send": SALES,
    "POST /api/quotes/{quote_id}/accept": SALES,
    "POST /api/quotes/{quote_id}/reject": SALES,
    "POST /api/quotes/{quote_id}/revise": SALES,
    "GET /api/quotes": STOCK_READERS,
    "GET /api/quotes/{quote_id}": STOCK_READERS,
    "POST /api/orders": SALES,
    "POST /api/orders/{order_id}/confirm": SALES,
    "POST /api/orders/{order_id}/cancel": SALES,
    "GET /api/orders": STOCK_READERS,
    "GET /api/orders/{order_id}": STOCK_READERS,
    "POST /api/shipments": allow("warehouse"),
    "GET /api/shipments": STOCK_READERS,
    "GET /api/shipments/{shipment_id}": STOCK_READERS,
    # Billing and the books
    "POST /api/invoices": allow("finance"),
    "GET /api/invoices": INVOICE_READERS,
    "GET /api/invoices/{invoice_id}": INVOICE_READERS,
    "POST /api/payments": allow("finance"),
    "GET /api/payments": BOOK_READERS,
    "GET /api/payments/{payment_id}": BOOK_READERS,
    "POST /api/journal-entries": allow("finance"),
    "GET /api/journal-entries": BOOK_READERS,
    "GET /api/reports/trial-balance": BOOK_READERS,
    "GET /api/reports/income-statement": BOOK_READERS,
    "GET /api/reports/balance-sheet": BOOK_READERS,
    "GET /api/reports/general-ledger": BOOK_READERS,
    "GET /api/reports/cash-flow": BOOK_READERS,
    "GET /api/reports/profitability": allow("finance", "sales", *OVERSIGHT),
    "GET /api/reports/receivables-aging": BOOK_READERS,
    "GET /api/reports/reconciliation": BOOK_READERS,
    "GET /api/customers/{customer_id}/statement": BOOK_READERS,
    # Audit
    "GET /api/audit/history/{key}": allow(*OVERSIGHT),
    "GET /api/audit/trail": allow(*OVERSIGHT),
}

UNKNOWN = "00000000-0000-4000-8000-00000000beef"


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path_factory.mktemp('authz') / 'tekil.db'}"
    with open_services(url) as services, serve(services) as api:
        yield api


@pytest.fixture(scope="module")
def role_keys(sqlite_api: Api) -> dict[str, Api]:
    return {role: sqlite_api.as_role(role, name=f"only-{role}") for role in ROLES}


def app_routes(api: Api) -> set[str]:
    return {
        f"{method} {route.path}"
        for route in iter_route_contexts(api.client.app.routes)  # type: ignore[attr-defined]
        for method in route.methods or ()
        if method != "HEAD"
    }


def request(api: Api, route: str, key: str | None) -> Any:
    method, template = route.split(" ", 1)
    path = re.sub(r"\{key\}", "W-1", re.sub(r"\{\w+_id\}", UNKNOWN, template))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if method == "POST":
        # An empty body: a role that may act gets 404 or 422 for it, never 401 or 403.
        return api.client.post(path, json={}, headers=headers)
    return api.client.get(path, headers=headers)


def test_every_route_has_an_explicit_entry_in_the_table(sqlite_api: Api) -> None:
    routes = app_routes(sqlite_api)

    assert sorted(routes - EXPECTED.keys()) == [], "routes without an explicit permission"
    assert sorted(EXPECTED.keys() - routes) == [], "entries for routes that do not exist"


def test_every_role_is_named_in_the_table_or_deliberately_left_out() -> None:
    named = set().union(*(roles for roles in EXPECTED.values() if roles))
    assert set(ROLES) - named == {"hr"}


@pytest.mark.parametrize("route", list(EXPECTED))
def test_each_role_is_let_through_or_refused_as_the_table_says(
    sqlite_api: Api, role_keys: dict[str, Api], route: str
) -> None:
    expected = EXPECTED[route]
    before = event_count(sqlite_api.services)

    answers = {role: request(sqlite_api, route, caller.key) for role, caller in role_keys.items()}
    anonymous = request(sqlite_api, route, None)

    assert all(r.status_code < 500 for r in answers.values()), {
        role: r.text for role, r in answers.items() if r.status_code >= 500
    }
    if expected is PUBLIC:
        assert anonymous.status_code == 200
        assert {r.status_code for r in answers.values()} == {200}
        return
    let_through = {role for role, r in answers.items() if r.status_code not in (401, 403)}
    assert let_through == expected
    for role in set(ROLES) - expected:
        assert answers[role].status_code == 403
        assert answers[role].headers["content-type"] == PROBLEM
        assert answers[role].json()["detail"].endswith(f"key 'only-{role}' has {role}")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM
    assert event_count(sqlite_api.services) == before


# -- the keys, on SQLite and PostgreSQL ------------------------------------------------------


def test_health_answers_without_a_key(shared_api: Api) -> None:
    response = shared_api.client.get("/health")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"X-API-Key": ""},
        {"Authorization": "Bearer tk_made-up"},
        {"X-API-Key": "tk_made-up"},
    ],
    ids=["none", "empty bearer", "basic auth", "empty x-api-key", "made-up bearer",
         "made-up x-api-key"],
)  # fmt: skip
def test_a_request_without_a_known_key_is_unauthorized_and_records_nothing(
    shared_api: Api, headers: dict[str, str]
) -> None:
    before = event_count(shared_api.services)

    write = shared_api.client.post("/api/leads", json={"name": "Ali"}, headers=headers)
    read = shared_api.client.get("/api/leads", headers=headers)

    for response in (write, read):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
    assert event_count(shared_api.services) == before


def test_a_revoked_key_is_unauthorized_and_a_new_key_of_that_name_works(shared_api: Api) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    leaver = shared_api.as_role("sales", name=name)
    assert leaver.post("/api/leads", {"name": "Ali"}).status_code == 201

    assert shared_api.services.keys.revoke(name)
    before = event_count(shared_api.services)

    assert leaver.post("/api/leads", {"name": "Veli"}).status_code == 401
    assert leaver.get("/api/leads").status_code == 401
    assert event_count(shared_api.services) == before
    rejoined = shared_api.as_role("sales", name=name)
    assert rejoined.post("/api/leads", {"name": "Veli"}).status_code == 201
    assert leaver.get("/api/leads").status_code == 401


def test_a_key_revoked_by_another_process_stops_working_within_seconds(
    shared_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API trusts a key it found valid for a moment; `tekil keys revoke` elsewhere (here:
    # another KeyStore on the same table) is seen once that moment has passed.
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    leaver = shared_api.as_role("sales", name=name)
    assert leaver.get("/api/leads").status_code == 200
    elsewhere = KeyStore(shared_api.services.keys.engine)
    now = time.monotonic()
    monkeypatch.setattr(keys.time, "monotonic", lambda: now)

    assert elsewhere.revoke(name)
    assert leaver.get("/api/leads").status_code == 200  # still trusted, for a moment

    monkeypatch.setattr(keys.time, "monotonic", lambda: now + keys.CHECK_AGAIN_AFTER + 0.01)
    assert leaver.get("/api/leads").status_code == 401
    assert leaver.post("/api/leads", {"name": "Ali"}).status_code == 401


def test_keys_are_stored_hashed_never_as_given(shared_api: Api) -> None:
    name = f"hashed-{uuid.uuid4().hex[:6]}"
    key = shared_api.as_role("finance", name=name).key

    with shared_api.services.keys.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(api_keys)).all()]
        [row] = conn.execute(select(api_keys).where(api_keys.c.name == name)).all()

    assert key not in repr(rows)
    assert key[3:] not in repr(rows)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.roles == "finance"


def test_a_key_table_dump_holds_no_key(shared_api: Api, tmp_path: Path) -> None:
    # The database file itself, on SQLite: no page of it has the key in plain text.
    services = shared_api.services
    if services.settings.backend != "sqlite":
        pytest.skip("a file to read exists on SQLite only")
    key = shared_api.as_role("hr", name=f"file-{uuid.uuid4().hex[:6]}").key
    database = Path(services.settings.database_url.split(":///", 1)[1])

    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))

    assert key.encode() not in stored
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored


def test_the_actor_is_the_key_s_name_whatever_the_client_claims(shared_api: Api) -> None:
    name = f"mehmet-{uuid.uuid4().hex[:6]}"
    clerk = shared_api.as_role("sales", name=name)
    before = event_count(shared_api.services)

    in_body = clerk.post("/api/leads", {"name": "Ali", "actor": "ceo"})

    assert in_body.status_code == 422
    assert [e["field"] for e in in_body.json()["errors"]] == ["actor"]
    assert event_count(shared_api.services) == before

    claimed = {"X-Actor": "ceo", "Actor": "ceo", "X-User": "ceo", "X-Forwarded-User": "ceo"}
    lead = clerk.ok("post", "/api/leads", {"name": "Ali"}, headers=claimed)

    [captured] = shared_api.services.business.events.get(uuid.UUID(lead["id"]))
    assert captured.meta["actor"] == name  # type: ignore[attr-defined]
    auditor = shared_api.as_role("auditor")
    auditor.last_position = clerk.last_position
    trail = auditor.ok("get", "/api/audit/trail", params={"actor": name})["events"]
    assert [(e["event"], e["actor"]) for e in trail] == [("Lead.Captured", name)]
    assert auditor.ok("get", "/api/audit/trail", params={"actor": "ceo"})["events"] == []
