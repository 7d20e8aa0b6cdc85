"""Feeds read models from the notification log: in batches (catch-up and rebuild), then live
(woken by commands in this process, by NOTIFY on PostgreSQL, or by polling on SQLite)."""

from __future__ import annotations

import atexit
import gc
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from sqlalchemy import Connection, bindparam, literal, select, tuple_, update

from domain.app import Business, open_business
from domain.ids import uuid_from_hex
from domain.settings import Settings
from projections.decoding import event_class, event_decoder, parse
from projections.engine import Batch, Projection, RawEvent, WrittenKeys, tracking_table
from projections.eventlog import Listener, SharedLog, analyze_log, read_log, shared_log
from projections.store import ReadStore

log = logging.getLogger(__name__)

# Rows kept between batches (as committed) for the next batches to start from; beyond this,
# only those of the last batch are kept. (50,000 held ~40 MB more in a rebuild than 10,000,
# for no measurable gain: what is not kept is fetched in bulk, see Batch.expect.)
KNOWN_ROWS_LIMIT = 10_000

# Events per batch (and transaction) of `rebuild`. Read-model rows are mostly keyed by random
# ids, so each commit writes a page for nearly every row it inserts: at a million events,
# batches of 20,000 wrote half the pages batches of 5,000 did (18 against 36 GB, WAL and
# checkpoints) for ~100 MB more at the peak of each process.
REBUILD_BATCH = 20_000
# A runner this far behind (a rebuild, a read model's new version, a store restored) has
# PostgreSQL gather the events table's statistics before its first page, once
# (`eventlog.analyze_log`): a quarter of a second, against a second a page without them.
ANALYZE_BEHIND = 100_000

# Keys kept per table while a rebuild fills it (see Runner._empty_tables); beyond this, the
# table is looked up in the database as usual.
COMPLETE_KEYS_LIMIT = 2_000_000


