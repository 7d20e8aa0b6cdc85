"""Rebuilding a read model beside the live one: the new build fills tables of its own while
the live tables keep serving queries (and keep being fed); once it has caught up, it takes
their place in one transaction. No downtime, and never a half-built report."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.schema import DropTable

from domain.app import Business
from projections.engine import Projection, tracking_table
from projections.runner import Progress, Runner
from projections.store import ReadStore

VARIANT = "next"


class TakeOverFailed(Exception):
    pass


def rebuild_beside(
    business: Business,
    url: str,
    live: Projection,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[Progress], None] | None = None,
    attempts: int = 50,
) -> int:
    """Build `live`'s read model afresh beside it, then swap it in; returns the positions
    processed."""
    twin = type(live)(variant=VARIANT)
    store = ReadStore(url, [twin])
    try:
        with store.writer.begin() as conn:  # the leftovers of an interrupted build go
            twin.metadata.drop_all(conn)
            conn.execute(delete(tracking_table).where(*_row(twin)))
        store.create_tables()
        runner = Runner(business, store, [twin], batch_size=batch_size)
        done = runner.catch_up(on_progress=on_progress)
        for _ in range(attempts):
            done += runner.catch_up()
            if _take_over(store.writer, live, twin):
                return done
        raise TakeOverFailed(
            f"{live.name}: the live read model kept moving ahead of the new build; try again"
        )
    finally:
        store.dispose()


def _row(p: Projection) -> tuple:  # type: ignore[type-arg]
    return (tracking_table.c.name == p.tracking_name, tracking_table.c.version == p.version)


def _take_over(engine: Engine, live: Projection, twin: Projection) -> bool:
    """In one transaction: if the new build has reached the live one, its tables replace the
    live tables (same names, so every reader and runner carries on), the tracking row takes
    its position and a new generation; otherwise nothing changes and False."""
    with engine.begin() as conn:  # on SQLite the writer begins IMMEDIATE: no other writer
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # The order a runner takes its locks in (its rows, then the tracking row).
            existing = _existing(conn, [t.name for t in live.tables.values()])
            for name in existing:
                conn.execute(text(f"LOCK TABLE {_quote(conn, name)} IN ACCESS EXCLUSIVE MODE"))
            conn.execute(text("LOCK TABLE projection_tracking IN EXCLUSIVE MODE"))
        current = conn.execute(
            select(tracking_table.c.position, tracking_table.c.generation).where(*_row(live))
        ).first()
        built = conn.execute(select(tracking_table.c.position).where(*_row(twin))).scalar() or 0
        if current is not None and built < current.position:
            return False
        for short, table in live.tables.items():
            _replace(conn, table, twin.tables[short], postgres)
        if current is None:
            conn.execute(
                tracking_table.insert().values(
                    name=live.tracking_name, version=live.version, position=built, generation=1
                )
            )
        else:
            conn.execute(
                update(tracking_table)
                .where(*_row(live))
                .values(position=built, generation=current.generation + 1)
            )
        conn.execute(delete(tracking_table).where(*_row(twin)))
        return True


def _replace(conn: Connection, table, twin, postgres: bool) -> None:  # type: ignore[no-untyped-def]
    conn.execute(DropTable(table, if_exists=True))
    conn.execute(
        text(f"ALTER TABLE {_quote(conn, twin.name)} RENAME TO {_quote(conn, table.name)}")
    )
    if postgres:
        # Indexes (the primary key's and unique ones too) keep their names on a rename.
        for (index,) in conn.execute(
            text(
                "SELECT indexname FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = :table"
            ),
            {"table": table.name},
        ).all():
            if twin.name in index:
                renamed = index.replace(twin.name, table.name)
                conn.execute(
                    text(f"ALTER INDEX {_quote(conn, index)} RENAME TO {_quote(conn, renamed)}")
                )
    else:
        # SQLite renames its automatic indexes with the table; named ones are made anew.
        for index in twin.indexes:
            conn.execute(text(f"DROP INDEX IF EXISTS {_quote(conn, str(index.name))}"))
        for index in table.indexes:
            index.create(conn)


def _existing(conn: Connection, names: list[str]) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = ANY(:names)"
        ),
        {"names": names},
    ).all()
    return [r[0] for r in rows]


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)
