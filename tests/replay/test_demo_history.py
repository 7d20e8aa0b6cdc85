"""`tekil demo` records a year of generated business through the application's commands: the
same seed gives the same history, the history passes the audit, and it only ever fills a new
database. `tekil serve --demo` puts a small generated year before its named story, once."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from api.services import Services
from domain.settings import Settings
from replay.cli import main
from replay.demo import load_demo
from replay.demo_history import has_history, load_demo_history
from tests.conftest import event_count

ORDER_TO_CASH = (
    "Lead.Converted",
    "Opportunity.Won",
    "Quote.Accepted",
    "SalesOrder.Placed",
    "StockItem.Reserved",
    "Shipment.Dispatched",
    "Invoice.Issued",
    "Payment.Received",
    "Invoice.MarkedOverdue",
    "StockReceipt.Recorded",
)
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def tekil(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def stored(database_url: str) -> list[tuple[Any, ...]]:
    """Every event of the store in order, as recorded."""
    services = Services.open(Settings(database_url=database_url))
    try:
        recorder = services.business.recorder
        return [
            (n.originator_id, n.originator_version, n.topic, json.loads(bytes(n.state)))
            for n in recorder.select_notifications(start=1, limit=1_000_000)
        ]
    finally:
        services.close()


def content(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The events with each aggregate id (drawn at random by the domain) replaced by the order
    in which it first appears; everything else, timestamps included, as recorded."""
    names: dict[str, str] = {}

    def name(found: str) -> str:
        return names.setdefault(found.replace("-", ""), f"#{len(names)}")

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, str):
            return _UUID.sub(lambda m: name(m.group(0)), value)
        return value

    return [(name(str(i)), version, topic, plain(state)) for i, version, topic, state in events]


@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Result]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'seven.db'}"
    return url, tekil("demo", "--events", "2000", "--seed", "7", "--db", url)


def test_the_same_seed_records_the_same_history(seven: tuple[str, Result], tmp_path: Path) -> None:
    first, done = seven
    second = f"sqlite:///{tmp_path / 'again.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"

    again = tekil("demo", "--events", "2000", "--seed", "7", "--db", second)
    tekil("demo", "--events", "2000", "--seed", "8", "--db", other)

    assert done.exit_code == again.exit_code == 0, done.output + again.output
    assert "recorded 2,0" in done.output
    one, two = stored(first), stored(second)
    assert 2000 <= len(one) < 2100
    assert content(one) == content(two)
    assert content(stored(other)) != content(one)


def test_the_history_runs_from_lead_to_cash_over_a_year(seven: tuple[str, Result]) -> None:
    events = stored(seven[0])

    topics = Counter(topic.split(":")[1] for _, _, topic, _ in events)
    stamps = [datetime.fromisoformat(state["timestamp"]["_data_"]) for *_, state in events]

    assert [t for t in ORDER_TO_CASH if not topics[t]] == []
    assert topics["Payment.Received"] < topics["Invoice.Issued"] < topics["SalesOrder.Placed"] * 2
    assert stamps == sorted(stamps)
    assert 300 < (stamps[-1] - stamps[0]).days < 366
    # Up to yesterday where the business is (the stamps' offset), not where the machine is.
    assert stamps[-1].date() < datetime.now(stamps[-1].tzinfo).date()


def test_a_generated_history_passes_the_audit(seven: tuple[str, Result]) -> None:
    verified = tekil("audit", "verify", "--db", seven[0])

    assert verified.exit_code == 0, verified.output
    assert "ok   reconciliation" in verified.output


def test_demo_data_only_fills_a_new_database(seven: tuple[str, Result]) -> None:
    head = len(stored(seven[0]))

    refused = CliRunner().invoke(main, ["demo", "--events", "500", "--db", seven[0]])

    assert refused.exit_code == 1
    assert f"the store already holds a business history ({head} events)" in refused.output
    assert len(stored(seven[0])) == head


def test_serve_demo_records_a_generated_year_then_the_named_story_once(
    database_url: str,
) -> None:
    # As `tekil serve --demo` opens the store: the warehouse comes with the generated year.
    services = Services.open(Settings(database_url=database_url), initialise=True, defaults=False)
    try:
        assert not has_history(services.business)
        generated = load_demo_history(services)
        named = load_demo(services.business)
        head = event_count(services)

        assert generated >= 3000
        assert named > 20
        assert has_history(services.business)
        assert load_demo_history(services) == load_demo(services.business) == 0
        assert event_count(services) == head
    finally:
        services.close()