@contextmanager
def _gc_paused(freeze: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while a batch runs: a batch allocates many objects that
    live until its end (events, rows), and the collector would walk them again and again
    (about a tenth of a rebuild's time). With `freeze` (a rebuild: big batches, and keys kept
    until its end), what the batch left alive is then set aside (`gc.freeze`: still freed as
    usual when nothing refers to it, but not walked by the collector), so that the collector
    does not walk it all again when it resumes (another seventh of a rebuild's time); the
    catch-up hands it back (`gc.unfreeze`) when it ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if freeze:
                gc.freeze()
            gc.enable()


# Moves read models at one position on to another, if no other runner has moved them (or
# replaced their tables) since this one read them: one statement for all of them, built once
# (a statement built and sent for each read model cost a batch of live following about 3 ms,
# and on PostgreSQL 14 round trips).
_MOVE_TRACKING = (
    update(tracking_table)
    .where(
        tuple_(tracking_table.c.name, tracking_table.c.version, tracking_table.c.generation).in_(
            bindparam("t_keys", expanding=True)
        ),
        tracking_table.c.position == bindparam("t_old"),
    )
    .values(position=bindparam("t_new"))
)


@contextmanager
def _failing(p: Projection) -> Iterator[None]:
    """An error raised within is `p`'s: it stops, the other read models go on (`step`)."""
    try:
        yield
    except Exception as error:
        error.projection = p.name  # type: ignore[attr-defined]
        raise


class StaleTracking(Exception):
    """Another runner moved a projection on first: reload positions and carry on."""


@dataclass
class Progress:
    position: int
    head: int
    events: int
    seconds: float


class Runner:
    def __init__(
        self,
        business: Business,
        reads: ReadStore,
        projections: Sequence[Projection] | None = None,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.05,
        store_url: str | None = None,
        keys_limit: int = COMPLETE_KEYS_LIMIT,
    ) -> None:
        self.store_url = store_url
        self.keys_limit = keys_limit
        self.business = business
        self.reads = reads
        self.projections = list(reads.projections.values() if projections is None else projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.failed: dict[str, str] = {}
        self._positions: dict[str, int] | None = None
        self._log_analyzed = False
        self._known: dict[Any, Any] | None = None
        self._generations: dict[str, int] = {}
        self._complete: dict[Any, WrittenKeys] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        # While catching up: the store's log where the read models' database reads it, for
        # those that fill their tables from it in SQL (`Projection.fill`).
        self._log: SharedLog | None = None

    # -- processing ------------------------------------------------------------------------

    @property
    def active(self) -> list[Projection]:
        return [p for p in self.projections if p.name not in self.failed]

    def positions(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = self._load_positions()
        return self._positions

    def _load_positions(self) -> dict[str, int]:
        wanted = {p.key for p in self.projections}
        with self.reads.writer.connect() as conn:
            rows = conn.execute(
                select(
                    tracking_table.c.name,
                    tracking_table.c.version,
                    tracking_table.c.position,
                    tracking_table.c.generation,
                )
            ).all()
        found = {(n, v): (pos, gen) for n, v, pos, gen in rows if (n, v) in wanted}
        self._generations = {p.name: found.get(p.key, (0, 0))[1] for p in self.projections}
        self._known = None  # rows cached from tables that may since have been replaced
        return {p.name: found.get(p.key, (0, 0))[0] for p in self.projections}

    def step(self, stop: int | None = None) -> int:
        """Apply the next batch of events to every active projection; returns how many
        positions of the log it moved past (0 when all are up to date).

        Only events of the topics the active projections handle are read; the others are
        passed over in the database, and the positions move past them too."""
        active = self.active
        if not active:
            return 0
        positions = self.positions()
        start = min(positions[p.name] for p in active)
        if stop is not None and start >= stop:
            return 0
        recorder = self.business.recorder
        # Everything up to the head is committed (SQLite has one writer; PostgreSQL writers
        # commit in position order), so a batch shorter than the limit covers up to it.
        head = recorder.max_notification_id() or 0
        if stop is not None:
            head = min(head, stop)
        if start >= head:
            return 0
        if head - start >= ANALYZE_BEHIND and not self._log_analyzed:
            self._log_analyzed = True
            analyze_log(recorder)
        shared = self._log
        fillers = [p for p in active if shared is not None and p.fills(shared)]
        # (the events of a read model filled in SQL are not read here; its batch is of
        # `batch_size` positions of the log at most)
        topics = sorted(set().union(*(p.topics for p in active if p not in fillers)))
        if fillers:
            head = min(head, start + self.batch_size)
        with _gc_paused():
            notifications = (
                read_log(recorder, start + 1, self.batch_size, stop=head, topics=topics)
                if topics
                else []
            )
        last = notifications[-1].id if len(notifications) >= self.batch_size else head
        while True:
            try:
                with _gc_paused(freeze=bool(self._complete)):
                    self._apply(active, notifications, last, fillers)
            except StaleTracking:
                self._positions = None
                return last - start
            except Exception as error:
                culprit = getattr(error, "projection", None)
                if culprit is None:
                    raise
                log.exception("projection %s failed; it stops until rebuilt", culprit)
                self.failed[culprit] = f"{type(error).__name__}: {error}"
                active = self.active
                fillers = [p for p in fillers if p in active]
                if not active:
                    return 0
                continue
            for p in active:
                positions[p.name] = max(positions[p.name], last)
            return last - start

    def _apply(
        self,
        active: list[Projection],
        notifications: Sequence,  # type: ignore[type-arg]
        last: int,
        fillers: Sequence[Projection] = (),
    ) -> None:
        positions = self.positions()
        mapper = self.business.mapper
        # Which projections want which topic, and which events of this batch each has not
        # seen yet: one pass, so that each event is looked at once and decoded at most once.
        interested: dict[str, list[Projection]] = {}
        for p in active:
            if p in fillers:
                continue
            for topic in p.topics:
                interested.setdefault(topic, []).append(p)
        # Read models that take events as stored get them without decoding, where the store
        # keeps plain JSON (see RawEvent); first, so that the others' decoding may then
        # reuse the JSON they were given as parsed.
        plain = mapper.cipher is None and mapper.compressor is None
        for wanted in interested.values():
            wanted.sort(key=lambda p: not (p.raw and plain))
        work = []
        touched: dict[Projection, set[Any]] = {p: set() for p in active}
        referred: dict[Any, set[Any]] = {}
        ahead = max(positions[p.name] for p in active)
        for n in notifications:
            wanted = interested.get(n.topic)
            if wanted is None:
                continue
            # Past every projection's position (always so in a rebuild), all of them take it.
            takers = wanted if n.id > ahead else [p for p in wanted if n.id > positions[p.name]]
            if takers:
                work.append((n, takers))
                for p in takers:
                    touched[p].add(n.originator_id)
                    if p.referring and plain:
                        refers = p.referring.get(n.topic)
                        if refers is not None:
                            table, ids = refers
                            referred.setdefault(table, set()).update(
                                map(uuid_from_hex, map(bytes.decode, ids(bytes(n.state))))
                            )
        # The rows the previous batch left (as committed), unless something went wrong since.
        known, self._known = self._known, None
        complete, self._complete = self._complete, None
        with self._reading() as reader, self.reads.writer.connect() as writer:
            # Rows made in SQL first, outside the write lock (the writer has not begun).
            filling = [p for p in fillers if positions[p.name] < last]
            for p in filling:
                self._prepare(p, writer, positions[p.name], last)
            if reader is None:
                writer.begin()
            batch = Batch(reader or writer, known, complete)
            # Rows are mostly keyed by the id of the aggregate whose events change them: let
            # the batch fetch those in bulk instead of one SELECT per row.
            for p, ids in touched.items():
                if ids:
                    for table in p.metadata.tables.values():
                        batch.expect(table, ids)
            for table, ids in referred.items():
                batch.expect(table, ids)
            decode = event_decoder(mapper)
            for n, takers in work:
                event = raw = None
                for p in takers:
                    try:
                        if p.raw and plain:
                            if raw is None:
                                state, shared = parse(n.state)
                                raw = RawEvent(n, event_class(n.topic), state, decode)
                                if event is not None:
                                    raw._event = event
                            p.handle(raw, n.id, batch)
                        else:
                            if event is None:
                                if raw is None:
                                    event = decode(n)
                                else:
                                    if shared and raw._event is None:
                                        # (those that read it as stored have had it: its
                                        # parsed JSON is decoded in place, not parsed again)
                                        raw._event = decode(n, raw.state)
                                    event = raw.decoded()
                            p.handle(event, n.id, batch)
                    except Exception as error:
                        error.projection = p.name  # type: ignore[attr-defined]
                        raise
            if reader is not None:
                # What the batch read is committed and stays so: nobody else writes these
                # tables (the tracking rows below say if another runner did, and undo all).
                reader.rollback()
                batch.conn = writer
                writer.begin()
            conn = writer
            for p in filling:
                self._fill(p, writer, batch, decode)
            try:
                batch.flush()
            except Exception as error:
                # A row the database refused (a NOT NULL column, a string too long, ...):
                # the read model that owns its table stops, the others go on.
                table = getattr(error, "table", None)
                for p in active:
                    if any(t is table for t in p.metadata.tables.values()):
                        error.projection = p.name  # type: ignore[attr-defined]
                        break
                raise
            behind: dict[int, list[Projection]] = {}
            for p in active:
                if positions[p.name] < last:
                    behind.setdefault(positions[p.name], []).append(p)
            for old, moving in behind.items():
                keys = [(p.tracking_name, p.version, self._generations[p.name]) for p in moving]
                moved = conn.execute(
                    _MOVE_TRACKING, {"t_keys": keys, "t_old": old, "t_new": last}
                ).rowcount
                if moved != len(moving):
                    raise StaleTracking(", ".join(p.name for p in moving))
            writer.commit()
        # Committed: the next batches may start from these rows, and from those of earlier
        # batches (in live following, a batch is a command's events, and the next command
        # touches other rows of the same tables: the ledger's accounts, a customer's totals).
        carried = batch.carry_over()
        if known and sum(map(len, known.values())) + sum(map(len, carried.values())) <= (
            KNOWN_ROWS_LIMIT
        ):
            for table, rows in carried.items():
                known.setdefault(table, {}).update(rows)
            carried = known
        self._known = carried
        if complete is not None:
            for table, keys in batch.written.items():
                kept = complete.get(table)
                if kept is None:
                    continue
                if (
                    keys is None  # appended rows: keys not tracked
                    or not kept.answered  # rows written, none looked up first: not needed
                    or len(kept) + len(keys) > self.keys_limit
                ):
                    del complete[table]  # (a lookup then asks the database, as elsewhere)
                else:
                    kept.add(keys)
            self._complete = complete

    def _prepare(self, p: Projection, writer: Connection, after: int, last: int) -> None:
        assert self._log is not None
        with _failing(p):
            p.prepare(writer.connection.driver_connection, self._log, after, last)

    def _fill(
        self, p: Projection, conn: Connection, batch: Batch, decode: Callable[..., Any]
    ) -> None:
        """`p`'s rows made in SQL (`_prepare`), and those of the events it left, handled as
        usual (decoded: upcast to their class's version)."""
        with _failing(p):
            for position in p.fill(conn):
                (n,) = read_log(self.business.recorder, position, 1, stop=position)
                p.handle(decode(n), n.id, batch)

    @contextmanager
    def _reading(self) -> Iterator[Connection | None]:
        """Where a batch reads the rows it changes. On an SQLite file, a connection of its
        own, outside the write lock: the lock (one writer for the whole database, the store
        included) is then held only while the batch writes, not while its events are
        handled, so that commands and other runners (a rebuild on the other core) wait less.
        Elsewhere (PostgreSQL locks rows, not the database), the writing connection."""
        reads = self.reads
        if reads.reader is reads.writer or reads.writer.dialect.name != "sqlite":
            yield None
            return
        with reads.reader.connect() as conn:
            yield conn

    def catch_up(
        self, stop: int | None = None, on_progress: Callable[[Progress], None] | None = None
    ) -> int:
        """Process until every projection has reached the head of the log (or `stop`)."""
        began = time.monotonic()
        head = stop if stop is not None else (self.business.recorder.max_notification_id() or 0)
        total = 0
        self._log = shared_log(self.business, self.reads.writer)
        self._complete = self._empty_tables()
        rebuilding = bool(self._complete)
        try:
            while True:
                n = self.step(stop=head)
                total += n
                if on_progress is not None:
                    position = min(self.positions().values(), default=head)
                    on_progress(Progress(position, head, total, time.monotonic() - began))
                if n == 0:
                    return total
        finally:
            self._complete = None
            self._log = None
            if rebuilding:
                gc.unfreeze()

    def _empty_tables(self) -> dict[Any, WrittenKeys]:
        """The tables of the projections that start from position 0 with nothing in them (a
        rebuild): while this runner alone fills them, it knows every key they hold, and
        looking up any other key needs no query. It keeps them for the tables whose rows are
        looked up before they are written (running totals, business keys): those of a table
        whose first rows were written without a lookup are dropped then, since only the
        keys never written save queries, and they would cost memory for every row."""
        positions = self.positions()
        # (not those filled in SQL: their rows are written where this runner does not see)
        shared = self._log
        fresh = [
            p
            for p in self.active
            if positions[p.name] == 0 and not (shared is not None and p.fills(shared))
        ]
        if not fresh:
            return {}
        with self.reads.writer.connect() as conn:
            return {
                table: WrittenKeys()
                for p in fresh
                for table in p.metadata.tables.values()
                if table.primary_key.columns
                and conn.execute(select(literal(1)).select_from(table).limit(1)).first() is None
            }

    # -- live following --------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        recorder = self.business.recorder
        if self.store_url and isinstance(recorder, PostgresApplicationRecorder):
            self._listener = Listener(self.store_url, recorder.channel_name, self.wake)
            self._listener.start()
        self._thread = threading.Thread(target=self._follow, name="tekil-projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _follow(self) -> None:
        idle = self.poll_interval if self._listener is None else 1.0
        while not self._stop.is_set():
            try:
                n = self.step()
            except Exception:
                log.exception("projection runner failed; retrying")
                self._positions = None
                self._stop.wait(1.0)
                continue
            if n < self.batch_size:
                self._wake.wait(timeout=idle)
                self._wake.clear()


# Rebuilt in a second process when `rebuild` is given two jobs, chosen so that the two finish
# about together at a million events: the audit trail (every event of the log) and the ledger
# (the costliest of the others); and where the database makes the audit trail (decision 0016,
# a third of its cost in Python on SQLite, its work moved to the server on PostgreSQL) also
# the stock and the activities, whose events no read model of the first process handles (so
# none is decoded twice). A 1M history, each half alone on SQLite: 99 and 70 s with the audit
# trail and the ledger apart, 78 and 74 s with all four; `rebuild --all` in turns 116-129 ->
# 81-110 s. On PostgreSQL with the audit trail in SQL: 82-95 s with all four, 103-109 s with
# two; 99-116 s before, the audit trail in Python (docs/benchmarks.md sections 11 and 12).
SECOND: tuple[str, ...] = ("audit", "ledger")
SECOND_BESIDE_SQL: tuple[str, ...] = ("stock", "activities")


def rebuild(
    business: Business,
    reads: ReadStore,
    projections: Sequence[Projection],
    *,
    batch_size: int = REBUILD_BATCH,
    on_progress: Callable[[Progress], None] | None = None,
    jobs: int = 1,
    store_url: str | None = None,
) -> int:
    """Drop `projections` and rebuild them from position 0; returns the positions processed.
    Their tables are filled without their secondary indexes, which are then built from the
    rows at once: cheaper than keeping them up to date row by row (an audit trail of random
    ids in five indexes, a row per event).

    With `jobs` 2 and the store's URL, the read models of `SECOND` (and `SECOND_BESIDE_SQL`
    where the audit trail is made in SQL) are rebuilt in a second process at the same time:
    a rebuild is CPU-bound, and the two write tables of their own (on SQLite each batch holds
    the database's write lock only while it writes, `Runner._reading`, so they share it with
    little waiting; PostgreSQL locks rows).
    `on_progress` follows the first process."""
    _exit_without_collecting()
    apart = SECOND + (SECOND_BESIDE_SQL if _audit_in_sql(business, reads, projections) else ())
    second = [p for p in projections if p.name in apart]
    first = [p for p in projections if p.name not in apart]
    parallel = jobs >= 2 and store_url is not None and bool(second) and bool(first)
    if not parallel:
        for projection in projections:
            reads.reset(projection, indexes=False)
        try:
            return Runner(business, reads, projections, batch_size=batch_size).catch_up(
                on_progress=on_progress
            )
        finally:
            reads.create_indexes(projections)
    assert store_url is not None
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no shared connections
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        # The second process starts at once: it imports the read models, then drops and
        # recreates its own tables (the audit trail's, the slowest to drop: a row per event
        # and five indexes) while this one rebuilds the others; each indexes its own tables.
        other = pool.submit(
            _rebuild_apart, store_url, reads.url, [p.name for p in second], batch_size
        )
        for projection in first:
            reads.reset(projection, indexes=False)
        try:
            mine = Runner(business, reads, first, batch_size=batch_size).catch_up(
                on_progress=on_progress
            )
        finally:
            reads.create_indexes(first)
        try:
            return max(mine, other.result())
        finally:  # (made by the second process already, unless it failed before)
            reads.create_indexes(second)


def _audit_in_sql(business: Business, reads: ReadStore, projections: Sequence[Projection]) -> bool:
    """Whether a catch-up of `projections` has the database make the audit trail
    (Projection.fills): where the read models share the store's database."""
    log = shared_log(business, reads.writer)
    return log is not None and any(p.name == "audit" and p.fills(log) for p in projections)


def _exit_without_collecting() -> None:
    """When this process exits, the cyclic garbage collector is not run over what is still
    alive (`gc.freeze` at exit): a rebuild leaves many objects in the caches of the read models
    and the libraries, and walking them cost each process 0.2 s of a 100k-event rebuild after
    its work was done (the second one's, waited for by the first). Exiting frees them all."""
    global _freezing_at_exit
    if not _freezing_at_exit:
        atexit.register(gc.freeze)
        _freezing_at_exit = True


_freezing_at_exit = False


def _rebuild_apart(store_url: str, reads_url: str, names: list[str], batch_size: int) -> int:
    """The read models `names` dropped and rebuilt by a process of their own."""
    from projections.registry import all_projections  # (it imports every read model)

    _exit_without_collecting()

    business = open_business(Settings(database_url=store_url))
    reads = ReadStore(reads_url, [p for p in all_projections() if p.name in names])
    try:
        for projection in reads.projections.values():
            reads.reset(projection, indexes=False)
        done = Runner(business, reads, batch_size=batch_size).catch_up()
        reads.create_indexes()  # here, while the first process may still be rebuilding
        return done
    finally:
        reads.dispose()
        business.close()
