"""The hash chain finds an edited, deleted, reordered, inserted or truncated event by its
position, on SQLite and PostgreSQL, by tampering with the database directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from api.services import Services
from domain import context
from replay.chain import Seal, seal, verify_chain


@pytest.fixture
def sealed(services: Services, tmp_path: Path) -> Seal:
    with context.acting(context.CommandContext(actor="tester")):
        for i in range(30):
            services.business.capture_lead(name=f"Lead {i}", source="web")
    result = seal(services.business, services.chain, every=10)
    path = tmp_path / "seal.json"
    result.write(path)
    return Seal.load(path)


def run_sql(services: Services, sql: str) -> None:
    with services.keys.engine.begin() as conn:
        conn.execute(text(sql))


def events_table(services: Services) -> tuple[str, str]:
    """The store's events table and its position column, as this backend names them."""
    table = services.business.recorder.events_table_name
    return table, "rowid" if services.settings.backend == "sqlite" else "notification_id"


def forge(services: Services, position: int, old: str = "Lead", new_text: str = "Leed") -> None:
    """Change one stored event's content, as someone with write access to the database could."""
    table, pos = events_table(services)
    if services.settings.backend == "sqlite":
        new = f"CAST(replace(CAST(state AS TEXT), '{old}', '{new_text}') AS BLOB)"
    else:
        new = f"convert_to(replace(convert_from(state, 'UTF8'), '{old}', '{new_text}'), 'UTF8')"
    run_sql(services, f"UPDATE {table} SET state = {new} WHERE {pos} = {position}")


def findings(services: Services, sealed: Seal) -> list[str]:
    found, _ = verify_chain(services.business, services.chain, sealed)
    return [str(f) for f in found]


def test_an_untouched_store_verifies(services: Services, sealed: Seal) -> None:
    assert findings(services, sealed) == []
    assert sealed.count == services.business.recorder.max_notification_id()


def test_an_edited_event_is_named_by_its_position(services: Services, sealed: Seal) -> None:
    forge(services, 7)
    assert findings(services, sealed) == [
        "position 7: edited: the event differs from when it was sealed"
    ]


def test_a_deleted_event_is_named_by_its_position(services: Services, sealed: Seal) -> None:
    table, pos = events_table(services)
    run_sql(services, f"DELETE FROM {table} WHERE {pos} = 12")
    assert findings(services, sealed) == ["position 12: deleted: this sealed event is missing"]


def test_reordered_events_are_named_by_their_positions(services: Services, sealed: Seal) -> None:
    table, pos = events_table(services)
    run_sql(services, f"UPDATE {table} SET {pos} = -1 WHERE {pos} = 3")
    run_sql(services, f"UPDATE {table} SET {pos} = 3 WHERE {pos} = 4")
    run_sql(services, f"UPDATE {table} SET {pos} = 4 WHERE {pos} = -1")
    assert findings(services, sealed) == [
        "position 3: reordered: this event now sits at position 4",
        "position 4: reordered: this event now sits at position 3",
    ]


def test_a_truncated_log_is_reported_where_it_ends(services: Services, sealed: Seal) -> None:
    table, pos = events_table(services)
    run_sql(services, f"DELETE FROM {table} WHERE {pos} > 25")
    assert findings(services, sealed)[0].startswith("position 26: truncated")


def test_a_rewritten_chain_table_is_caught_by_the_seal_file(
    services: Services, sealed: Seal
) -> None:
    forge(services, 5)
    run_sql(services, "DELETE FROM audit_chain")
    seal(services.business, services.chain, every=10)  # the forger re-chains the forged log
    assert findings(services, sealed) == [
        "position 10: the chain table does not match the seal file here: the table itself "
        "was rewritten"
    ]
