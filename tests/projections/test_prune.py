"""`tekil projections prune`: the tables an upgrade leaves behind (a read model's older
versions) are listed, and dropped with --yes; this code's tables, and a build of this version
beside the live one, are kept."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import inspect, select

from api.services import Services
from projections.engine import tracking_table
from projections.leads import Leads
from projections.sidebyside import VARIANT
from replay.cli import main


class OlderLeads(Leads):
    version = Leads.version - 1


def tables(services: Services) -> set[str]:
    with services.reads.writer.connect() as conn:
        return set(inspect(conn).get_table_names())


def tracked(services: Services) -> set[tuple[str, int]]:
    with services.reads.writer.connect() as conn:
        rows = conn.execute(select(tracking_table.c.name, tracking_table.c.version)).all()
    return {(name, version) for name, version in rows if name.startswith("leads")}


def test_prune_lists_then_drops_the_tables_of_older_versions(
    services: Services, database_url: str
) -> None:
    reads = services.reads
    older, beside = OlderLeads(), Leads(variant=VARIANT)
    with reads.writer.begin() as conn:
        for projection in (older, beside):
            projection.metadata.create_all(conn)
            reads._ensure_tracking(conn, projection)
    old = {t.name for t in older.metadata.sorted_tables}
    live = reads["leads"].metadata.sorted_tables
    kept = {t.name for t in (*live, *beside.metadata.sorted_tables)}
    assert old
    assert old <= tables(services)
    assert kept <= tables(services)
    current = Leads.version
    assert tracked(services) == {
        ("leads", current),
        ("leads", current - 1),
        (f"leads:{VARIANT}", current),
    }

    listed = CliRunner().invoke(main, ["projections", "prune", "--db", database_url])
    assert listed.exit_code == 0, listed.output
    assert f"leads (now version {current}): {', '.join(sorted(old))}" in listed.output
    assert f"{len(old)} tables of other versions; pass --yes" in listed.output
    assert old <= tables(services)

    dropped = CliRunner().invoke(main, ["projections", "prune", "--yes", "--db", database_url])
    assert dropped.exit_code == 0, dropped.output
    assert f"dropped {len(old)} tables of other versions" in dropped.output
    assert not old & tables(services)
    assert kept <= tables(services)
    assert tracked(services) == {("leads", current), (f"leads:{VARIANT}", current)}

    again = CliRunner().invoke(main, ["projections", "prune", "--db", database_url])
    assert "no tables of other versions" in again.output
