"""`tekil audit verify` proves the store intact, every read model equal to a fresh rebuild,
and the reconciliation — and exits non-zero, naming the problem, when someone has tampered
with the database directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, text, update

from api.services import Services
from replay.cli import main
from replay.verify import compare_tables
from tests.api.test_order_to_cash import Books
from tests.conftest import Api
from tests.replay.test_chain import events_table, forge, run_sql


@pytest.fixture
def worked(api: Api, services: Services) -> Services:
    books = Books(api)
    books.product(price=100)
    books.receive((10, 60), (10, 70))
    customer = books.customer()
    order = books.order(customer, 15)
    books.invoice(order)
    books.pay(customer, "1000.00")
    assert services.reads.wait_for(api.last_position, list(services.reads.projections))
    return services


def verify(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["audit", "verify", "--db", database_url, *args])


def sealed(database_url: str, tmp_path: Path) -> Path:
    out = tmp_path / "seal.json"
    result = CliRunner().invoke(
        main, ["audit", "seal", "--out", str(out), "--db", database_url, "--every", "5"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_an_untouched_store_verifies(worked: Services, database_url: str, tmp_path: Path) -> None:
    seal = sealed(database_url, tmp_path)
    result = verify(database_url, "--against", str(seal))
    assert result.exit_code == 0, result.output
    assert "ok   store:" in result.output
    assert "read models:" in result.output
    assert "ok   reconciliation" in result.output


def test_an_edited_event_fails_verification_at_its_position(
    worked: Services, database_url: str, tmp_path: Path
) -> None:
    seal = sealed(database_url, tmp_path)
    forge(worked, 3, '"actor":"', '"actor":"someone else, ')
    result = verify(database_url, "--against", str(seal), "--no-read-models", "--no-reconcile")
    assert result.exit_code == 1
    assert "FAIL store: position 3: edited" in result.output


def test_a_deleted_event_fails_verification_at_its_position(
    worked: Services, database_url: str, tmp_path: Path
) -> None:
    seal = sealed(database_url, tmp_path)
    table, pos = events_table(worked)
    run_sql(worked, f"DELETE FROM {table} WHERE {pos} = 4")
    result = verify(database_url, "--against", str(seal), "--no-read-models", "--no-reconcile")
    assert result.exit_code == 1
    assert "FAIL store: position 4: deleted" in result.output


def test_a_truncated_log_fails_verification(
    worked: Services, database_url: str, tmp_path: Path
) -> None:
    seal = sealed(database_url, tmp_path)
    head = worked.business.recorder.max_notification_id()
    table, pos = events_table(worked)
    run_sql(worked, f"DELETE FROM {table} WHERE {pos} > {head - 3}")
    result = verify(database_url, "--against", str(seal), "--no-read-models", "--no-reconcile")
    assert result.exit_code == 1
    assert f"FAIL store: position {head - 2}: truncated" in result.output


def test_reordered_events_fail_verification(
    worked: Services, database_url: str, tmp_path: Path
) -> None:
    seal = sealed(database_url, tmp_path)
    table, pos = events_table(worked)
    run_sql(worked, f"UPDATE {table} SET {pos} = -1 WHERE {pos} = 6")
    run_sql(worked, f"UPDATE {table} SET {pos} = 6 WHERE {pos} = 7")
    run_sql(worked, f"UPDATE {table} SET {pos} = 7 WHERE {pos} = -1")
    result = verify(database_url, "--against", str(seal), "--no-read-models", "--no-reconcile")
    assert result.exit_code == 1
    assert "position 6: reordered: this event now sits at position 7" in result.output


def test_a_corrupted_read_model_row_is_named_and_caught_by_reconciliation(
    worked: Services, database_url: str
) -> None:
    items = worked.reads["stock"]["items"]
    with worked.reads.writer.begin() as conn:
        conn.execute(text(f"UPDATE {items.name} SET value = value + 100"))
    result = verify(database_url)
    assert result.exit_code == 1
    assert "FAIL read model stock.items" in result.output
    assert "value is Decimal('351.00') live but Decimal('350.00') rebuilt" in result.output
    assert "FAIL reconciliation stock" in result.output


def test_two_processes_name_every_problem_one_would(
    worked: Services, database_url: str, tmp_path: Path
) -> None:
    """With --jobs 2 the hash chain and the audit trail are checked in a second process while
    this one rebuilds the other read models: the same findings, in the same order."""
    seal = sealed(database_url, tmp_path)
    forge(worked, 3, '"actor":"', '"actor":"someone else, ')
    items = worked.reads["stock"]["items"]
    events = worked.reads["audit"]["events"]
    with worked.reads.writer.begin() as conn:
        conn.execute(text(f"UPDATE {items.name} SET value = value + 100"))
        conn.execute(text(f"UPDATE {events.name} SET actor = 'nobody' WHERE position = 5"))
    one = verify(database_url, "--against", str(seal), "--jobs", "1", "--no-reconcile")
    two = verify(database_url, "--against", str(seal), "--jobs", "2", "--no-reconcile")
    assert one.exit_code == two.exit_code == 1
    assert "FAIL store: position 3: edited" in two.output
    assert "FAIL read model stock.items" in two.output
    assert "FAIL read model audit.events [5]: actor is 'nobody' live" in two.output

    def findings(output: str) -> list[str]:
        return [line.split(" (")[0] for line in output.splitlines() if line.startswith("FAIL")]

    assert findings(one.output) == findings(two.output)


def test_tables_of_many_chunks_are_compared_to_the_row(tmp_path: Path) -> None:
    """Equal chunks are passed over whole; from the first that differs, row by row: a
    changed row and a missing one deep into a big table are both named."""
    metadata = MetaData()
    table = Table(
        "big", metadata, Column("id", Integer, primary_key=True), Column("amount", Integer)
    )
    engines = [create_engine(f"sqlite:///{tmp_path / name}.db") for name in ("live", "fresh")]
    for engine in engines:
        metadata.create_all(engine)
    rows = [{"id": i, "amount": i * 10} for i in range(12_000)]
    with engines[0].begin() as conn:
        conn.execute(insert(table), rows)
    with engines[1].begin() as conn:
        conn.execute(insert(table), [r for r in rows if r["id"] != 11_000])
        conn.execute(update(table).where(table.c.id == 7_000).values(amount=1))
    with engines[0].connect() as live, engines[1].connect() as fresh:
        found = compare_tables("test", "big", live, table, fresh, table)
        assert compare_tables("test", "big", live, table, live, table) == []
    assert [(d.key, d.problem) for d in found] == [
        ("7000", "amount is 70000 live but 1 rebuilt"),
        ("11000", "in the live read model only: a rebuild does not make this row"),
    ]
