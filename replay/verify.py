"""Every read model equals a fresh rebuild: each is replayed, in memory, to the very position
its live tables stand at, and the two are compared row by row.

All read models are rebuilt in one pass over the log (each event read and decoded once; a
read model whose live position is behind the others stops there), into in-memory tables
without secondary indexes — a comparison walks primary keys only, so the indexes would be
work for nothing. Rows are then merged in primary-key order, table by table. When both sides
are SQLite, the rows are compared as the database holds them (the driver's tuples, compared
in C); only a row that differs there is converted to Python values, compared again the way
the read model presents it, and described."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, Table, select

from domain.app import Business, open_business
from domain.settings import Settings
from projections.db import make_engine
from projections.engine import Projection, tracking_table
from projections.registry import all_projections
from projections.runner import Runner
from projections.store import ReadStore
from replay.chain import ChainStore, Finding, Seal, verify_chain

BATCH = 20_000  # events per transaction of the in-memory rebuild (nobody waits on it)


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


class _Raw:
    """A table's rows as SQLite stores them, in primary-key order (the driver's tuples), and
    how to turn one into the values the read model presents."""

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        columns = list(table.columns)
        self.names = [c.name for c in columns]
        pk = list(table.primary_key.columns)
        self.pk = [columns.index(c) for c in pk]
        dialect = conn.dialect
        self.procs = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self.sql = str(select(table).order_by(*pk).compile(dialect=dialect))

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        cursor = self.conn.exec_driver_sql(self.sql).cursor
        assert cursor is not None
        while True:
            chunk = cursor.fetchmany(5000)
            if not chunk:
                return
            yield chunk

    def key(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in self.pk)

    def values(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {
            n: (p(v) if p is not None else v)
            for n, p, v in zip(self.names, self.procs, row, strict=True)
        }


def _sqlite_order(value: Any) -> tuple[int, Any]:
    """SQLite's order of values of different storage classes (NULL, numbers, text, blobs)."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def _before(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    try:
        return a < b
    except TypeError:  # a column holding values of several types: as SQLite orders them
        return tuple(map(_sqlite_order, a)) < tuple(map(_sqlite_order, b))


def _compare_raw(
    projection: str, short: str, live: _Raw, fresh: _Raw, limit: int
) -> list[Difference]:
    found: list[Difference] = []
    live_chunks, fresh_chunks = live.chunks(), fresh.chunks()
    # The usual case: both sides give the same rows, to the byte, a chunk at a time (the
    # lists are compared in C); from the first chunk that differs, row by row.
    while True:
        ca, cb = next(live_chunks, None), next(fresh_chunks, None)
        if ca != cb:
            break
        if ca is None:
            return found
    live_rows = itertools.chain(ca or (), itertools.chain.from_iterable(live_chunks))
    fresh_rows = itertools.chain(cb or (), itertools.chain.from_iterable(fresh_chunks))
    a, b = next(live_rows, None), next(fresh_rows, None)
    while (a is not None or b is not None) and len(found) < limit:
        if a == b:  # the usual case: the same row, to the byte
            a, b = next(live_rows, None), next(fresh_rows, None)
            continue
        ka = live.key(a) if a is not None else None
        kb = fresh.key(b) if b is not None else None
        if kb is None or (ka is not None and _before(ka, kb)):
            assert a is not None
            key = _key(tuple(live.values(a)[live.names[i]] for i in live.pk))
            found.append(Difference(projection, short, key, _ONLY_LIVE))
            a = next(live_rows, None)
        elif ka is None or _before(kb, ka):
            assert b is not None
            key = _key(tuple(fresh.values(b)[fresh.names[i]] for i in fresh.pk))
            found.append(Difference(projection, short, key, _MISSING))
            b = next(fresh_rows, None)
        else:
            assert a is not None
            assert b is not None
            # Stored differently: compare as the read model presents the values (a value
            # may have more than one stored form), and say which column differs.
            va, vb = live.values(a), fresh.values(b)
            difference = _describe(projection, short, va, vb, tuple(va[n] for n in _pk(live)))
            if difference is not None:
                found.append(difference)
            a, b = next(live_rows, None), next(fresh_rows, None)
    return found


