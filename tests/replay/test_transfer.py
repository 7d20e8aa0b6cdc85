"""Export and import: a store exported as JSON lines and imported into an empty one gives
every report exactly as the original did. And schema evolution: a stored sample of events
recorded before Party.Registered had `kind` (class_version 1) still gives every report right."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from domain.crm.parties import Party, PartyKind
from domain.settings import Settings
from replay.cli import main
from replay.transfer import ImportRefused, import_lines, write_export
from tests.api.test_order_to_cash import Books
from tests.conftest import Api
from tests.replay.test_asof import reports

SAMPLE = Path(__file__).parent.parent / "fixtures" / "events_v1.jsonl"


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'copy.db'}"),
        initialise=True,
        defaults=False,
    )
    try:
        yield services
    finally:
        services.close()


def api_over(services: Services, client: TestClient) -> Api:
    return Api(client, services, services.keys.create("auditor-test", ["admin"]))


def test_every_report_after_import_equals_the_original(api: Api, empty: Services) -> None:
    books = Books(api)
    lead = api.ok("post", "/api/leads", {"name": "Ali", "company": "Veli Döküm", "source": "web"})
    customer = api.ok(
        "post",
        f"/api/leads/{lead['id']}/convert",
        {"opportunity": {"title": "Moulds", "amount": "90000.00"}},
    )["customer_id"]
    books.product(price=100)
    books.receive((10, 60), (10, 70))
    order = books.order(customer, 15, ship=12)
    books.invoice(order)
    books.pay(customer, "1000.00")
    original = reports(api, customer)

    exported = io.StringIO()
    count = write_export(api.services.business, exported)
    assert import_lines(empty.business, io.StringIO(exported.getvalue())) == count
    empty.runner.catch_up()
    with TestClient(create_app(empty, run_projections=False)) as client:
        assert reports(api_over(empty, client), customer) == original


def test_import_refuses_a_store_that_already_holds_events(api: Api, services: Services) -> None:
    api.ok("post", "/api/leads", {"name": "Ali"})
    with pytest.raises(ImportRefused, match="already holds events"):
        import_lines(services.business, SAMPLE.read_text().splitlines())


def test_the_command_line_exports_and_imports(api: Api, database_url: str, tmp_path: Path) -> None:
    Books(api).product(price=100)
    exported = CliRunner().invoke(main, ["audit", "export", "--db", database_url])
    assert exported.exit_code == 0, exported.output
    target = f"sqlite:///{tmp_path / 'cli-copy.db'}"
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(line + "\n" for line in exported.stdout.splitlines() if line.startswith("{"))
    )
    imported = CliRunner().invoke(main, ["audit", "import", str(source), "--db", target])
    assert imported.exit_code == 0, imported.output
    assert imported.output.strip().endswith(
        f"imported {len(source.read_text().splitlines())} events"
    )


@pytest.fixture
def from_version_1(database_url: str) -> Iterator[Services]:
    services = Services.open(Settings(database_url=database_url), initialise=True, defaults=False)
    try:
        import_lines(services.business, SAMPLE.read_text().splitlines())
        services.runner.catch_up()
        yield services
    finally:
        services.close()


def test_version_1_events_still_give_every_report_right(from_version_1: Services) -> None:
    services = from_version_1
    with TestClient(create_app(services, run_projections=False)) as client:
        api = api_over(services, client)
        customers = {c["name"]: c for c in api.ok("get", "/api/customers")["items"]}
        assert customers["Yılmaz Tekstil"]["kind"] == "company"
        assert customers["Mehmet Kaya"]["kind"] == "person"
        balances = {
            a["account"]: a["balance"]
            for a in api.ok("get", "/api/reports/trial-balance")["accounts"]
        }
        assert balances == {
            "100": "240.00",
            "102": "1000.00",
            "120": "800.00",
            "153": "210.00",
            "391": "-340.00",
            "500": "-1300.00",
            "600": "-1700.00",
            "621": "1090.00",
        }
        assert api.ok("get", "/api/reports/pipeline")["closed"][0]["amount"] == "250000.00"
        assert api.ok("get", "/api/reports/reconciliation")["ok"] is True
        stock = api.ok("get", "/api/reports/stock")
        assert (stock["totals"]["value"], stock["items"][0]["on_hand"]) == ("210.00", "3")
    person = services.business.repository.get(UUID(customers["Mehmet Kaya"]["id"]))
    assert isinstance(person, Party)
    assert person.kind == PartyKind.PERSON


def test_the_sample_really_is_version_1() -> None:
    registered = [line for line in SAMPLE.read_text().splitlines() if "Party.Registered" in line]
    assert len(registered) == 2
    assert all('"kind"' not in line and '"class_version"' not in line for line in registered)
