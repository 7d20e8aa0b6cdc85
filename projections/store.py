"""The read side's database: projection tables, tracking positions, and read-your-writes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from sqlalchemy import Engine, delete, insert, inspect, or_, select, text
from sqlalchemy.schema import CreateTable

from domain.settings import backend_of
from projections.db import make_engine
from projections.engine import TRACKING, Projection, tracking_table


class ReadStore:
    def __init__(self, url: str, projections: Sequence[Projection]) -> None:
        self.url = url
        self.writer: Engine = make_engine(url, writer=True)
        self.reader: Engine = (
            self.writer if backend_of(url) == "memory" else make_engine(url, writer=False)
        )
        self.projections: dict[str, Projection] = {p.name: p for p in projections}
        # How long a read-your-writes request waits before it answers 503 (tests shorten it).
        self.wait_timeout = 5.0

    def __getitem__(self, name: str) -> Projection:
        return self.projections[name]

    def create_tables(self, *, indexes: bool = True) -> None:
        """Create what is missing (safe to repeat, and from several processes at once: on
        PostgreSQL they take turns on an advisory lock). `indexes=False` leaves out the
        secondary indexes (a rebuild that nobody queries until `create_indexes`)."""
        with self.writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7316170823)"))
            TRACKING.create_all(conn)
            self._upgrade_tracking(conn)
            for projection in self.projections.values():
                if indexes:
                    projection.metadata.create_all(conn)
                    # Indexes of tables a rebuild left without them (it stopped half-way).
                    for table in projection.metadata.sorted_tables:
                        for index in table.indexes:
                            index.create(conn, checkfirst=True)
                else:
                    for table in projection.metadata.sorted_tables:
                        conn.execute(CreateTable(table, if_not_exists=True))
                self._ensure_tracking(conn, projection)

    def create_indexes(self, projections: Iterable[Projection] | None = None) -> None:
        """The secondary indexes `create_tables(indexes=False)` left out (built from the rows
        at once: cheaper than keeping them up to date row by row).

        On PostgreSQL, then the statistics of the tables' rows: the planner chooses by them,
        and autovacuum gathers them only a while after a rebuild (never where it is off).
        Without them a customer statement at a million events took 7 ms instead of 0.3: the
        planner, guessing, intersected the party index with the account index (55k lines)."""
        with self.writer.begin() as conn:
            analyze = conn.dialect.name == "postgresql"
            for projection in projections or self.projections.values():
                for table in projection.metadata.sorted_tables:
                    for index in table.indexes:
                        index.create(conn, checkfirst=True)
                    if analyze:
                        name = conn.dialect.identifier_preparer.format_table(table)
                        conn.execute(text(f"ANALYZE {name}"))

    @staticmethod
    def _upgrade_tracking(conn) -> None:  # type: ignore[no-untyped-def]
        """Tracking tables made before the `generation` column existed get it."""
        columns = {c["name"] for c in inspect(conn).get_columns(tracking_table.name)}
        if "generation" not in columns:
            conn.execute(
                text(
                    "ALTER TABLE projection_tracking "
                    "ADD COLUMN generation INTEGER NOT NULL DEFAULT 0"
                )
            )

    @staticmethod
    def _ensure_tracking(conn, projection: Projection, generation: int = 0) -> None:  # type: ignore[no-untyped-def]
        exists = conn.execute(
            select(tracking_table.c.position).where(
                tracking_table.c.name == projection.tracking_name,
                tracking_table.c.version == projection.version,
            )
        ).first()
        if exists is None:
            conn.execute(
                insert(tracking_table).values(
                    name=projection.tracking_name,
                    version=projection.version,
                    position=0,
                    generation=generation,
                )
            )

    def reset(self, projection: Projection, *, indexes: bool = True) -> None:
        """Drop and recreate a projection's tables, and start it again from position 0
        (`indexes=False`: without secondary indexes, for `create_indexes` once rebuilt)."""
        with self.writer.begin() as conn:
            projection.metadata.drop_all(conn)
            if indexes:
                projection.metadata.create_all(conn)
            else:
                for table in projection.metadata.sorted_tables:
                    conn.execute(CreateTable(table))
            row = (
                tracking_table.c.name == projection.tracking_name,
                tracking_table.c.version == projection.version,
            )
            generation = conn.execute(select(tracking_table.c.generation).where(*row)).scalar()
            conn.execute(delete(tracking_table).where(*row))
            self._ensure_tracking(conn, projection, (generation or 0) + 1)

    def older_versions(self) -> dict[str, list[str]]:
        """The tables of read-model versions other than this code's, by read model: what an
        upgrade leaves (a new version is built into tables of its own, and the old ones keep
        serving the servers still on the older code). A version's own build beside the live
        one (side by side) is not among them."""
        with self.writer.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
        found: dict[str, list[str]] = {}
        for projection in self.projections.values():
            prefix, own = f"rm_{projection.name}_v", f"rm_{projection.name}_v{projection.version}_"
            for name in names:
                version = name[len(prefix) :].split("_", 1)[0]
                if name.startswith(prefix) and version.isdigit() and not name.startswith(own):
                    found.setdefault(projection.name, []).append(name)
        return found

    def drop_older_versions(self) -> dict[str, list[str]]:
        """Drop the tables `older_versions` finds, and the tracking rows of versions other
        than this code's; the tables dropped, by read model."""
        found = self.older_versions()
        with self.writer.begin() as conn:
            quote = conn.dialect.identifier_preparer.quote
            for tables in found.values():
                for table in tables:
                    conn.execute(text(f"DROP TABLE {quote(table)}"))
            for name, projection in self.projections.items():
                row = tracking_table.c.name
                conn.execute(
                    delete(tracking_table).where(
                        or_(row == name, row.startswith(f"{name}:")),
                        tracking_table.c.version != projection.version,
                    )
                )
        return found

    def positions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        wanted = {self.projections[n].key: n for n in (names or self.projections)}
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(tracking_table.c.name, tracking_table.c.version, tracking_table.c.position)
            ).all()
        found = {wanted[(n, v)]: pos for n, v, pos in rows if (n, v) in wanted}
        return {name: found.get(name, 0) for name in wanted.values()}

    def wait_for(
        self,
        position: int,
        names: Iterable[str],
        timeout: float | None = None,
        interval: float = 0.005,
    ) -> bool:
        """True once every named read model has processed `position`; False on timeout."""
        names = list(names)
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        while True:
            if min(self.positions(names).values(), default=position) >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
