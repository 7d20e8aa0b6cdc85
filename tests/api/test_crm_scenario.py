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


def test_open_amounts_follow_each_deal_between_stages_owners_and_months(api: Api) -> None:
    customer = api.ok("post", "/api/customers", {"name": "Ege Mobilya Ltd."})["id"]

    def open_deal(owner: str, amount: str, currency: str, close: str | None) -> str:
        body = {"customer_id": customer, "title": amount, "amount": amount}
        body |= {"currency": currency, "owner": owner}
        if close:
            body["expected_close"] = close
        return api.ok("post", "/api/opportunities", body)["id"]

    a = open_deal("elif", "1000.00", "TRY", "2027-05-10")
    b = open_deal("elif", "3000.00", "TRY", None)
    c = open_deal("murat", "500.00", "EUR", "2027-04-01")
    d = open_deal("murat", "2000.00", "TRY", "2027-05-20")
    api.ok("post", f"/api/opportunities/{a}/stage", {"stage": "proposal"})  # 50 %
    api.ok("post", f"/api/opportunities/{b}/stage", {"stage": "negotiation"})  # 75 %
    api.ok("post", f"/api/opportunities/{b}/stage", {"stage": "proposal"})
    api.ok("post", f"/api/opportunities/{d}/win")
    e = open_deal("elif", "700.00", "TRY", "2027-05-01")
    api.ok("post", f"/api/opportunities/{e}/lose", {"reason": "price"})

    def row(key: str, name: str | None, currency: str, count: int, amount: str, w: str) -> dict:
        return {key: name, "currency": currency, "count": count, "amount": amount,
                "weighted_amount": w}  # fmt: skip

    pipeline = api.ok("get", "/api/reports/pipeline")
    assert pipeline["by_stage"] == [
        row("stage", "prospecting", "EUR", 1, "500.00", "50.00"),
        row("stage", "proposal", "TRY", 2, "4000.00", "2000.00"),
    ]
    assert pipeline["by_owner"] == [
        row("owner", "elif", "TRY", 2, "4000.00", "2000.00"),
        row("owner", "murat", "EUR", 1, "500.00", "50.00"),
    ]
    # Months in order, the deals without an expected close last; what closed is gone.
    assert pipeline["forecast"] == [
        row("month", "2027-04", "EUR", 1, "500.00", "50.00"),
        row("month", "2027-05", "TRY", 1, "1000.00", "500.00"),
        row("month", None, "TRY", 1, "3000.00", "1500.00"),
    ]
    murat = api.ok("get", "/api/reports/pipeline", params={"owner": "murat"})
    assert murat["by_stage"] == [row("stage", "prospecting", "EUR", 1, "500.00", "50.00")]
    assert murat["closed"] == [row("stage", "won", "TRY", 1, "2000.00", "2000.00")]
    assert api.ok("get", "/api/reports/pipeline", params={"owner": "nobody"})["by_stage"] == []

    # Nothing open any more: the totals of every key are back to nothing, and none is shown.
    for deal in (a, b, c):
        api.ok("post", f"/api/opportunities/{deal}/lose", {"reason": "budget"})
    pipeline = api.ok("get", "/api/reports/pipeline")
    assert (pipeline["by_stage"], pipeline["by_owner"], pipeline["forecast"]) == ([], [], [])
