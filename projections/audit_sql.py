"""The audit trail's rows made by the database itself from the stored events, for a rebuild: the
same rows `audit._raw_row` makes from each event in Python (the test rebuilds the demo business
both ways and compares them, on SQLite and on PostgreSQL), in a few statements a batch.

On SQLite (`AuditSQL`) they are made in temporary tables of the read models' writing
connection, before its batch takes the database's write lock (a temporary table is the
connection's own: writing one locks nothing), and copied into the audit trail's tables under
the lock: made under it, they held the lock 18 s of a million-event rebuild, and the read models
rebuilt beside them waited. On PostgreSQL (`AuditOnPostgres`), which locks rows and not the
database, they are written in the batch's transaction, by the server (jsonb).

Every statement here is put together from the names of the read model's own tables and the
store's events table; every value is a bound parameter."""

# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# An event's time as the rows hold it (UTC, `2026-11-27 09:22:06.976433`), from its stored
# ISO text (`2026-11-27T12:22:06.976433+03:00`; no fraction when it is 0): SQLite's date
# functions keep milliseconds only, so the seconds are shifted to UTC and the digits after
# them copied. A time in any other form gives NULL, and the event is left to `handle`.
_TIME = (
    "CASE WHEN length(ts) IN (25, 32) THEN "
    "datetime(substr(ts, 1, 19) || substr(ts, -6)) "
    "|| CASE WHEN length(ts) = 32 THEN substr(ts, 20, 7) ELSE '.000000' END END"
)

# `audit._raw_keys`: for each kind of key, the kind written, and the keys its events give: a
# prefix and the field whose text follows it, the field holding the id of the aggregate named
# (None: the event's own), and whether an empty text gives no key.
KEYS: dict[str, tuple[str, list[tuple[str, str, str | None, bool]]]] = {
    "number": ("document", [("", "number", "document_id", False)]),
    "sku": ("product", [("sku:", "sku", None, False)]),
    "lead": ("lead", [("email:", "email", None, True)]),
    "party": ("party", [("email:", "email", None, True), ("tax:", "tax_number", None, True)]),
}


def _keys_in_sql(
    kind: str, text: Callable[..., str], as_id: Callable[[str], str], true: str
) -> list[tuple[str, str, str, str]]:
    """The key, the aggregate, the kind and the condition of each key of `kind`, in SQL over
    an event's JSON `j`: `text(*path)` is the SQL of the text at a path of it, `as_id` makes
    an id of such text, `true` is the dialect's condition that always holds."""
    name, keys = KEYS[kind]
    found = []
    for prefix, field, id_field, not_empty in keys:
        value = text(field)
        conditions = [f"{value} <> ''"] if not_empty else []
        aggregate = "originator_id"
        if id_field is not None:
            aggregate = as_id(text(id_field, "_data_"))
            conditions.append(f"{text(id_field, '_type_')} = 'uuid_hex'")
        key = f"'{prefix}' || {value}" if prefix else value
        found.append((key, aggregate, f"'{name}'", " AND ".join(conditions) or true))
    return found


def _sqlite_keys(kind: str) -> list[tuple[str, str, str, str]]:
    """`_keys_in_sql` in SQLite's SQL, over an event's JSON text `j`."""
    return _keys_in_sql(
        kind, lambda *path: f"json_extract(j, '$.{'.'.join(path)}')", lambda v: v, "1"
    )


def _postgres_keys(kind: str) -> list[tuple[str, str, str, str]]:
    """`_keys_in_sql` in PostgreSQL's SQL, over an event's JSON as jsonb `j`."""

    def text(*path: str) -> str:
        *into, last = path
        return "(j" + "".join(f" -> '{p}'" for p in into) + f" ->> '{last}')"

    return _keys_in_sql(kind, text, lambda v: f"{v}::uuid", "true")


# The SQL function giving the ids an event's stored JSON holds, as a JSON array (see `make`).
IDS = "tekil_audit_ids"


def _marks(values: Any) -> str:
    return f"({','.join('?' * len(values))})"


