"""The audit trail's rows made by SQLite itself from the stored events, for a rebuild: the same
rows `audit._raw_row` makes from each event in Python (the test rebuilds the demo business
both ways and compares them), in a few statements a batch.

They are made in temporary tables of the read models' writing connection, before its batch
takes the database's write lock (a temporary table is the connection's own: writing one locks
nothing), and copied into the audit trail's tables under the lock: made under it, they held
the lock 18 s of a million-event rebuild, and the read models rebuilt beside them waited.

Every statement here is put together from the names of the read model's own tables and the
store's events table; every value is a bound parameter."""

# ruff: noqa: S608

from __future__ import annotations

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

# `audit._raw_keys`: for each kind of key, the key, the aggregate it names, the kind written,
# and which events give one (`?` the topics of that kind).
_KEYS = {
    "number": [
        (
            "json_extract(j, '$.number')",
            "json_extract(j, '$.document_id._data_')",
            "'document'",
            "json_extract(j, '$.document_id._type_') = 'uuid_hex'",
        )
    ],
    "sku": [("'sku:' || json_extract(j, '$.sku')", "originator_id", "'product'", "1")],
    "lead": [
        (
            "'email:' || json_extract(j, '$.email')",
            "originator_id",
            "'lead'",
            "json_extract(j, '$.email') != ''",
        )
    ],
    "party": [
        (
            "'email:' || json_extract(j, '$.email')",
            "originator_id",
            "'party'",
            "json_extract(j, '$.email') != ''",
        ),
        (
            "'tax:' || json_extract(j, '$.tax_number')",
            "originator_id",
            "'party'",
            "json_extract(j, '$.tax_number') != ''",
        ),
    ],
}


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

    def make(self, dbapi: Any, log: str, after: int, last: int) -> list[int]:
        """Make the rows of the events after `after` up to `last` of the store's events table
        `log` in the temporary tables of `dbapi` (an sqlite3 connection outside any
        transaction); returns the positions of the events left to `handle`."""
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
        return [position for (position,) in found]

    def write(self, conn: Any) -> None:
        """Copy the rows `make` made into the audit trail's tables, in `conn`'s transaction
        (the writing connection `make` was given); a key already there is kept."""
        events, refs, keys = (self.tables[name] for name in ("events", "refs", "keys"))
        made = self.made
        conn.exec_driver_sql(f"INSERT INTO {events} SELECT * FROM temp.{made['events']}")
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO {refs} SELECT * FROM temp.{made['refs']}")
        conn.exec_driver_sql(
            f"INSERT OR IGNORE INTO {keys} SELECT * FROM temp.{made['keys']} ORDER BY rowid"
        )

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
            for key, aggregate, name, condition in _KEYS[kind]:
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
