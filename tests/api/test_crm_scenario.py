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
