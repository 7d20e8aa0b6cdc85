"""How a read model is written: a `Projection` declares its tables and handles the events it
cares about; a `Batch` caches the rows it touches and writes them with few statements.

Rows and tracking positions are written in one transaction (see runner.py), so each event
is applied exactly once, and a rebuild from position 0 gives the rows live processing gave.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    select,
)

TRACKING = MetaData()

tracking_table = Table(
    "projection_tracking",
    TRACKING,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
)

_ABSENT = object()


class Batch:
    """The rows a batch of events changes, written at flush with one executemany per table
    and kind of change. `get` reads through the cache, so handlers may read what they wrote."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: dict[Table, dict[tuple[Any, ...], Any]] = defaultdict(dict)
        self._new: dict[Table, set[tuple[Any, ...]]] = defaultdict(set)
        self._dirty: dict[Table, set[tuple[Any, ...]]] = defaultdict(set)
        self._appended: dict[Table, list[dict[str, Any]]] = defaultdict(list)

    @staticmethod
    def _key(table: Table, key: Any) -> tuple[Any, ...]:
        return key if isinstance(key, tuple) else (key,)

    def get(self, table: Table, key: Any) -> dict[str, Any] | None:
        k = self._key(table, key)
        rows = self._rows[table]
        row = rows.get(k, None)
        if row is None:
            pk = list(table.primary_key.columns)
            found = self.conn.execute(
                select(table).where(and_(*(c == v for c, v in zip(pk, k, strict=True))))
            ).first()
            row = dict(found._mapping) if found is not None else _ABSENT
            rows[k] = row
        return None if row is _ABSENT else row

    def insert(self, table: Table, **values: Any) -> dict[str, Any]:
        k = tuple(values[c.name] for c in table.primary_key.columns)
        existing = self._rows[table].get(k)
        if existing is not None and existing is not _ABSENT:
            raise ValueError(f"{table.name} already has a row {k}")
        unknown = values.keys() - table.columns.keys()
        if unknown:
            raise KeyError(f"{table.name} has no columns {sorted(unknown)}")
        row = {c.name: values.get(c.name) for c in table.columns}
        self._rows[table][k] = row
        self._new[table].add(k)
        return row

    def update(self, table: Table, key: Any, **values: Any) -> dict[str, Any] | None:
        """Change a row; a missing row is left missing (the events that would create it were
        not of interest to this read model)."""
        row = self.get(table, key)
        if row is None:
            return None
        row.update(values)
        k = self._key(table, key)
        if k not in self._new[table]:
            self._dirty[table].add(k)
        return row

    def append(self, table: Table, **values: Any) -> None:
        """Insert a row nobody will read back in this batch (ledger lines, history rows)."""
        self._appended[table].append(values)

    def flush(self) -> None:
        for table, keys in self._new.items():
            if keys:
                rows = self._rows[table]
                self.conn.execute(table.insert(), [rows[k] for k in keys])
        for table, keys in self._dirty.items():
            if keys:
                self._update_many(table, [self._rows[table][k] for k in keys])
        for table, appended in self._appended.items():
            if appended:
                self.conn.execute(table.insert(), appended)
        self._new.clear()
        self._dirty.clear()
        self._appended.clear()

    def _update_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        pk = [c.name for c in table.primary_key.columns]
        others = [c.name for c in table.columns if c.name not in pk]
        statement = (
            table.update()
            .where(and_(*(table.c[name] == bindparam(f"k_{name}") for name in pk)))
            .values({name: bindparam(f"v_{name}") for name in others})
        )
        params = [
            {**{f"k_{n}": row[n] for n in pk}, **{f"v_{n}": row[n] for n in others}} for row in rows
        ]
        self.conn.execute(statement, params)


class Projection:
    """A read model. Subclasses set `name`, `version` and `handles`, define their tables in
    `define_tables`, and apply events in `handle`."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    handles: ClassVar[tuple[type, ...]] = ()

    def __init__(self) -> None:
        self.metadata = MetaData()
        self.tables: dict[str, Table] = {}
        self.define_tables()
        self.topics = frozenset(get_topic(cls) for cls in self.handles)

    def table(self, short_name: str, *columns: Any, **kwargs: Any) -> Table:
        """Declare a table; its name carries the projection's version so that a new version
        can be built beside the old one."""
        table = Table(
            f"rm_{self.name}_v{self.version}_{short_name}", self.metadata, *columns, **kwargs
        )
        self.tables[short_name] = table
        return table

    def define_tables(self) -> None:
        raise NotImplementedError

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        raise NotImplementedError

    def __getitem__(self, short_name: str) -> Table:
        return self.tables[short_name]

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    def __repr__(self) -> str:
        return f"<projection {self.name} v{self.version}>"


def all_tables(projections: Iterable[Projection]) -> list[Table]:
    return [t for p in projections for t in p.metadata.sorted_tables]
