"""The CRM front door over HTTP, on SQLite and PostgreSQL: a lead is captured, converted, its
opportunity won, and the pipeline and funnel show each step when asked with min_position."""

from __future__ import annotations

from tests.conftest import Api


def stage_row(pipeline: dict, stage: str) -> dict | None:
    return next((r for r in pipeline["by_stage"] if r["stage"] == stage), None)


def test_a_lead_becomes_a_won_deal_and_the_reports_follow_each_step(api: Api) -> None:
    lead = api.ok(
        "post",
        "/api/leads",
        {
            "name": "Ayşe Yılmaz",
            "company": "Yılmaz Tekstil",
            "email": "ayse@yilmaz.com.tr",
            "source": "web",
            "campaign": "SPRING26",
        },
    )
    assert lead["version"] == 1
    assert lead["position"] > 0

    funnel = api.ok("get", "/api/reports/lead-funnel")
    assert funnel["total"]["captured"] == 1
    web = next(r for r in funnel["by_source"] if r["source"] == "web")
    assert web == {
        "source": "web",
        "captured": 1,
        "qualified": 0,
        "converted": 0,
        "disqualified": 0,
        "qualification_rate": "0.0",
        "conversion_rate": "0.0",
        "qualified_to_converted_rate": None,
    }

    converted = api.ok(
        "post",
        f"/api/leads/{lead['id']}/convert",
        {
            "opportunity": {
                "title": "Fabric supply",
                "amount": "250000.00",
                "expected_close": "2027-03-15",
            },
        },
    )
    opportunity_id = converted["opportunity_id"]
    assert converted["customer_id"]

    pipeline = api.ok("get", "/api/reports/pipeline")
    assert stage_row(pipeline, "prospecting") == {
        "stage": "prospecting",
        "currency": "TRY",
        "count": 1,
        "amount": "250000.00",
        "weighted_amount": "25000.00",
    }
    assert pipeline["forecast"][0]["month"] == "2027-03"
    funnel = api.ok("get", "/api/reports/lead-funnel")
    campaign = next(r for r in funnel["by_campaign"] if r["campaign"] == "SPRING26")
    assert campaign["converted"] == 1
    assert campaign["conversion_rate"] == "100.0"

    api.ok("post", f"/api/opportunities/{opportunity_id}/stage", {"stage": "negotiation"})
    pipeline = api.ok("get", "/api/reports/pipeline")
    assert stage_row(pipeline, "negotiation")["weighted_amount"] == "187500.00"

    won = api.ok("post", f"/api/opportunities/{opportunity_id}/win")
    assert won["version"] == 3
    pipeline = api.ok("get", "/api/reports/pipeline")
    assert pipeline["by_stage"] == []
    assert pipeline["closed"] == [
        {
            "stage": "won",
            "currency": "TRY",
            "count": 1,
            "amount": "250000.00",
            "weighted_amount": "250000.00",
        }
    ]

    customer = api.ok("get", f"/api/customers/{converted['customer_id']}")
    assert customer["name"] == "Yılmaz Tekstil"
    assert [o["stage"] for o in customer["opportunities"]] == ["won"]


def test_what_was_won_and_lost_adds_up_per_owner_and_currency(api: Api) -> None:
    customer = api.ok("post", "/api/customers", {"name": "Deniz Gıda A.Ş."})["id"]
    deals = [  # owner, currency, amount, how it ends
        ("elif", "TRY", "100000.00", "win"),
        ("elif", "TRY", "40000.00", "lose"),
        ("elif", "EUR", "5000.00", "win"),
        ("murat", "TRY", "70000.00", "win"),
        ("murat", "TRY", "30000.00", "lose"),
        ("murat", "TRY", "20000.00", None),  # still open
    ]
    for owner, currency, amount, end in deals:
        opened = api.ok(
            "post",
            "/api/opportunities",
            {
                "customer_id": customer,
                "title": f"{owner} {amount}",
                "amount": amount,
                "currency": currency,
                "owner": owner,
            },
        )
        if end == "lose":
            api.ok("post", f"/api/opportunities/{opened['id']}/lose", {"reason": "price"})
        elif end == "win":
            api.ok("post", f"/api/opportunities/{opened['id']}/win")

    def closed(owner: str | None = None) -> list[dict]:
        params = {"owner": owner} if owner else None
        return api.ok("get", "/api/reports/pipeline", params=params)["closed"]

    def row(stage: str, currency: str, count: int, amount: str, weighted: str) -> dict:
        return {
            "stage": stage,
            "currency": currency,
            "count": count,
            "amount": amount,
            "weighted_amount": weighted,
        }

    assert closed() == [
        row("won", "EUR", 1, "5000.00", "5000.00"),
        row("won", "TRY", 2, "170000.00", "170000.00"),
        row("lost", "TRY", 2, "70000.00", "0.00"),
    ]
    assert closed("murat") == [
        row("won", "TRY", 1, "70000.00", "70000.00"),
        row("lost", "TRY", 1, "30000.00", "0.00"),
    ]
    assert closed("nobody") == []