class AuditSQL:
    """The statements filling the audit trail's tables `tables` (short name: table name) from
    the events of `topics`: `versioned` gives the class version of the topics whose class
    has one (events stored by an older version are left to `handle`, which upcasts them),
    `kinds` the topics giving each kind of business key; `ids` the hex digits of every id
    in a stored event's JSON."""

    def __init__(
        self,
        tables: dict[str, str],
        topics: list[str],
        versioned: dict[str, int],
        kinds: dict[str, list[str]],
        ids: Callable[[bytes], list[bytes]],
    ) -> None:
        self.ids = ids
        self.tables = tables
        self.topics = topics
        self.versioned = versioned
        self.kinds = kinds
        # The temporary tables' names, each its table's with `_made`.
        self.made = {name: f"{table}_made" for name, table in tables.items()}
        self._statements: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
        self._left: list[int] = []

    def make(self, dbapi: Any, log: str, after: int, last: int) -> None:
        """Make the rows of the events after `after` up to `last` of the store's events table
        `log` in the temporary tables of `dbapi` (an sqlite3 connection outside any
        transaction), and find the positions of the events left to `handle`."""
        statements = self._statements.get(log)
        if statements is None:
            statements = self._statements[log] = self._statements_of(log)
        # A Python function: the ids were what SQLite's own functions found slowest
        # (json_tree makes a row of every value of the event).
        dbapi.create_function(IDS, 1, self._ids, deterministic=True)
        made = self.made
        dbapi.execute("BEGIN")  # (one view of the log for all the statements)
        try:
            for short, table in self.tables.items():
                dbapi.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {made[short]} AS "
                    f"SELECT * FROM main.{table} WHERE 0"
                )
                dbapi.execute(f"DELETE FROM temp.{made[short]}")
            dbapi.execute(
                f"CREATE INDEX IF NOT EXISTS temp.{made['events']}_position "
                f"ON {made['events']} (position)"
            )
            *writes, (left, left_params) = statements
            for sql, params in writes:
                dbapi.execute(sql, (after, last, *params))
            found = dbapi.execute(left, (after, last, *left_params)).fetchall()
        except BaseException:
            dbapi.execute("ROLLBACK")
            raise
        dbapi.execute("COMMIT")
        self._left = [position for (position,) in found]

    def write(self, conn: Any) -> list[int]:
        """Copy the rows `make` made into the audit trail's tables, in `conn`'s transaction
        (the writing connection `make` was given); a key already there is kept. Returns the
        positions of the events left to `handle`, in order."""
        events, refs, keys = (self.tables[name] for name in ("events", "refs", "keys"))
        made = self.made
        conn.exec_driver_sql(f"INSERT INTO {events} SELECT * FROM temp.{made['events']}")
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO {refs} SELECT * FROM temp.{made['refs']}")
        conn.exec_driver_sql(
            f"INSERT OR IGNORE INTO {keys} SELECT * FROM temp.{made['keys']} ORDER BY rowid"
        )
        left, self._left = self._left, []
        return left

    def _ids(self, state: bytes) -> str | None:
        found = self.ids(state)
        return (b'["' + b'","'.join(found) + b'"]').decode() if found else None

    def _statements_of(self, log: str) -> list[tuple[str, tuple[Any, ...]]]:
        """(SQL, parameters after the two positions) of each statement, in order: the events,
        their references, their keys; last, the positions left."""
        events, refs, keys = (f"temp.{self.made[name]}" for name in ("events", "refs", "keys"))

        # The events of the batch (each statement reads them again: SQLite keeps the pages
        # read; the JSON is parsed once per statement and event). The positions are the
        # first two parameters of every statement; a `?` takes the next number after the
        # largest so far, so each further `?` is a parameter of its own.
        def chunk(topics: list[str], json: str = "CAST(state AS TEXT) AS j") -> str:
            return (
                f"SELECT rowid AS position, originator_id, originator_version, topic, {json} "
                f"FROM main.{log} WHERE rowid > ?1 AND rowid <= ?2 AND topic IN {_marks(topics)}"
            )

        def written(topics: list[str], json: str = "CAST(state AS TEXT) AS j") -> str:
            """The events of `topics` the first statement wrote (the others go to `handle`)."""
            return (
                f"SELECT e.* FROM ({chunk(topics, json)}) e "
                f"JOIN {events} a ON a.position = e.position"
            )

        version = "CASE topic " + "WHEN ? THEN ? " * len(self.versioned) + "ELSE 1 END"
        # What the row needs of the JSON, read in one call (each call parses the JSON again):
        # an array of the class version, the time's type and text, and the four metadata.
        wanted = (
            "json_extract(j, '$.class_version', '$.timestamp._type_', '$.timestamp._data_', "
            "'$.meta.actor', '$.meta.command_id', '$.meta.correlation_id', "
            "'$.meta.causation_id') AS x"
        )
        current = (
            f"SELECT position, originator_id, originator_version, topic, x ->> 2 AS ts, x "
            f"FROM (SELECT *, {wanted} FROM ({chunk(self.topics)}) LIMIT -1) "
            f"WHERE coalesce(x ->> 0, 1) = {version} AND x ->> 1 = 'datetime_iso' LIMIT -1"
        )
        topics = tuple(self.topics)
        statements = [
            (
                f"INSERT INTO {events} (position, originator_id, originator_version, "
                "event_type, recorded_at, actor, command_id, correlation_id, causation_id) "
                "SELECT position, originator_id, originator_version, "
                "substr(topic, instr(topic, ':') + 1), at, coalesce(x ->> 3, 'unknown'), "
                "coalesce(x ->> 4, ''), coalesce(x ->> 5, ''), coalesce(x ->> 6, '') "
                f"FROM (SELECT *, {_TIME} AS at FROM ({current}) LIMIT -1) WHERE at IS NOT NULL",
                (*topics, *(x for pair in self.versioned.items() for x in pair)),
            )
        ]
        # Every id in the event but its own, as `ids` finds them in the stored JSON (SQLite's
        # json_tree made a row of every value of it, and cost the rebuild 13 s a million).
        statements.append(
            (
                f"INSERT INTO {refs} (position, ref_id) "
                f"SELECT e.position, r.value FROM (SELECT position, originator_id, "
                f"{IDS}(state) AS ids FROM ({written(self.topics, 'state')}) LIMIT -1) e, "
                "json_each(e.ids) r WHERE r.value != e.originator_id",
                topics,
            )
        )
        # The keys in the order of the events giving them: the first of a key and aggregate
        # is kept (`handle` inserts one that is not there yet).
        selects, params = [], []
        for kind, kind_topics in self.kinds.items():
            for key, aggregate, name, condition in _sqlite_keys(kind):
                selects.append(
                    f"SELECT position AS p, {key} AS k, {aggregate} AS a, {name} AS n "
                    f"FROM ({written(kind_topics)}) WHERE {condition}"
                )
                params.append(tuple(kind_topics))
        if selects:
            statements.append(
                (
                    f"INSERT INTO {keys} (key, aggregate_id, kind) "
                    f"SELECT k, a, n FROM ({' UNION ALL '.join(selects)}) ORDER BY p",
                    tuple(x for one in params for x in one),
                )
            )
        statements.append(
            (
                f"SELECT e.position FROM ({chunk(self.topics)}) e WHERE NOT EXISTS "
                f"(SELECT 1 FROM {events} a WHERE a.position = e.position) ORDER BY e.position",
                topics,
            )
        )
        return statements


