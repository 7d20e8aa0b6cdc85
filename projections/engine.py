"""How a read model is written: a `Projection` declares its tables and handles the events it
cares about; a `Batch` caches the rows it touches and writes them with few statements.

Rows and tracking positions are written in one transaction (see runner.py), so each event
is applied exactly once, and a rebuild from position 0 gives the rows live processing gave.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    select,
)

if TYPE_CHECKING:
    from projections.eventlog import SharedLog

TRACKING = MetaData()

tracking_table = Table(
    "projection_tracking",
    TRACKING,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    # Bumped whenever the tables are replaced under a runner's feet (a reset, a side-by-side
    # take-over): a runner that cached rows of the old tables then notices and reloads.
    Column("generation", Integer, nullable=False, server_default="0"),
)

_ABSENT = object()

# Keys per `IN (...)` query when rows are fetched ahead (well under SQLite's and PostgreSQL's
# limits on bound parameters).
PREFETCH_CHUNK = 500

# From this many new rows of a table in one flush, PostgreSQL is sent them by COPY instead of
# an INSERT per row (a rebuild, a catch-up; a command's few events are not worth a COPY).
COPY_FROM = 64


class _TableWriter:
    """What a Batch needs to read and write one table on one dialect, worked out once: the
    column names, the statements, and the bind processors SQLAlchemy would apply, so that a
    flush sends plain tuples to the driver's executemany."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        columns = list(table.columns)
        pk_columns = list(table.primary_key.columns)
        self.names = tuple(c.name for c in columns)
        self.name_set = frozenset(self.names)
        self.pk = tuple(c.name for c in pk_columns)
        self.pk_set = frozenset(self.pk)
        self.others = tuple(n for n in self.names if n not in self.pk_set)
        # Columns whose values may be changed in place (JSON documents and the like).
        self.mutable = frozenset(c.name for c in columns if not c.type.hashable)
        self.key_of: Callable[[dict[str, Any]], tuple[Any, ...]]
        if len(self.pk) > 1:
            self.key_of = itemgetter(*self.pk)
        elif self.pk:
            (only,) = self.pk
            self.key_of = lambda values: (values[only],)
        else:
            self.key_of = lambda values: ()
        self.select_one = select(table).where(
            and_(*(c == bindparam(f"pk_{i}") for i, c in enumerate(pk_columns)))
        )
        # A single Uuid key can be fetched ahead, many at a time (see Batch.expect).
        self.select_many = (
            select(table).where(pk_columns[0].in_(bindparam("keys", expanding=True)))
            if len(pk_columns) == 1 and isinstance(pk_columns[0].type, Uuid)
            else None
        )
        # Driver SQL needs positional parameters, and no client-side defaults to fill in.
        self.fast = dialect.paramstyle in ("qmark", "format", "pyformat") and all(
            c.default is None and c.onupdate is None for c in columns
        )
        # The conversions SQLAlchemy itself applies to bound values (TypeDecorators included).
        self.procs = {c.name: _bind_processor(c.type, dialect) for c in columns}
        prep = dialect.identifier_preparer
        self.quoted_table = prep.format_table(table)
        self.quoted = {n: prep.quote(n) for n in self.names}
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # PostgreSQL through psycopg takes many new rows at once by COPY (see Batch).
        self.copies = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self.where = " AND ".join(f"{self.quoted[n]} = {self.mark}" for n in self.pk)
        self._inserts: dict[tuple[str, ...], str] = {}
        self._updates: dict[tuple[str, ...], str] = {}

    def insert_sql(self, names: tuple[str, ...]) -> str:
        sql = self._inserts.get(names)
        if sql is None:
            marks = ", ".join(self.mark for _ in names)
            sql = self._inserts[names] = (
                f"INSERT INTO {self.quoted_table} ({self._columns(names)}) VALUES ({marks})"  # noqa: S608
            )
        return sql

    def copy_sql(self, names: tuple[str, ...]) -> str:
        return f"COPY {self.quoted_table} ({self._columns(names)}) FROM STDIN"

    def _columns(self, names: tuple[str, ...]) -> str:
        return ", ".join(self.quoted[n] for n in names)  # known columns, quoted

    def update_sql(self, names: tuple[str, ...]) -> str:
        sql = self._updates.get(names)
        if sql is None:
            sets = ", ".join(f"{self.quoted[n]} = {self.mark}" for n in names)
            sql = self._updates[names] = f"UPDATE {self.quoted_table} SET {sets} WHERE {self.where}"  # noqa: S608
        return sql

    def params(
        self, rows: Iterable[dict[str, Any]], names: tuple[str, ...]
    ) -> list[tuple[Any, ...]]:
        """Rows as tuples of driver values, in the order of `names` (column at a time, so
        that the loops run in C except for the type processors themselves)."""
        get = itemgetter(*names)
        values = [get(row) for row in rows] if len(names) > 1 else [(get(r),) for r in rows]
        procs = [self.procs[n] for n in names]
        if not any(procs):
            return values
        columns = list(zip(*values, strict=True)) if values else []
        for i, p in enumerate(procs):
            if p is not None and columns:
                columns[i] = tuple(map(p, columns[i]))
        return list(zip(*columns, strict=True))


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The conversion SQLAlchemy applies to a bound value of this type, or the type's own
    equivalent in one call (`fast_bind_processor`: a TypeDecorator's stacked conversions cost
    three Python calls a value, and a rebuild converts millions of values)."""
    fast = getattr(type_, "fast_bind_processor", None)
    processor = fast(dialect) if fast is not None else None
    if processor is None:
        impl = type_.dialect_impl(dialect)
        processor = impl.bind_processor(dialect)
        if (
            processor is not None
            and isinstance(impl, Uuid)
            and type(impl).bind_processor is Uuid.bind_processor
            and impl.as_uuid
        ):
            processor = _uuid_as_hex  # the same text, without UUID.hex's call
    return processor


def _uuid_as_hex(value: Any) -> Any:
    """SQLAlchemy's conversion of an id for a database without a type of its own for them
    (`value.hex`), with `UUID.hex`'s own expression for a `UUID`."""
    if value.__class__ is UUID:
        return "%032x" % value.int  # noqa: UP031 - as UUID.hex writes it
    return value if value is None else value.hex


