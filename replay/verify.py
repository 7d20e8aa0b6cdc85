"""Every read model equals a fresh rebuild: each is replayed, in memory, to the very position
its live tables stand at, and the two are compared row by row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, Table, select

from domain.app import Business
from projections.engine import Projection, tracking_table
from projections.registry import all_projections
from projections.runner import Runner
from projections.store import ReadStore


@dataclass(frozen=True)
class Difference:
    projection: str
    table: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.projection}.{self.table} [{self.key}]: {self.problem}"


def _rows(conn: Connection, table: Table) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Rows in primary-key order as Python orders the keys: text compared byte by byte (the
    "C" collation on PostgreSQL, SQLite's own), so that both sides merge."""
    pk = list(table.primary_key.columns)
    postgres = conn.dialect.name == "postgresql"
    order = [c.collate("C") if postgres and isinstance(c.type, String) else c for c in pk]
    for row in conn.execute(select(table).order_by(*order)).mappings():
        yield tuple(row[c.name] for c in pk), dict(row)


def _compare_table(
    projection: str, short: str, live: Iterator[Any], fresh: Iterator[Any], limit: int
) -> list[Difference]:
    found: list[Difference] = []
    a, b = next(live, None), next(fresh, None)
    while (a is not None or b is not None) and len(found) < limit:
        if b is None or (a is not None and a[0] < b[0]):
            found.append(
                Difference(
                    projection,
                    short,
                    _key(a[0]),
                    "in the live read model only: a rebuild does not make this row",
                )
            )
            a = next(live, None)
        elif a is None or b[0] < a[0]:
            found.append(
                Difference(
                    projection,
                    short,
                    _key(b[0]),
                    "missing from the live read model: a rebuild makes this row",
                )
            )
            b = next(fresh, None)
        else:
            changed = [c for c in a[1] if a[1][c] != b[1].get(c)]
            if changed:
                column = changed[0]
                found.append(
                    Difference(
                        projection,
                        short,
                        _key(a[0]),
                        f"{column} is {a[1][column]!r} live but {b[1][column]!r} rebuilt"
                        + (f" (and {len(changed) - 1} more columns)" if len(changed) > 1 else ""),
                    )
                )
            a, b = next(live, None), next(fresh, None)
    return found


def _key(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def compare_read_models(
    business: Business, reads: ReadStore, limit: int = 10
) -> tuple[list[Difference], dict[str, int]]:
    """Rebuild every read model in memory to its live position and compare; returns the first
    differences of each and the positions compared at."""
    differences: list[Difference] = []
    positions: dict[str, int] = {}
    with reads.reader.connect() as live:
        at = {
            (row.name, row.version): row.position
            for row in live.execute(select(tracking_table)).all()
        }
        for projection in reads.projections.values():
            position = at.get(projection.key, 0)
            positions[projection.name] = position
            fresh = _rebuilt(business, projection, position)
            try:
                with fresh.reader.connect() as rebuilt:
                    for short, table in projection.tables.items():
                        twin = fresh[projection.name].tables[short]
                        differences += _compare_table(
                            projection.name,
                            short,
                            _rows(live, table),
                            _rows(rebuilt, twin),
                            limit,
                        )
            finally:
                fresh.dispose()
    return differences, positions


def _rebuilt(business: Business, projection: Projection, position: int) -> ReadStore:
    twin = next(p for p in all_projections() if p.name == projection.name)
    fresh = ReadStore("memory://", [twin])
    fresh.create_tables()
    if position:
        Runner(business, fresh, [twin], batch_size=5000).catch_up(stop=position)
    return fresh