# Where an id stored as `{"_type_":"uuid_hex","_data_":"<32 hex digits>"}` begins: the stored
# JSON split at it gives, after its first piece, pieces beginning with the digits (what
# `STORED_ID` finds on SQLite; PostgreSQL's regexp_matches took seven times as long). A text
# value holding it would have its quotes escaped: only an id is split at.
_ID_OPENS = '{"_type_":"uuid_hex","_data_":"'


class AuditOnPostgres:
    """`AuditSQL` on PostgreSQL: the same rows, written by the server into the audit trail's
    tables in the batch's transaction (PostgreSQL locks rows, not the database: there is no
    lock to make them outside of), by one statement that parses each event's JSON once."""

    def __init__(
        self,
        tables: dict[str, str],
        topics: list[str],
        versioned: dict[str, int],
        kinds: dict[str, list[str]],
    ) -> None:
        self.tables = tables
        self.kinds = kinds
        self._params: dict[str, Any] = {
            "topics": topics,
            "versions": json.dumps({t: str(v) for t, v in versioned.items()}),
            "keyed": sorted({t for kind_topics in kinds.values() for t in kind_topics}),
            **{f"kind_{kind}": kind_topics for kind, kind_topics in kinds.items()},
        }
        self._statements: dict[str, tuple[str, str]] = {}
        self._range: tuple[str, int, int] | None = None

    def make(self, dbapi: Any, log: str, after: int, last: int) -> None:
        """Take note of the events to make rows of (those after `after` up to `last` of the
        store's events table `log`): `write` makes them."""
        self._range = (log, after, last)

    def write(self, conn: Any) -> list[int]:
        """Make the rows in the audit trail's tables, in `conn`'s transaction; a key already
        there is kept. Returns the positions of the events left to `handle`, in order."""
        assert self._range is not None
        log, after, last = self._range
        self._range = None
        statements = self._statements.get(log)
        if statements is None:
            statements = self._statements[log] = self._statements_of(log)
        made, left = statements
        params = {**self._params, "after": after, "last": last}
        conn.exec_driver_sql(made, params)
        return [position for (position,) in conn.exec_driver_sql(left, params)]

    def _statements_of(self, log: str) -> tuple[str, str]:
        """The statement writing the events, their references and their keys, and the one
        finding the positions left. Parameters by name: the positions `after` and `last`, the
        `topics` of every event, `versions` (the class version of the topics whose class has
        one, as JSON), `kind_<kind>` the topics giving each kind of key, `keyed` all of them."""
        events, refs, keys = (self.tables[name] for name in ("events", "refs", "keys"))
        in_batch = (
            "notification_id > %(after)s AND notification_id <= %(last)s "
            "AND topic = ANY(%(topics)s)"
        )
        # Each event of the batch once: what its rows need of it (only the events giving a
        # key keep their JSON), the events whose rows `handle` must make left out — stored
        # by an older version of their class, or with a time in another form (the store
        # writes it with its offset, and microseconds unless they are 0: 25 or 32 long).
        # (OFFSET 0: parsed once per event, not once per use of `j`)
        parsed = (
            "SELECT notification_id AS position, originator_id, originator_version, topic, "
            "s, s::jsonb AS j FROM (SELECT *, convert_from(state, 'UTF8') AS s "
            f"FROM {log} WHERE {in_batch}) stored OFFSET 0"
        )
        batch = (
            "SELECT position, originator_id, originator_version, topic, "
            "(j -> 'timestamp' ->> '_data_')::timestamptz AT TIME ZONE 'UTC' AS recorded_at, "
            "coalesce(j -> 'meta' ->> 'actor', 'unknown') AS actor, "
            "coalesce(j -> 'meta' ->> 'command_id', '') AS command_id, "
            "coalesce(j -> 'meta' ->> 'correlation_id', '') AS correlation_id, "
            "coalesce(j -> 'meta' ->> 'causation_id', '') AS causation_id, "
            f"(string_to_array(s, '{_ID_OPENS}'))[2:] AS ids, "
            "CASE WHEN topic = ANY(%(keyed)s) THEN j END AS j "
            f"FROM ({parsed}) p "
            "WHERE coalesce(j ->> 'class_version', '1') "
            "= coalesce(%(versions)s::jsonb ->> topic, '1') "
            "AND j -> 'timestamp' ->> '_type_' = 'datetime_iso' "
            "AND length(j -> 'timestamp' ->> '_data_') IN (25, 32)"
        )
        selects = [
            f"SELECT position AS p, {key} AS k, {aggregate} AS a, {name} AS n "
            f"FROM e WHERE topic = ANY(%(kind_{kind})s) AND {condition}"
            for kind in self.kinds
            for key, aggregate, name, condition in _postgres_keys(kind)
        ]
        made = (
            f"WITH e AS MATERIALIZED ({batch}), "
            f"made_events AS (INSERT INTO {events} (position, originator_id, originator_version, "
            "event_type, recorded_at, actor, command_id, correlation_id, causation_id) "
            "SELECT position, originator_id, originator_version, "
            "substr(topic, strpos(topic, ':') + 1), recorded_at, actor, command_id, "
            "correlation_id, causation_id FROM e), "
            # Every id in the event but its own (the 32 digits after each opening).
            f"made_refs AS (INSERT INTO {refs} (position, ref_id) SELECT DISTINCT position, id "
            "FROM (SELECT position, originator_id, left(unnest(ids), 32)::uuid AS id FROM e) r "
            "WHERE id <> originator_id ON CONFLICT DO NOTHING) "
            # The keys in the order of the events giving them: the first of a key and
            # aggregate is kept (`handle` inserts one that is not there yet).
            + (
                f"INSERT INTO {keys} (key, aggregate_id, kind) SELECT k, a, n FROM "
                f"({' UNION ALL '.join(selects)}) x ORDER BY p ON CONFLICT DO NOTHING"
                if selects
                else "SELECT 1"
            )
        )
        left = (
            f"SELECT notification_id FROM {log} WHERE {in_batch} AND notification_id NOT IN "
            f"(SELECT position FROM {events} WHERE position > %(after)s AND position <= %(last)s) "
            "ORDER BY notification_id"
        )
        return made, left