def _writer(table: Table, dialect: Dialect) -> _TableWriter:
    # Kept with the table (its `info` is ours to use), so it lives exactly as long.
    writers: dict[str, _TableWriter] = table.info.setdefault("tekil.writers", {})
    writer = writers.get(dialect.name)
    if writer is None:
        writer = writers[dialect.name] = _TableWriter(table, dialect)
    return writer


@contextmanager
def _blame(table: Table) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if getattr(error, "table", None) is None:
            error.table = table  # type: ignore[attr-defined]
        raise


class WrittenKeys:
    """The keys a rebuild has written to a table it fills from empty, so that a lookup of any
    other key needs no query. Kept as their hashes (an int a key, about half the memory of
    the keys themselves): a key whose hash is not among them was never written; a key whose
    hash is (written, or another key of the same hash) is looked up in the database, so a
    collision costs a query, never a wrong answer."""

    __slots__ = ("_hashes", "_types", "answered")

    def __init__(self) -> None:
        self._hashes: set[int] = set()
        self._types: tuple[type, ...] | None = None
        # How many lookups the keys answered "absent" without a query: a table whose rows
        # are only inserted, never looked up first, has no use for its keys.
        self.answered = 0

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, keys: list[tuple[Any, ...]]) -> None:
        if keys:
            if self._types is None:
                self._types = tuple(map(type, keys[0]))
            self._hashes.update(map(hash, keys))

    def lacks(self, key: tuple[Any, ...]) -> bool:
        """Whether `key` is surely absent (never written)."""
        if hash(key) in self._hashes:
            return False
        # A key of other types than the keys written (a string for a Uuid column, say): the
        # database decides, as it always did.
        if self._types is not None and tuple(map(type, key)) != self._types:
            return False
        self.answered += 1
        return True