def _pk(raw: _Raw) -> list[str]:
    return [raw.names[i] for i in raw.pk]


_ONLY_LIVE = "in the live read model only: a rebuild does not make this row"
_MISSING = "missing from the live read model: a rebuild makes this row"


def _describe(
    projection: str, short: str, a: dict[str, Any], b: dict[str, Any], key: tuple[Any, ...]
) -> Difference | None:
    changed = [c for c in a if a[c] != b.get(c)]
    if not changed:
        return None
    column = changed[0]
    return Difference(
        projection,
        short,
        _key(key),
        f"{column} is {a[column]!r} live but {b[column]!r} rebuilt"
        + (f" (and {len(changed) - 1} more columns)" if len(changed) > 1 else ""),
    )


def _compare_table(
    projection: str, short: str, live: Iterator[Any], fresh: Iterator[Any], limit: int
) -> list[Difference]:
    found: list[Difference] = []
    a, b = next(live, None), next(fresh, None)
    while (a is not None or b is not None) and len(found) < limit:
        if b is None or (a is not None and a[0] < b[0]):
            found.append(Difference(projection, short, _key(a[0]), _ONLY_LIVE))
            a = next(live, None)
        elif a is None or b[0] < a[0]:
            found.append(Difference(projection, short, _key(b[0]), _MISSING))
            b = next(fresh, None)
        else:
            difference = _describe(projection, short, a[1], b[1], a[0])
            if difference is not None:
                found.append(difference)
            a, b = next(live, None), next(fresh, None)
    return found


