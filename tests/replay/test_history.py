"""The history of any document and the trail of who did what, over HTTP (auditor, manager)
and on the command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from replay.cli import main
from tests.api.test_order_to_cash import Books
from tests.conftest import Api


def invoiced(api: Api) -> tuple[Books, str, dict]:
    books = Books(api)
    books.product(sku="W-1", price=100)
    books.receive((10, 60))
    customer = books.customer()
    invoice = books.invoice(books.order(customer, 2))
    books.pay(customer, "100.00")
    return books, customer, invoice


def test_an_invoice_history_shows_its_events_what_came_with_them_and_what_settled_it(
    api: Api,
) -> None:
    _, _, invoice = invoiced(api)
    auditor = api.as_role("auditor", name="ayse-auditor")
    auditor.last_position = api.last_position
    history = auditor.ok("get", f"/api/audit/history/{invoice['number']}")
    assert history["aggregates"] == [{"id": invoice["id"], "found_by": "document"}]
    [issued] = history["events"]
    assert issued["event"] == "Invoice.Issued"
    assert issued["actor"] == "admin-test"
    assert issued["data"]["number"] == invoice["number"]
    assert issued["data"]["totals"]["total"] == "240.00"
    together = {e["event"] for e in issued["recorded_with"]}
    assert {
        "JournalEntry.Posted",
        "SalesOrder.InvoiceRecorded",
        "ReceivableAccount.InvoiceAdded",
        "NumberSeries.NumberIssued",
    } <= together
    assert {e["event"] for e in history["referenced_by"]} >= {"Payment.Received"}
    by_id = api.ok("get", f"/api/audit/history/{invoice['id']}")
    assert by_id["events"] == history["events"]


def test_a_product_is_found_by_its_sku_and_a_lead_by_its_email(api: Api) -> None:
    invoiced(api)
    lead = api.ok("post", "/api/leads", {"name": "Ali", "email": "ali@veli.com"})
    by_sku = api.ok("get", "/api/audit/history/w-1")
    assert by_sku["events"][0]["event"] == "Product.Defined"
    assert len(by_sku["referenced_by"]) > 0
    by_email = api.ok("get", "/api/audit/history/ALI@veli.com")
    assert by_email["aggregates"][0]["id"] == lead["id"]
    missing = api.get("/api/audit/history/SAT1999000000001")
    assert missing.status_code == 404


def test_the_trail_says_who_did_what_and_filters_by_actor_and_type(api: Api) -> None:
    invoiced(api)
    clerk = api.as_role("sales", name="mehmet")
    clerk.ok("post", "/api/leads", {"name": "Ali"})
    api.last_position = clerk.last_position
    trail = api.ok("get", "/api/audit/trail", params={"actor": "mehmet"})
    assert [e["event"] for e in trail["events"]] == ["Lead.Captured"]
    issued = api.ok("get", "/api/audit/trail", params={"type": "Issued"})
    assert {e["event"] for e in issued["events"]} == {"Invoice.Issued", "StockItem.Issued"}
    assert (
        api.ok("get", "/api/audit/trail", params={"type": "Invoice.Issued"})["events"][0]["actor"]
        == "admin-test"
    )


def test_only_auditors_and_managers_read_the_audit_trail(api: Api) -> None:
    assert api.as_role("sales").get("/api/audit/trail").status_code == 403
    assert api.as_role("manager").get("/api/audit/trail").status_code == 200


def test_the_command_line_prints_a_history_as_a_table_or_json(api: Api, database_url: str) -> None:
    _, _, invoice = invoiced(api)
    table = CliRunner().invoke(main, ["audit", "history", invoice["number"], "--db", database_url])
    assert table.exit_code == 0, table.output
    assert "Invoice.Issued" in table.output
    assert "with" in table.output
    as_json = CliRunner().invoke(
        main, ["audit", "history", invoice["id"], "--json", "--db", database_url]
    )
    assert json.loads(as_json.output)["events"][0]["data"]["number"] == invoice["number"]
    trail = CliRunner().invoke(
        main, ["audit", "trail", "--type", "Invoice.Issued", "--db", database_url]
    )
    assert trail.exit_code == 0
    assert "Invoice.Issued" in trail.output
