"""Lists over HTTP, on SQLite and PostgreSQL: every list comes in pages (limit, offset, total),
newest first, and narrows by the filters a sales team uses (status, source, owner, stage, q)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.fixture(scope="module")
def book(shared_api: Api) -> dict[str, str]:
    """A week of sales work: seven leads, four customers, five deals, three activities."""
    api = shared_api
    ids: dict[str, str] = {}

    def lead(key: str, **body: Any) -> None:
        ids[key] = api.ok("post", "/api/leads", body)["id"]

    lead(
        "ayse",
        name="Ayşe Yılmaz",
        company="Yılmaz Tekstil",
        email="ayse@yilmaz.com",
        source="web",
        campaign="SPRING26",
        owner="mehmet",
    )
    lead("can", name="Can Demir", company="Demir Makina", source="referral", owner="zeynep")
    lead("elif", name="Elif Kaya", source="fair", campaign="FAIR26", owner="mehmet")
    lead("burak", name="Burak Şahin", source="WEB", campaign="SPRING26", owner="zeynep")
    lead("deniz", name="Deniz Aksoy", source="cold-call", owner="mehmet")
    lead("selin", name="Selin Arslan", source="fair", campaign="FAIR26", owner="zeynep")
    lead("ayse-again", name="Ayşe Y.", email="AYSE@yilmaz.com", source="fair", owner="zeynep")
    api.ok("post", f"/api/leads/{ids['can']}/qualify")
    api.ok("post", f"/api/leads/{ids['elif']}/qualify")
    api.ok("post", f"/api/leads/{ids['deniz']}/disqualify", {"reason": "no budget"})
    ayse = api.ok(
        "post",
        f"/api/leads/{ids['ayse']}/convert",
        {"opportunity": {"title": "Fabric supply", "amount": "250000.00"}},
    )
    can = api.ok(
        "post",
        f"/api/leads/{ids['can']}/convert",
        {"tax_number": "7340001237", "opportunity": {"title": "Spare parts", "amount": "125000"}},
    )
    ids.update(
        yilmaz=ayse["customer_id"],
        fabric=ayse["opportunity_id"],
        demir=can["customer_id"],
        parts=can["opportunity_id"],
    )
    ids["anadolu"] = api.ok(
        "post",
        "/api/customers",
        {
            "name": "Anadolu Yapı Market",
            "tax_number": "9876543217",
            "email": "satinalma@anadoluyapi.com.tr",
        },
    )["id"]
    ids["kaya"] = api.ok(
        "post", "/api/customers", {"name": "Kaya Gıda", "email": "info@kayagida.com"}
    )["id"]

    def deal(key: str, **body: Any) -> None:
        ids[key] = api.ok("post", "/api/opportunities", body)["id"]

    deal(
        "fit-out",
        customer_id=ids["anadolu"],
        title="Store fit-out",
        amount="910000.00",
        owner="zeynep",
        stage="proposal",
    )
    deal(
        "pilot", customer_id=ids["anadolu"], title="Pilot order", amount="38000.00", owner="mehmet"
    )
    deal(
        "packaging",
        customer_id=ids["kaya"],
        title="Packaging line",
        amount="64000.00",
        currency="EUR",
        owner="mehmet",
        stage="qualification",
    )
    api.ok("post", f"/api/opportunities/{ids['parts']}/win")
    api.ok("post", f"/api/opportunities/{ids['pilot']}/lose", {"reason": "price"})

    def activity(key: str, **body: Any) -> None:
        ids[key] = api.ok("post", "/api/activities", body)["id"]

    activity(
        "call",
        kind="call",
        subject="Discovery call",
        regarding="opportunity",
        regarding_id=ids["fabric"],
        owner="mehmet",
        done=True,
    )
    activity(
        "visit",
        kind="meeting",
        subject="Site visit",
        regarding="customer",
        regarding_id=ids["anadolu"],
        owner="zeynep",
        due="2027-01-20",
    )
    activity(
        "proposal",
        kind="task",
        subject="Send the proposal",
        regarding="opportunity",
        regarding_id=ids["fabric"],
        owner="mehmet",
        due="2027-01-10",
    )
    return ids


def names(page: dict[str, Any], key: str = "name") -> list[str]:
    return [item[key] for item in page["items"]]


ALL_LEADS_NEWEST_FIRST = [
    "Ayşe Y.",
    "Selin Arslan",
    "Deniz Aksoy",
    "Burak Şahin",
    "Elif Kaya",
    "Can Demir",
    "Ayşe Yılmaz",
]


# -- pages -----------------------------------------------------------------------------------


def test_leads_come_newest_first_fifty_to_a_page(shared_api: Api, book: dict[str, str]) -> None:
    page = shared_api.ok("get", "/api/leads")

    assert names(page) == ALL_LEADS_NEWEST_FIRST
    assert (page["total"], page["limit"], page["offset"]) == (7, 50, 0)


@pytest.mark.parametrize("offset", [0, 3, 6, 9])
def test_leads_are_paged_by_limit_and_offset_with_the_total_on_every_page(
    shared_api: Api, book: dict[str, str], offset: int
) -> None:
    page = shared_api.ok("get", "/api/leads", params={"limit": 3, "offset": offset})

    assert names(page) == ALL_LEADS_NEWEST_FIRST[offset : offset + 3]
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, offset)


def test_customers_are_listed_by_name_and_paged(shared_api: Api, book: dict[str, str]) -> None:
    first = shared_api.ok("get", "/api/customers", params={"limit": 2})
    second = shared_api.ok("get", "/api/customers", params={"limit": 2, "offset": 2})

    assert names(first) == ["Anadolu Yapı Market", "Demir Makina"]
    assert names(second) == ["Kaya Gıda", "Yılmaz Tekstil"]
    assert first["total"] == second["total"] == 4


def test_opportunities_are_paged_newest_first(shared_api: Api, book: dict[str, str]) -> None:
    page = shared_api.ok("get", "/api/opportunities", params={"limit": 2, "offset": 1})

    assert names(page, "title") == ["Pilot order", "Store fit-out"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"),
     ({"limit": "all"}, "limit"), ({"min_position": -1}, "min_position")],
)  # fmt: skip
def test_a_page_outside_the_bounds_is_invalid_input(
    shared_api: Api, book: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = shared_api.client.get("/api/leads", params=params, headers=shared_api.headers())

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": field, "in": "query", "message": response.json()["errors"][0]["message"]}
    ]


# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "new"}, ["Ayşe Y.", "Selin Arslan", "Burak Şahin"]),
        ({"status": "qualified"}, ["Elif Kaya"]),
        ({"status": "converted"}, ["Can Demir", "Ayşe Yılmaz"]),
        ({"status": "disqualified"}, ["Deniz Aksoy"]),
        ({"source": "web"}, ["Burak Şahin", "Ayşe Yılmaz"]),
        ({"source": "WEB"}, ["Burak Şahin", "Ayşe Yılmaz"]),
        ({"source": "fair"}, ["Ayşe Y.", "Selin Arslan", "Elif Kaya"]),
        ({"campaign": "SPRING26"}, ["Burak Şahin", "Ayşe Yılmaz"]),
        ({"owner": "zeynep"}, ["Ayşe Y.", "Selin Arslan", "Burak Şahin", "Can Demir"]),
        ({"owner": "mehmet", "source": "fair"}, ["Elif Kaya"]),
        ({"email": "AYSE@YILMAZ.COM"}, ["Ayşe Y.", "Ayşe Yılmaz"]),
        ({"possible_duplicate": "true"}, ["Ayşe Y."]),
        ({"status": "lost"}, []),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_leads_are_filtered_by_status_source_campaign_owner_and_email(
    shared_api: Api, book: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    page = shared_api.ok("get", "/api/leads", params=params)

    assert names(page) == expected
    assert page["total"] == len(expected)


def test_a_filter_and_a_page_together_count_only_the_filtered(
    shared_api: Api, book: dict[str, str]
) -> None:
    page = shared_api.ok("get", "/api/leads", params={"owner": "zeynep", "limit": 1, "offset": 1})

    assert names(page) == ["Selin Arslan"]
    assert page["total"] == 4


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "yapı"}, ["Anadolu Yapı Market"]),
        ({"q": "ANADOLU"}, ["Anadolu Yapı Market"]),
        ({"q": "kayagida"}, ["Kaya Gıda"]),
        ({"q": "98765"}, ["Anadolu Yapı Market"]),
        ({"q": "a"}, ["Anadolu Yapı Market", "Demir Makina", "Kaya Gıda", "Yılmaz Tekstil"]),
        ({"q": "zzz"}, []),
        ({"tax_number": "7340001237"}, ["Demir Makina"]),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_customers_are_found_by_part_of_name_email_or_tax_number(
    shared_api: Api, book: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    page = shared_api.ok("get", "/api/customers", params=params)

    assert names(page) == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stage": "prospecting"}, ["Fabric supply"]),
        ({"stage": "proposal"}, ["Store fit-out"]),
        ({"stage": "won"}, ["Spare parts"]),
        ({"stage": "lost"}, ["Pilot order"]),
        ({"owner": "mehmet"}, ["Packaging line", "Pilot order", "Fabric supply"]),
        ({"owner": "zeynep", "stage": "proposal"}, ["Store fit-out"]),
        ({"currency": "EUR"}, ["Packaging line"]),
        ({"customer": "anadolu"}, ["Pilot order", "Store fit-out"]),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_opportunities_are_filtered_by_stage_owner_currency_and_customer(
    shared_api: Api, book: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    if "customer" in params:
        params = {"customer_id": book[params["customer"]]}

    page = shared_api.ok("get", "/api/opportunities", params=params)

    assert names(page, "title") == expected
    assert page["total"] == len(expected)


def test_activities_are_filtered_by_what_they_regard_and_whether_done(
    shared_api: Api, book: dict[str, str]
) -> None:
    about_fabric = shared_api.ok("get", "/api/activities", params={"regarding_id": book["fabric"]})
    open_ones = shared_api.ok("get", "/api/activities", params={"done": "false"})
    due_soon = shared_api.ok("get", "/api/activities", params={"due_before": "2027-01-15"})

    assert names(about_fabric, "subject") == ["Send the proposal", "Discovery call"]
    assert names(open_ones, "subject") == ["Send the proposal", "Site visit"]
    assert names(due_soon, "subject") == ["Send the proposal"]