def _key(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def compare_tables(
    projection: str,
    short: str,
    live: Connection,
    table: Table,
    fresh: Connection,
    twin: Table,
    limit: int = 10,
) -> list[Difference]:
    """The first `limit` differences between a live table and its rebuilt twin."""
    if live.dialect.name == "sqlite" and fresh.dialect.name == "sqlite":
        return _compare_raw(projection, short, _Raw(live, table), _Raw(fresh, twin), limit)
    return _compare_table(projection, short, _rows(live, table), _rows(fresh, twin), limit)


def live_positions(conn: Connection) -> dict[tuple[str, int], int]:
    return {(row.name, row.version): row.position for row in conn.execute(select(tracking_table))}


def rebuild_in_memory(
    business: Business,
    projections: Sequence[Projection],
    positions: dict[str, int],
    *,
    indexes: bool = False,
    batch_size: int = BATCH,
) -> ReadStore:
    """A new in-memory read store holding each of `projections` as a rebuild from position 0
    leaves it at `positions[name]`: one pass over the log for all of them (the ones that stop
    earlier drop out on the way)."""
    fresh = ReadStore("memory://", list(projections))
    fresh.create_tables(indexes=indexes)
    for stop in sorted({positions.get(p.name, 0) for p in projections}):
        going = [p for p in projections if positions.get(p.name, 0) >= stop]
        if stop and going:
            Runner(business, fresh, going, batch_size=batch_size).catch_up(stop=stop)
    if indexes:
        fresh.create_indexes()
    return fresh


def compare_read_models(
    business: Business,
    reads: ReadStore,
    limit: int = 10,
    names: Iterable[str] | None = None,
    on_projection: Callable[[str], None] | None = None,
) -> tuple[list[Difference], dict[str, int]]:
    """Rebuild every read model (or those named) in memory to its live position and compare;
    returns the first differences of each and the positions compared at."""
    wanted = list(reads.projections) if names is None else list(names)
    differences: list[Difference] = []
    positions: dict[str, int] = {}
    # One read transaction: the positions and the rows of each read model belong together.
    with reads.reader.connect() as live:
        at = live_positions(live)
        chosen = [reads.projections[n] for n in wanted]
        for projection in chosen:
            positions[projection.name] = at.get(projection.key, 0)
        by_name = {p.name: p for p in all_projections()}
        twins = [by_name[p.name] for p in chosen]
        fresh = rebuild_in_memory(business, twins, positions)
        try:
            with fresh.reader.connect() as rebuilt:
                for projection, twin in zip(chosen, twins, strict=True):
                    for short, table in projection.tables.items():
                        differences += compare_tables(
                            projection.name,
                            short,
                            live,
                            table,
                            rebuilt,
                            twin.tables[short],
                            limit,
                        )
                    if on_projection is not None:
                        on_projection(projection.name)
        finally:
            fresh.dispose()
    return differences, positions


# -- the store and the read models, on two cores ----------------------------------------------

# Read models checked in the second process, beside the hash chain (which reads every event
# as stored): the audit trail takes every event too, as stored; the activities and the quotes
# take events no other read model decodes. The rest, decoded, stay in the first process. On a
# generated year of a million events (tekil demo, 2026-11-27): with the activities here, the
# halves came to 54 s (first) against 47 s (chain 7 s, audit trail and activities 40 s); with
# the quotes here too, 44 s against 49 s, and the whole verify 54 -> 50 s.
SECOND: tuple[str, ...] = ("audit", "activities", "quotes")


@dataclass
class StoreResult:
    findings: list[Finding]
    covered: int
    seconds: float


@dataclass
class ModelsResult:
    differences: list[Difference]
    positions: dict[str, int]
    seconds: float


def check_store(business: Business, chain: ChainStore, sealed: Seal | None) -> StoreResult:
    began = time.monotonic()
    findings, covered = verify_chain(business, chain, sealed)
    return StoreResult(findings, covered, time.monotonic() - began)


def check_models(
    business: Business, reads: ReadStore, names: Iterable[str] | None = None
) -> ModelsResult:
    began = time.monotonic()
    differences, positions = compare_read_models(business, reads, names=names)
    return ModelsResult(differences, positions, time.monotonic() - began)


def _second_process(
    database_url: str, reads_url: str, sealed: Seal | None, names: list[str]
) -> tuple[StoreResult, ModelsResult | None]:
    """The hash chain, then `names`, in a process of its own (opening its own connections)."""
    business = open_business(Settings(database_url=database_url))
    reads = ReadStore(reads_url, all_projections())
    chain_engine = make_engine(database_url, writer=False)
    try:
        store = check_store(business, ChainStore(chain_engine), sealed)
        models = check_models(business, reads, names) if names else None
        return store, models
    finally:
        chain_engine.dispose()
        reads.dispose()
        business.close()


def verify_everything(
    business: Business,
    reads: ReadStore,
    chain: ChainStore,
    settings: Settings,
    sealed: Seal | None,
    *,
    read_models: bool = True,
    jobs: int = 2,
) -> tuple[StoreResult, ModelsResult | None]:
    """The hash chain and (if `read_models`) every read model against a fresh rebuild. With
    `jobs` 2 (and a store other processes can open), the chain and the read models of
    `SECOND` are checked in a second process while this one checks the others: a verify is
    CPU-bound, and this halves it on two cores."""
    names = list(reads.projections) if read_models else []
    if jobs < 2 or settings.backend == "memory":
        store = check_store(business, chain, sealed)
        return store, (check_models(business, reads, names) if read_models else None)
    second = [n for n in names if n in SECOND]
    first = [n for n in names if n not in SECOND]
    began = time.monotonic()
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connections
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        future = pool.submit(
            _second_process, settings.database_url, settings.reads_url, sealed, second
        )
        mine = check_models(business, reads, first) if first else None
        store, theirs = future.result()
    if not read_models:
        return store, None
    differences = (mine.differences if mine else []) + (theirs.differences if theirs else [])
    positions = {**(mine.positions if mine else {}), **(theirs.positions if theirs else {})}
    order = {n: i for i, n in enumerate(names)}
    differences.sort(key=lambda d: order.get(d.projection, len(order)))
    at = {n: positions[n] for n in names if n in positions}
    return store, ModelsResult(differences, at, time.monotonic() - began)