class Batch:
    """The rows a batch of events changes, written at flush with one executemany per table
    and kind of change. `get` reads through the cache, so handlers may read what they wrote.

    A row not yet in the cache is read from the database once per batch. When the runner has
    said which keys a batch is likely to touch (`expect`: the ids of the aggregates whose
    events it carries), the first miss on such a table reads all of them in a few
    `IN (...)` queries instead of one query per row."""

    def __init__(
        self,
        conn: Connection,
        known: dict[Table, dict[tuple[Any, ...], Any]] | None = None,
        complete: dict[Table, WrittenKeys] | None = None,
    ) -> None:
        self.conn = conn
        # Rows as the previous batch of the same runner committed them (see `carry_over`).
        self._known = known or {}
        # Tables whose every key the caller knows (it has written all their rows, starting
        # from empty tables): a key not among them is absent without asking the database.
        self._complete = complete or {}
        # The keys this batch wrote, per table (known once flushed).
        self.written: dict[Table, list[tuple[Any, ...]] | None] = {}
        self.dialect = conn.dialect
        self._rows: dict[Table, dict[tuple[Any, ...], Any]] = defaultdict(dict)
        # Insertion-ordered (dicts, not sets): rows are written in the order events made them.
        self._new: dict[Table, dict[tuple[Any, ...], None]] = defaultdict(dict)
        self._dirty: dict[Table, dict[tuple[Any, ...], None]] = defaultdict(dict)
        self._appended: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        self._expected: dict[Table, set[Any]] = {}
        self._writers: dict[Table, _TableWriter] = {}
        # Rows as read from the database (the driver's row, in column order), so that a flush
        # writes only the columns that changed since.
        self._loaded: dict[Table, dict[tuple[Any, ...], Any]] = defaultdict(dict)

    def _writer(self, table: Table) -> _TableWriter:
        writer = self._writers[table] = _writer(table, self.dialect)
        return writer

    @staticmethod
    def _key(table: Table, key: Any) -> tuple[Any, ...]:
        return key if isinstance(key, tuple) else (key,)

    def expect(self, table: Table, keys: Iterable[Any]) -> None:
        """Say that this batch will probably `get` rows of `table` with these (single-column)
        keys, so that a miss fetches them all at once. Keys that are not there are then known
        to be absent; keys not named here are read one by one as before."""
        if _writer(table, self.dialect).select_many is not None:
            self._expected.setdefault(table, set()).update(keys)

    def get(self, table: Table, key: Any) -> dict[str, Any] | None:
        k = key if isinstance(key, tuple) else (key,)
        rows = self._rows[table]
        row = rows.get(k, None)
        if row is None:
            known = self._known.get(table)
            row = known.get(k) if known is not None else None
            if row is not None:
                rows[k] = row
                if row is not _ABSENT:
                    self._loaded[table][k] = tuple(row.values())  # as committed
                return None if row is _ABSENT else row
            complete = self._complete.get(table)
            if complete is not None and complete.lacks(k):
                rows[k] = _ABSENT
                return None
            expected = self._expected.get(table)
            if expected is not None and len(k) == 1 and k[0] in expected:
                self._prefetch(table, rows, expected)
                row = rows.get(k, _ABSENT)
            else:
                writer = _writer(table, self.dialect)
                found = self.conn.execute(
                    writer.select_one, {f"pk_{i}": v for i, v in enumerate(k)}
                ).first()
                if found is not None:
                    row = dict(found._mapping)
                    self._loaded[table][k] = found
                else:
                    row = _ABSENT
                rows[k] = row
        return None if row is _ABSENT else row

    def carry_over(self) -> dict[Table, dict[tuple[Any, ...], Any]]:
        """The rows this batch read or wrote, for the runner's next batch once this one is
        committed: what a batch touched, the next one usually touches again (an aggregate's
        events come close together). Only valid while nothing else writes these tables,
        which one runner per read model guarantees (another would move the tracking rows
        and make this runner start afresh)."""
        return dict(self._rows)

    def _prefetch(self, table: Table, rows: dict[tuple[Any, ...], Any], expected: set[Any]) -> None:
        del self._expected[table]
        known = self._known.get(table, {})
        wanted = [v for v in expected if (v,) not in rows and (v,) not in known]
        statement = _writer(table, self.dialect).select_many
        pk = table.primary_key.columns[0].name
        loaded = self._loaded[table]
        for i in range(0, len(wanted), PREFETCH_CHUNK):
            chunk = wanted[i : i + PREFETCH_CHUNK]
            for found in self.conn.execute(statement, {"keys": chunk}):
                row = dict(found._mapping)
                k = (row[pk],)
                rows[k] = row
                loaded[k] = found
            for v in chunk:
                rows.setdefault((v,), _ABSENT)

    def insert(self, table: Table, **values: Any) -> dict[str, Any]:
        writer = self._writers.get(table) or self._writer(table)
        if not writer.name_set.issuperset(values):
            unknown = values.keys() - writer.name_set
            raise KeyError(f"{table.name} has no columns {sorted(unknown)}")
        k = writer.key_of(values)
        rows = self._rows[table]
        existing = rows.get(k)
        if existing is not None and existing is not _ABSENT:
            raise ValueError(f"{table.name} already has a row {k}")
        row = dict.fromkeys(writer.names)  # every column, in table order; None unless given
        row.update(values)
        rows[k] = row
        self._new[table][k] = None
        return row

    def update(self, table: Table, key: Any, **values: Any) -> dict[str, Any] | None:
        """Change a row; a missing row is left missing (the events that would create it were
        not of interest to this read model)."""
        k = key if isinstance(key, tuple) else (key,)
        row = self._rows[table].get(k)
        if row is None:
            row = self.get(table, key)
            if row is None:
                return None
        elif row is _ABSENT:
            return None
        row.update(values)
        if k not in self._new[table]:
            self._dirty[table][k] = None
        return row

    def add_up(self, table: Table, key: dict[str, Any], **amounts: Any) -> None:
        """A running total: add `amounts` to the row whose primary key is `key` (column →
        value), or insert that row with them."""
        writer = self._writers.get(table) or self._writer(table)
        k = writer.key_of(key)
        row = self.get(table, k)
        if row is None:
            self.insert(table, **key, **amounts)
        else:
            self.update(table, k, **{name: row[name] + value for name, value in amounts.items()})

    def append(self, table: Table, **values: Any) -> None:
        """Insert a row nobody will read back in this batch (ledger lines, history rows)."""
        self._appended[table].append(values)

    def flush(self) -> None:
        """Write what the batch changed. An error names the table it came from (as
        `error.table`), so that the runner can tell which read model could not take it."""
        for table, keys in self._new.items():
            if keys:
                rows = self._rows[table]
                with _blame(table):
                    self._insert_many(table, [rows[k] for k in keys])
                written = self.written.get(table, [])
                if written is not None:
                    written.extend(keys)
                    self.written[table] = written
        for table, keys in self._dirty.items():
            if keys:
                with _blame(table):
                    self._update_many(table, keys)
        for table, appended in self._appended.items():
            if appended:
                with _blame(table):
                    self._insert_many(table, appended)
                self.written[table] = None  # keys not tracked for appended rows
        self._new.clear()
        self._dirty.clear()
        self._appended.clear()

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        writer = _writer(table, self.dialect)
        names = tuple(rows[0])
        if (
            writer.fast
            and writer.name_set.issuperset(names)
            and all(tuple(r) == names for r in rows)
        ):
            params = writer.params(rows, names)
            if writer.copies and len(params) >= COPY_FROM:
                self._copy(writer.copy_sql(names), params)
            else:
                self.conn.exec_driver_sql(writer.insert_sql(names), params)
        else:
            self.conn.execute(table.insert(), rows)

    def _copy(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        """New rows by COPY, in this batch's transaction: the same driver values an INSERT
        would bind, written as psycopg writes them for COPY (PostgreSQL then parses each as
        its column's type, as it does a bound parameter). psycopg's executemany sends and
        the server executes an INSERT per row: a rebuild of 100k events of a business on
        PostgreSQL took 16.3-17.7 s that way, 12.0-13.1 s by COPY (client CPU 9.7-10.3 ->
        6.8-7.2 s; one process, alternating)."""
        driver = self.conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in params:
                copy.write_row(row)

    def _update_many(self, table: Table, keys: Iterable[tuple[Any, ...]]) -> None:
        writer = _writer(table, self.dialect)
        rows = self._rows[table]
        pk, others = writer.pk, writer.others
        if not writer.fast:
            statement = (
                table.update()
                .where(and_(*(table.c[name] == bindparam(f"k_{name}") for name in pk)))
                .values({name: bindparam(f"v_{name}") for name in others})
            )
            params = [
                {**{f"k_{n}": rows[k][n] for n in pk}, **{f"v_{n}": rows[k][n] for n in others}}
                for k in keys
            ]
            self.conn.execute(statement, params)
            return
        # Write the columns that differ from the row as it was read (and any of a mutable
        # type, which may have been changed in place): the same end state as writing every
        # column, with less to convert and fewer index entries for the database to touch.
        loaded = self._loaded[table]
        names, always = writer.names, writer.mutable
        changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for k in keys:
            row = rows[k]
            before = loaded.get(k)
            if before is None:
                changed = others
            else:
                changed = tuple(
                    n
                    for n, old in zip(names, before, strict=True)
                    if (n in always or row[n] != old) and n not in writer.pk_set
                )
            if changed:
                changes.setdefault(changed, []).append(row)
        for changed, changed_rows in changes.items():
            self.conn.exec_driver_sql(
                writer.update_sql(changed), writer.params(changed_rows, changed + pk)
            )


class RawEvent:
    """An event as stored, not decoded into its domain class: what a read model that copies
    what every event carries (its aggregate, version, class, time and metadata) needs, at a
    fraction of the cost of decoding. `state` is the stored JSON as parsed by `json.loads`:
    encoded values stay encoded (`{"_type_": "uuid_hex", "_data_": "..."}`).

    `current` is False when the stored event was written by an older version of its class:
    then only `decoded()` (the domain event, upcast) tells what it says today."""

    __slots__ = ("_decode", "_event", "cls", "notification", "state")

    def __init__(
        self, notification: Any, cls: type, state: dict[str, Any], decode: Callable[[Any], Any]
    ) -> None:
        self.notification = notification
        self.cls = cls
        self.state = state
        self._decode = decode
        self._event: Any = None

    @property
    def originator_id(self) -> Any:
        return self.notification.originator_id

    @property
    def originator_version(self) -> int:
        return int(self.notification.originator_version)

    @property
    def current(self) -> bool:
        return self.state.get("class_version", 1) == getattr(self.cls, "class_version", 1)

    def decoded(self) -> Any:
        if self._event is None:
            self._event = self._decode(self.notification)
        return self._event


class Projection:
    """A read model. Subclasses set `name`, `version` and `handles`, define their tables in
    `define_tables`, and apply events in `handle`.

    A read model with `raw = True` is given `RawEvent`s instead of domain events (where the
    store's events are plain JSON; decoded events otherwise), for each event it handles."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    handles: ClassVar[tuple[type, ...]] = ()
    raw: ClassVar[bool] = False
    # Rows an event looks up by an id it holds rather than its own aggregate's (the invoices
    # a payment settles): event class -> (table, field). The runner finds those ids in the
    # batch's stored events and has the batch fetch them with the others, in a few queries
    # instead of one each.
    refers: ClassVar[dict[type, tuple[str, str]]] = {}

    def __init__(self, variant: str = "") -> None:
        self.variant = variant
        self.metadata = MetaData()
        self.tables: dict[str, Table] = {}
        self.define_tables()
        self.topics = frozenset(get_topic(cls) for cls in self.handles)
        self.referring = {
            get_topic(cls): (self.tables[short], _field_ids(field))
            for cls, (short, field) in self.refers.items()
        }

    def table(self, short_name: str, *columns: Any, **kwargs: Any) -> Table:
        """Declare a table; its name carries the projection's version (and variant, for a
        build beside the live one) so that a new build can be made beside the old one."""
        variant = f"_{self.variant}" if self.variant else ""
        table = Table(
            f"rm_{self.name}_v{self.version}{variant}_{short_name}",
            self.metadata,
            *columns,
            **kwargs,
        )
        self.tables[short_name] = table
        return table

    def define_tables(self) -> None:
        raise NotImplementedError

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        raise NotImplementedError

    def fills(self, log: SharedLog) -> bool:
        """Whether this read model's rows can be made in SQL from `log` (see `prepare`)."""
        return False

    def prepare(self, dbapi: Any, log: SharedLog, after: int, last: int) -> None:
        """Make the rows of the events after position `after` up to `last` (those `handles`
        names) in SQL, from the store's events table on the same database, for `fill` to
        write: what a catch-up does instead of `handle` where `fills(log)` (a rebuild then
        reads and writes every row in the database, none in Python). `dbapi` is the DB-API
        connection of the read models' writer, outside any transaction: on SQLite, before
        the batch takes the write lock, so rows made in temporary tables of it lock nothing."""
        raise NotImplementedError

    def fill(self, conn: Connection) -> list[int]:
        """Write the rows `prepare` made, in the transaction of `conn` (the same connection);
        returns the positions of the events it made nothing for, in order: those `handle`
        must have (an event stored by an older version of its class, to be upcast, say)."""
        raise NotImplementedError

    def __getitem__(self, short_name: str) -> Table:
        return self.tables[short_name]

    @property
    def tracking_name(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name

    @property
    def key(self) -> tuple[str, int]:
        return (self.tracking_name, self.version)

    def __repr__(self) -> str:
        return f"<projection {self.name} v{self.version}>"


# In the store's JSON, an id is `{"_type_":"uuid_hex","_data_":"<32 hex digits>"}` (the
# transcoder writes exactly this, and decodes any such object as an id); a quote inside a text
# value is escaped, so the pattern cannot match inside one. Its group: the hex digits.
STORED_ID = rb'\{"_type_":"uuid_hex","_data_":"([0-9a-f]{32})"\}'


def _field_ids(field: str) -> Callable[[bytes], list[bytes]]:
    """The hex digits of the ids a stored event's JSON holds under `field`, anywhere (in a
    list of allocations, say)."""
    return re.compile(rb'"' + re.escape(field.encode()) + rb'":' + STORED_ID).findall


def all_tables(projections: Iterable[Projection]) -> list[Table]:
    return [t for p in projections for t in p.metadata.sorted_tables]
