"""Mistakes over HTTP, on SQLite and PostgreSQL: each gets an application/problem+json answer
that says what was wrong (naming the offending field where there is one), and records nothing.
Retries with an Idempotency-Key are safe, and If-Match protects against lost updates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Api, event_count

PROBLEM = "application/problem+json"
UNKNOWN = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture(scope="module")
def crm(shared_api: Api) -> dict[str, str]:
    """Records to aim at: a new lead, a customer, an open opportunity, an open task."""
    api = shared_api
    lead = api.ok("post", "/api/leads", {"name": "Ali Veli", "email": "ali@velidokum.com"})
    customer = api.ok(
        "post", "/api/customers", {"name": "Anadolu Yapı", "tax_number": "9876543217"}
    )
    opportunity = api.ok(
        "post",
        "/api/opportunities",
        {"customer_id": customer["id"], "title": "Store fit-out", "amount": "910000.00"},
    )
    task = api.ok(
        "post",
        "/api/activities",
        {"kind": "task", "subject": "Call", "regarding": "lead", "regarding_id": lead["id"]},
    )
    return {
        "lead": lead["id"],
        "customer": customer["id"],
        "opportunity": opportunity["id"],
        "activity": task["id"],
    }


def assert_problem(response: Any, status: int, kind: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == f"https://tekil.dev/problems/{kind}"
    assert problem["title"] == title
    assert problem["status"] == status
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return dict(problem)


# -- 422: invalid input, at every command endpoint -------------------------------------------

# (endpoint, body, the field named in the answer). A body of bytes is sent as it is.
INVALID: list[tuple[str, Any, str]] = [
    ("/api/leads", {"company": "Veli Döküm"}, "name"),
    ("/api/leads", {"name": ""}, "name"),
    ("/api/leads", {"name": "   "}, "name"),
    ("/api/leads", {"name": 42}, "name"),
    ("/api/leads", {"name": "Ali", "email": "ali-at-velidokum.com"}, "email"),
    ("/api/leads", {"name": "Ali", "mail": "ali@velidokum.com"}, "mail"),
    ("/api/leads", b'{"name": "Ali",', "body"),
    ("/api/leads", [{"name": "Ali"}], "body"),
    ("/api/leads/{lead}/qualify", {"reason": "hot"}, "reason"),
    ("/api/leads/{lead}/qualify", b"{", "body"),
    ("/api/leads/not-a-lead-id/qualify", None, "lead_id"),
    ("/api/leads/{lead}/disqualify", {}, "reason"),
    ("/api/leads/{lead}/disqualify", {"reason": " "}, "reason"),
    ("/api/leads/{lead}/disqualify", {"reason": ["no", "budget"]}, "reason"),
    ("/api/leads/{lead}/disqualify", {"reason": "no budget", "by": "mehmet"}, "by"),
    ("/api/leads/{lead}/disqualify", b"reason=no budget", "body"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": "-1.00"}}, "opportunity.amount"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": "lots"}}, "opportunity.amount"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": "10.005"}}, "opportunity.amount"),
    ("/api/leads/{lead}/convert", {"opportunity": {"amount": "1e400"}}, "opportunity.amount"),
    # Known bug (domain/crm/service.py, convert_lead): the currency is first checked for the new
    # customer under the name "currency", so the answer names a field the body does not have.
    ("/api/leads/{lead}/convert", {"opportunity": {"currency": "EURO"}}, "opportunity.currency"),
    ("/api/leads/{lead}/convert", {"opportunity": {"colour": "red"}}, "opportunity.colour"),
    (
        "/api/leads/{lead}/convert",
        {"opportunity": {"expected_close": "next week"}},
        "opportunity.expected_close",
    ),
    ("/api/leads/{lead}/convert", {"tax_number": "1234567891"}, "tax_number"),
    ("/api/leads/{lead}/convert", {"payment_terms_days": -1}, "payment_terms_days"),
    ("/api/leads/{lead}/convert", {"credit_limit": "-500"}, "credit_limit"),
    ("/api/leads/{lead}/convert", {"customer_id": "Anadolu"}, "customer_id"),
    ("/api/leads/{lead}/convert", {"create_opportunity": "perhaps"}, "create_opportunity"),
    ("/api/leads/{lead}/convert", {"opportunity_title": "Moulds"}, "opportunity_title"),
    ("/api/leads/{lead}/convert", b'{"opportunity": }', "body"),
    ("/api/customers", {"tax_number": "9876543217"}, "name"),
    ("/api/customers", {"name": ""}, "name"),
    ("/api/customers", {"name": "Kaya", "email": "kaya@"}, "email"),
    ("/api/customers", {"name": "Kaya", "currency": "TL"}, "currency"),
    ("/api/customers", {"name": "Kaya", "credit_limit": "-0.01"}, "credit_limit"),
    ("/api/customers", {"name": "Kaya", "credit_limit": "1e17"}, "credit_limit"),
    ("/api/customers", {"name": "Kaya", "payment_terms_days": 3651}, "payment_terms_days"),
    ("/api/customers", {"name": "Kaya", "payment_terms_days": "thirty"}, "payment_terms_days"),
    ("/api/customers", {"name": "Kaya", "tax_number": "12345"}, "tax_number"),
    ("/api/customers", {"name": "Kaya", "addresses": [{"line1": "Cad. 1"}]}, "addresses[0].city"),
    (
        "/api/customers",
        {"name": "Kaya", "contacts": [{"name": "Elif", "email": "elif"}]},
        "contacts[0].email",
    ),
    ("/api/customers", {"name": "Kaya", "vat_id": "TR123"}, "vat_id"),
    ("/api/customers", b"\xff\xfe", "body"),
    ("/api/opportunities", {"title": "Deal", "amount": "1.00"}, "customer_id"),
    ("/api/opportunities", {"customer_id": "42", "title": "Deal", "amount": "1"}, "customer_id"),
    ("/api/opportunities", {"customer_id": "{customer}", "title": "", "amount": "1"}, "title"),
    ("/api/opportunities", {"customer_id": "{customer}", "title": "Deal"}, "amount"),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "-5.00"},
        "amount",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": True},
        "amount",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "100000000000000000"},
        "amount",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "1", "currency": "eur"},
        "currency",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "1", "probability": "101"},
        "probability",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "1", "probability": "33.33333"},
        "probability",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "1", "stage": "won"},
        "stage",
    ),
    (
        "/api/opportunities",
        {"customer_id": "{customer}", "title": "Deal", "amount": "1", "size": "XL"},
        "size",
    ),
    ("/api/opportunities", b"", "body"),
    ("/api/opportunities/{opportunity}/stage", {}, "stage"),
    ("/api/opportunities/{opportunity}/stage", {"stage": "won"}, "stage"),
    ("/api/opportunities/{opportunity}/stage", {"stage": "closing"}, "stage"),
    ("/api/opportunities/{opportunity}/stage", {"stage": 3}, "stage"),
    (
        "/api/opportunities/{opportunity}/stage",
        {"stage": "proposal", "probability": "150"},
        "probability",
    ),
    (
        "/api/opportunities/{opportunity}/stage",
        {"stage": "proposal", "probability": "-1"},
        "probability",
    ),
    ("/api/opportunities/{opportunity}/stage", {"stage": "proposal", "owner": "x"}, "owner"),
    ("/api/opportunities/{opportunity}/stage", b"proposal", "body"),
    ("/api/opportunities/{opportunity}/win", {"amount": "1.00"}, "amount"),
    ("/api/opportunities/{opportunity}/win", b"{]", "body"),
    ("/api/opportunities/not-an-id/win", None, "opportunity_id"),
    ("/api/opportunities/{opportunity}/lose", {}, "reason"),
    ("/api/opportunities/{opportunity}/lose", {"reason": ""}, "reason"),
    ("/api/opportunities/{opportunity}/lose", {"reason": "price", "to": "rival"}, "to"),
    ("/api/opportunities/{opportunity}/lose", b'{"reason": "price"', "body"),
    (
        "/api/activities",
        {"kind": "fax", "subject": "S", "regarding": "lead", "regarding_id": "{lead}"},
        "kind",
    ),
    (
        "/api/activities",
        {"kind": "call", "subject": "S", "regarding": "invoice", "regarding_id": "{lead}"},
        "regarding",
    ),
    (
        "/api/activities",
        {"kind": "call", "subject": "S", "regarding": "lead", "regarding_id": "Ali"},
        "regarding_id",
    ),
    (
        "/api/activities",
        {"kind": "call", "subject": " ", "regarding": "lead", "regarding_id": "{lead}"},
        "subject",
    ),
    ("/api/activities", {"kind": "call", "regarding": "lead", "regarding_id": "{lead}"}, "subject"),
    (
        "/api/activities",
        {
            "kind": "task",
            "subject": "S",
            "regarding": "lead",
            "regarding_id": "{lead}",
            "due": "soon",
        },
        "due",
    ),
    (
        "/api/activities",
        {
            "kind": "call",
            "subject": "S",
            "regarding": "lead",
            "regarding_id": "{lead}",
            "done": "?",
        },
        "done",
    ),
    (
        "/api/activities",
        {"kind": "call", "subject": "S", "regarding": "lead", "regarding_id": "{lead}", "x": 1},
        "x",
    ),
    ("/api/activities", b"kind=call", "body"),
    ("/api/activities/{activity}/complete", {"done": True}, "done"),
    ("/api/activities/{activity}/complete", b"{", "body"),
    ("/api/activities/not-an-id/complete", None, "activity_id"),
]


def fill(template: Any, crm: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**crm) if "{" in template else template
    if isinstance(template, dict):
        return {k: fill(v, crm) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, crm) for v in template]
    return template


def case_id(case: tuple[str, Any, str]) -> str:
    endpoint, body, field = case
    what = "raw" if isinstance(body, bytes) else "json"
    return f"{endpoint.removeprefix('/api/')} {what} {field}"


@pytest.mark.parametrize("case", INVALID, ids=[case_id(c) for c in INVALID])
def test_an_invalid_command_is_rejected_naming_the_offending_field_and_records_nothing(
    shared_api: Api, crm: dict[str, str], case: tuple[str, Any, str]
) -> None:
    endpoint, body, field = case
    path = fill(endpoint, crm)
    before = event_count(shared_api.services)

    if isinstance(body, bytes):
        response = shared_api.post_raw(path, body)
    else:
        response = shared_api.post(path, fill(body, crm))

    problem = assert_problem(response, 422, "invalid-input", "Invalid input")
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert all(e["message"] for e in problem["errors"])
    assert field in problem["detail"]
    assert problem["instance"] == path
    assert event_count(shared_api.services) == before


def test_an_unreadable_if_match_is_invalid_input_in_the_header(
    shared_api: Api, crm: dict[str, str]
) -> None:
    before = event_count(shared_api.services)

    response = shared_api.post(f"/api/leads/{crm['lead']}/qualify", headers={"If-Match": "v2"})

    problem = assert_problem(response, 422, "invalid-input", "Invalid input")
    assert [e["field"] for e in problem["errors"]] == ["If-Match"]
    assert event_count(shared_api.services) == before


# -- 404: unknown ids ------------------------------------------------------------------------

ACTIONS = [
    ("/api/leads/{id}/qualify", None, "lead"),
    ("/api/leads/{id}/disqualify", {"reason": "no budget"}, "lead"),
    ("/api/leads/{id}/convert", {}, "lead"),
    ("/api/opportunities/{id}/stage", {"stage": "proposal"}, "opportunity"),
    ("/api/opportunities/{id}/win", None, "opportunity"),
    ("/api/opportunities/{id}/lose", {"reason": "price"}, "opportunity"),
    ("/api/activities/{id}/complete", None, "activity"),
]


@pytest.mark.parametrize(("endpoint", "body", "kind"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_an_action_on_an_unknown_id_is_not_found_and_records_nothing(
    shared_api: Api, endpoint: str, body: Any, kind: str
) -> None:
    before = event_count(shared_api.services)

    response = shared_api.post(endpoint.format(id=UNKNOWN), body)

    problem = assert_problem(response, 404, "not-found", "Not found")
    assert problem["detail"] == f"{kind} {UNKNOWN} does not exist"
    assert event_count(shared_api.services) == before


@pytest.mark.parametrize(("endpoint", "body", "kind"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_an_action_on_the_id_of_another_kind_of_record_is_not_found(
    shared_api: Api, crm: dict[str, str], endpoint: str, body: Any, kind: str
) -> None:
    other = crm["customer"]
    before = event_count(shared_api.services)

    response = shared_api.post(endpoint.format(id=other), body)

    problem = assert_problem(response, 404, "not-found", "Not found")
    assert problem["detail"] == f"{kind} {other} does not exist"
    assert event_count(shared_api.services) == before


@pytest.mark.parametrize(
    ("endpoint", "body", "detail"),
    [
        (
            "/api/opportunities",
            {"customer_id": UNKNOWN, "title": "Deal", "amount": "1.00"},
            f"customer {UNKNOWN} does not exist",
        ),
        (
            "/api/activities",
            {"kind": "call", "subject": "S", "regarding": "opportunity", "regarding_id": UNKNOWN},
            f"opportunity {UNKNOWN} does not exist",
        ),
        (
            "/api/leads/{lead}/convert",
            {"customer_id": UNKNOWN},
            f"customer {UNKNOWN} does not exist",
        ),
    ],
    ids=["opportunity for an unknown customer", "activity about an unknown opportunity",
         "conversion into an unknown customer"],
)  # fmt: skip
def test_a_command_referring_to_an_unknown_record_is_not_found(
    shared_api: Api, crm: dict[str, str], endpoint: str, body: Any, detail: str
) -> None:
    before = event_count(shared_api.services)

    response = shared_api.post(endpoint.format(**crm), body)

    problem = assert_problem(response, 404, "not-found", "Not found")
    assert problem["detail"] == detail
    assert event_count(shared_api.services) == before


PLURAL = {
    "lead": "leads",
    "customer": "customers",
    "opportunity": "opportunities",
    "activity": "activities",
}


@pytest.mark.parametrize("kind", list(PLURAL))
def test_reading_an_unknown_id_is_not_found(shared_api: Api, kind: str) -> None:
    response = shared_api.get(f"/api/{PLURAL[kind]}/{UNKNOWN}")

    problem = assert_problem(response, 404, "not-found", "Not found")
    assert problem["detail"] == f"{kind} {UNKNOWN} does not exist"


@pytest.mark.parametrize("kind", list(PLURAL))
def test_reading_a_known_id_answers_the_record(
    shared_api: Api, crm: dict[str, str], kind: str
) -> None:
    record = shared_api.ok("get", f"/api/{PLURAL[kind]}/{crm[kind]}")

    assert record["id"] == crm[kind]
    assert record["version"] == 1


# -- 409: business rules and conflicts -------------------------------------------------------


def test_winning_a_lost_opportunity_is_a_rule_violation_and_records_nothing(
    shared_api: Api, crm: dict[str, str]
) -> None:
    api = shared_api
    deal = api.ok(
        "post",
        "/api/opportunities",
        {"customer_id": crm["customer"], "title": "Pilot order", "amount": "38000.00"},
    )
    api.ok("post", f"/api/opportunities/{deal['id']}/lose", {"reason": "price"})
    before = event_count(api.services)

    response = api.post(f"/api/opportunities/{deal['id']}/win")

    problem = assert_problem(response, 409, "rule-violated", "Business rule violated")
    assert problem["detail"] == f"cannot win opportunity {deal['id']}: it is already lost"
    assert event_count(api.services) == before
    assert api.ok("get", f"/api/opportunities/{deal['id']}")["stage"] == "lost"


def test_a_second_customer_with_a_taken_tax_number_is_a_rule_violation(
    shared_api: Api, crm: dict[str, str]
) -> None:
    before = event_count(shared_api.services)

    response = shared_api.post("/api/customers", {"name": "Copy", "tax_number": "987 654 3217"})

    problem = assert_problem(response, 409, "rule-violated", "Business rule violated")
    assert problem["detail"] == f"tax number 9876543217 already belongs to party {crm['customer']}"
    assert event_count(shared_api.services) == before


def test_converting_a_lead_with_a_taken_tax_number_makes_nothing(
    shared_api: Api, crm: dict[str, str]
) -> None:
    lead = shared_api.ok("post", "/api/leads", {"name": "Hakan Öz", "company": "Anadolu Yapı"})
    before = event_count(shared_api.services)

    response = shared_api.post(f"/api/leads/{lead['id']}/convert", {"tax_number": "9876543217"})

    assert_problem(response, 409, "rule-violated", "Business rule violated")
    assert event_count(shared_api.services) == before
    assert shared_api.ok("get", f"/api/leads/{lead['id']}")["status"] == "new"


def test_an_action_with_an_outdated_if_match_is_a_version_conflict(
    shared_api: Api, crm: dict[str, str]
) -> None:
    api = shared_api
    lead = api.ok("post", "/api/leads", {"name": "Burak Şahin"})
    api.ok("post", f"/api/leads/{lead['id']}/qualify", headers={"If-Match": "1"})
    before = event_count(api.services)

    response = api.post(
        f"/api/leads/{lead['id']}/disqualify", {"reason": "no budget"}, headers={"If-Match": "1"}
    )

    problem = assert_problem(response, 409, "version-mismatch", "Version mismatch")
    assert problem["detail"] == "expected version 1, but the current version is 2"
    assert (problem["expected_version"], problem["current_version"]) == (1, 2)
    assert event_count(api.services) == before
    assert api.ok("get", f"/api/leads/{lead['id']}")["status"] == "qualified"


def test_an_action_with_the_current_version_as_a_weak_etag_goes_through(
    shared_api: Api, crm: dict[str, str]
) -> None:
    lead = shared_api.ok("post", "/api/leads", {"name": "Selin Arslan"})

    qualified = shared_api.ok(
        "post", f"/api/leads/{lead['id']}/qualify", headers={"If-Match": 'W/"1"'}
    )

    assert qualified["version"] == 2


# -- 401 and 403 -----------------------------------------------------------------------------


def test_a_request_without_a_key_is_unauthorized(shared_api: Api) -> None:
    before = event_count(shared_api.services)

    response = shared_api.client.post("/api/leads", json={"name": "Ali"})

    problem = assert_problem(response, 401, "unauthorized", "Unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in problem["detail"]
    assert event_count(shared_api.services) == before


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_a_request_with_a_revoked_key_is_unauthorized(shared_api: Api, header: str) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    leaver = shared_api.as_role("sales", name=name)
    value = f"Bearer {leaver.key}" if header == "Authorization" else leaver.key
    assert shared_api.client.get("/api/leads", headers={header: value}).status_code == 200
    shared_api.services.keys.revoke(name)
    before = event_count(shared_api.services)

    write = shared_api.client.post("/api/leads", json={"name": "Ali"}, headers={header: value})
    read = shared_api.client.get("/api/leads", headers={header: value})

    for response in (write, read):
        problem = assert_problem(response, 401, "unauthorized", "Unauthorized")
        assert problem["detail"] == "the API key is unknown or revoked"
    assert event_count(shared_api.services) == before


def test_a_made_up_key_is_unauthorized(shared_api: Api) -> None:
    response = shared_api.client.get("/api/leads", headers={"X-API-Key": "tk_guessed"})

    assert_problem(response, 401, "unauthorized", "Unauthorized")


def test_a_warehouse_key_cannot_capture_a_lead(shared_api: Api) -> None:
    warehouse = shared_api.as_role("warehouse")
    before = event_count(shared_api.services)

    response = warehouse.post("/api/leads", {"name": "Ali"})

    problem = assert_problem(response, 403, "forbidden", "Forbidden")
    assert problem["detail"].startswith("this needs one of the roles sales; key ")
    assert problem["detail"].endswith(" has warehouse")
    assert event_count(shared_api.services) == before


WRITES = [
    ("/api/leads", {"name": "Ali"}),
    ("/api/leads/{lead}/qualify", None),
    ("/api/leads/{lead}/disqualify", {"reason": "no budget"}),
    ("/api/leads/{lead}/convert", {}),
    ("/api/customers", {"name": "Kaya Gıda"}),
    ("/api/opportunities", {"customer_id": "{customer}", "title": "Deal", "amount": "1.00"}),
    ("/api/opportunities/{opportunity}/stage", {"stage": "proposal"}),
    ("/api/opportunities/{opportunity}/win", None),
    ("/api/opportunities/{opportunity}/lose", {"reason": "price"}),
    ("/api/activities", {"kind": "call", "subject": "S", "regarding": "lead",
                         "regarding_id": "{lead}"}),
    ("/api/activities/{activity}/complete", None),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "body"), WRITES, ids=[w[0] for w in WRITES])
def test_an_auditor_key_reads_but_cannot_write(
    shared_api: Api, crm: dict[str, str], endpoint: str, body: Any
) -> None:
    auditor = shared_api.as_role("auditor")
    before = event_count(shared_api.services)

    response = auditor.post(fill(endpoint, crm), fill(body, crm))

    problem = assert_problem(response, 403, "forbidden", "Forbidden")
    assert problem["detail"].endswith(" has auditor")
    assert event_count(shared_api.services) == before
    assert auditor.get(f"/api/leads/{crm['lead']}").status_code == 200


def test_a_warehouse_key_reads_customers_but_not_leads(
    shared_api: Api, crm: dict[str, str]
) -> None:
    warehouse = shared_api.as_role("warehouse")

    assert warehouse.get(f"/api/customers/{crm['customer']}").status_code == 200
    assert_problem(warehouse.get("/api/leads"), 403, "forbidden", "Forbidden")


def test_a_finance_key_registers_customers_but_does_not_capture_leads(shared_api: Api) -> None:
    finance = shared_api.as_role("finance")

    assert finance.post("/api/customers", {"name": "Öz Muhasebe"}).status_code == 201
    assert_problem(finance.post("/api/leads", {"name": "Ali"}), 403, "forbidden", "Forbidden")


# -- Idempotency-Key -------------------------------------------------------------------------


def test_a_repeated_request_with_an_idempotency_key_answers_the_same_and_records_nothing(
    shared_api: Api,
) -> None:
    key = {"Idempotency-Key": f"lead-form-{uuid.uuid4()}"}
    body = {"name": "Elif Kaya", "company": "Kaya Gıda", "email": "elif@kayagida.com"}
    first = shared_api.post("/api/leads", body, headers=key)
    after_first = event_count(shared_api.services)

    again = shared_api.post("/api/leads", dict(reversed(body.items())), headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert first.json()["position"] == after_first
    assert event_count(shared_api.services) == after_first
    assert shared_api.ok("get", "/api/leads", params={"email": "elif@kayagida.com"})["total"] == 1


def test_a_repeated_conversion_answers_with_the_same_customer_and_opportunity(
    shared_api: Api,
) -> None:
    lead = shared_api.ok("post", "/api/leads", {"name": "Can Demir", "company": "Demir Makina"})
    key = {"Idempotency-Key": f"convert-{lead['id']}"}
    body = {"opportunity": {"title": "Spare parts", "amount": "125000.00"}}
    first = shared_api.ok("post", f"/api/leads/{lead['id']}/convert", body, headers=key)
    after_first = event_count(shared_api.services)

    again = shared_api.ok("post", f"/api/leads/{lead['id']}/convert", body, headers=key)

    assert again == first
    assert set(first) == {"id", "version", "position", "customer_id", "opportunity_id"}
    assert event_count(shared_api.services) == after_first


def test_an_idempotency_key_reused_for_another_request_is_rejected(shared_api: Api) -> None:
    key = {"Idempotency-Key": f"lead-form-{uuid.uuid4()}"}
    shared_api.ok("post", "/api/leads", {"name": "Deniz Aksoy"}, headers=key)
    before = event_count(shared_api.services)

    other_body = shared_api.post(
        "/api/leads", {"name": "Deniz Aksoy", "source": "web"}, headers=key
    )
    other_path = shared_api.post("/api/customers", {"name": "Deniz Aksoy"}, headers=key)

    for response in (other_body, other_path):
        problem = assert_problem(response, 422, "idempotency-key-reused", "Idempotency key reused")
        assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
        assert problem["errors"][0]["in"] == "header"
    assert event_count(shared_api.services) == before


def test_two_callers_may_choose_the_same_idempotency_key(shared_api: Api) -> None:
    key = {"Idempotency-Key": f"form-{uuid.uuid4()}"}
    mehmet, zeynep = shared_api.as_role("sales"), shared_api.as_role("sales")

    first = mehmet.post("/api/leads", {"name": "Ali"}, headers=key).json()
    second = zeynep.post("/api/leads", {"name": "Ali"}, headers=key).json()

    assert first["id"] != second["id"]
    assert second["position"] > first["position"]


# -- read-your-writes ------------------------------------------------------------------------


def test_a_read_that_waits_for_a_write_its_read_model_has_not_taken_in_answers_503(
    shared_api: Api,
) -> None:
    services = shared_api.services
    services.runner.stop()
    services.reads.wait_timeout = 0.3
    try:
        written = shared_api.ok("post", "/api/leads", {"name": "Gecikmeli Okuma"})
        response = shared_api.client.get(
            "/api/leads",
            params={"min_position": written["position"]},
            headers=shared_api.headers(),
        )
    finally:
        services.reads.wait_timeout = 5.0
        services.runner.start()

    problem = assert_problem(response, 503, "not-ready", "Not ready")
    assert response.headers["retry-after"] == "1"
    assert f"have not reached position {written['position']}" in problem["detail"]
    assert shared_api.ok("get", "/api/leads", params={"min_position": written["position"]})


def test_a_read_that_waits_for_a_position_no_write_has_reached_is_invalid(
    shared_api: Api,
) -> None:
    response = shared_api.client.get(
        "/api/leads", params={"min_position": 10**9}, headers=shared_api.headers()
    )

    problem = assert_problem(response, 422, "invalid-input", "Invalid input")
    assert [(e["field"], e["in"]) for e in problem["errors"]] == [("min_position", "query")]
    head = event_count(shared_api.services)
    assert (
        problem["errors"][0]["message"] == f"no event has position 1000000000; the last is {head}"
    )


def test_a_read_at_the_position_of_a_write_sees_it(shared_api: Api) -> None:
    written = shared_api.ok("post", "/api/leads", {"name": "Zeynep Ak", "source": "fair"})

    lead = shared_api.client.get(
        f"/api/leads/{written['id']}",
        params={"min_position": written["position"]},
        headers=shared_api.headers(),
    )

    assert lead.status_code == 200
    assert lead.json()["name"] == "Zeynep Ak"
