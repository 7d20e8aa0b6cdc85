"""The command machinery every bounded context's commands run on.

A command method loads what it needs, decides, and returns `self._save(primary, *others)`:
one `save`, so all of its events are recorded or none. `@command` wraps it in a bounded
retry on version conflicts (the whole command is re-decided from fresh state, which is what
makes the retry safe) and answers repeats of an idempotency key with the first answer.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import EventStore, IntegrityError
from eventsourcing.sqlite import SQLiteApplicationRecorder

from domain import context
from domain.base import SNAPSHOTTED, Entity
from domain.billing.receivables import RECEIVABLES_SNAPSHOT_INTERVAL, ReceivableAccount
from domain.caching import CheckedRepository, CommandCache, Replaying, StaleCache, replay
from domain.commands import CommandRecord, command_record_id
from domain.errors import Conflict, DomainError, IdempotencyKeyReused, NotFound, VersionMismatch
from domain.inventory.stock import STOCK_SNAPSHOT_INTERVAL, StockItem
from domain.ledger.chart import CHARTS, Chart
from domain.numbering import SERIES_SNAPSHOT_INTERVAL, NumberSeries, series_id
from domain.pgstore import TekilPostgresRecorder, reads
from domain.sqlitestore import TekilSQLiteRecorder

# Enough for ten commands racing for one record (each loss is somebody's win, or one stale
# read from this process's cache).
MAX_ATTEMPTS = 12
# The longest wait before the second attempt (seconds); it doubles with each further one,
# up to MAX_RETRY_PAUSE.
RETRY_PAUSE = 0.005
MAX_RETRY_PAUSE = 0.1
# An aggregate that another process was found to have changed under a command of this one is
# brought up to date from the store before each use, for this many seconds after it last was.
CONTENDED_FOR = 10.0
# Contended records remembered at most; beyond, those whose time has passed are forgotten.
CONTENDED_LIMIT = 10_000

A = TypeVar("A", bound=Entity)
P = ParamSpec("P")
S = TypeVar("S", bound="Core")


@dataclass(frozen=True)
class Result:
    """What a command answers: the aggregate it acted on, its new version, and the position
    (notification id) of the last event it recorded. `replayed` marks the repeat of an
    idempotency key, whose position the caller looks up (see api/idempotency.py)."""

    id: UUID
    version: int
    position: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False


@dataclass
class Attempt:
    """What one attempt of a command loaded: the ids (to evict them from the cache if it
    fails), the version of each as stored when loaded (on a store that checks them at save:
    see `Core.save`), and whether any came from the cache. `before`: what the previous
    attempt read from the cache, if it lost a race (see `Core._load`)."""

    loaded: list[UUID] = field(default_factory=list)
    read: dict[UUID, int] = field(default_factory=dict)
    from_cache: bool = False
    before: dict[UUID, int] = field(default_factory=dict)


_attempt: ContextVar[Attempt | None] = ContextVar("tekil_attempt", default=None)


def command(method: Callable[Concatenate[S, P], Result]) -> Callable[Concatenate[S, P], Result]:
    @functools.wraps(method)
    def run(self: S, *args: P.args, **kwargs: P.kwargs) -> Result:
        return self.execute(lambda: method(self, *args, **kwargs))

    return run


def _ensure_snapshots_table(recorder: Any) -> None:
    """A file made before snapshots were kept gets their table; any other opening only reads
    the schema (creating takes the database's write lock, which a server may be holding).
    PostgreSQL gets the table from `tekil db init`."""
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (recorder.events_table_name,),
        )
        exists = cursor.fetchone() is not None
    if not exists:
        recorder.create_table()


class KnownSnapshots(EventStore[UUID]):
    """The snapshot store, asked only about the aggregates that have snapshots (number
    series, receivables, stock items: domain/base.py `SNAPSHOTTED`): any other has none, and
    a load need not spend a query (on PostgreSQL, a round trip) to learn it."""

    def get(self, originator_id: UUID, **kwargs: Any) -> Any:
        if originator_id not in SNAPSHOTTED:
            return iter(())
        return super().get(originator_id, **kwargs)


class Core(Application):
    """Loading, saving and the command loop, shared by every bounded context."""

    name = "Business"
    # A number series gains an event per document it numbers, a customer's receivables one
    # per invoice and payment, a stock item one per receipt, reservation and shipment, for
    # as long as the business runs: each is loaded from a snapshot taken every so many (the
    # others stay small: a document's events come to dozens). Decision 0010.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        NumberSeries: SERIES_SNAPSHOT_INTERVAL,
        ReceivableAccount: RECEIVABLES_SNAPSHOT_INTERVAL,
        StockItem: STOCK_SNAPSHOT_INTERVAL,
    }

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.chart: Chart = CHARTS[self.env.get("TEKIL_CHART") or "tdhp"]
        self.timezone = ZoneInfo(self.env.get("TEKIL_TIMEZONE") or "Europe/Istanbul")
        # With an aggregate cache that hands out its own objects (see domain/settings.py),
        # the commands of this process take turns — the store records one save at a time
        # anyway — and a command that fails drops what it loaded from the cache, so that no
        # half-made change survives it.
        repository = self.repository
        self._shared_cache = (
            repository.cache is not None
            and not repository.fastforward
            and not repository.deepcopy_from_cache
        )
        self._turn = threading.RLock() if self._shared_cache else contextlib.nullcontext()
        # On PostgreSQL the store checks, with each save, that what the command read is still
        # current (domain/pgstore.py): the cache is never asked whether it is.
        self._reads_checked = isinstance(self.recorder, TekilPostgresRecorder)
        # On SQLite (our recorder), what a command took from the cache is checked against
        # the store once, in its save's write transaction (or, if it records nothing, when
        # it ends): anybody else's events since, and it is decided again.
        self._checked_at_save = isinstance(self.repository, CheckedRepository)
        if isinstance(self.recorder, TekilSQLiteRecorder) and self._checked_at_save:
            self.recorder.in_write = self._check_in_write
        # Aggregates other processes keep changing (the number series, with several API
        # processes), and until when to bring them up to date before use: one read of their
        # new events, instead of a save refused, a pause and the command decided again.
        self._contended: dict[UUID, float] = {}
        if isinstance(self.recorder, SQLiteApplicationRecorder) and self.snapshots is not None:
            _ensure_snapshots_table(self.snapshots.recorder)

    def close(self) -> None:
        if isinstance(self.recorder, TekilSQLiteRecorder | TekilPostgresRecorder):
            self.recorder.close()  # the connection each keeps for writing
        super().close()

    def construct_snapshot_store(self) -> EventStore[UUID]:
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return KnownSnapshots(mapper=self.mapper, recorder=recorder)

    def construct_repository(self) -> Repository:
        """The cache (where settings ask for one that hands out its own objects) is kept
        right: on SQLite by asking the store whether anybody else wrote, in each command's
        save or before a load outside commands (CheckedRepository); on PostgreSQL by the
        store's check of each command's reads at save. A store that can
        do neither gets no cache."""
        repository = super().construct_repository()
        if repository.cache is None or repository.fastforward or repository.deepcopy_from_cache:
            return repository
        kept = {
            "event_store": self.events,
            "snapshot_store": self.snapshots,
            "cache_maxsize": repository.cache.maxsize,  # type: ignore[attr-defined]
            "fastforward": False,
            "deepcopy_from_cache": False,
        }
        if isinstance(self.recorder, TekilPostgresRecorder):
            return CommandCache(**kept, in_command=lambda: _attempt.get() is not None)
        if isinstance(self.recorder, TekilSQLiteRecorder):
            return CheckedRepository(
                **kept,
                head=self.recorder.head,
                others_wrote=self.recorder.others_wrote,
                in_command=lambda: _attempt.get() is not None,
            )
        return Replaying(event_store=self.events, snapshot_store=self.snapshots)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's save, for aggregates only: its runtime Protocol checks on every
        object cost more than the rest of collecting the events.

        Within a command, the aggregates it read and does not change go with the save, at the
        versions it read them: the store records nothing if any has changed since
        (PostgreSQL, domain/pgstore.py), and the command is decided again."""
        attempt = _attempt.get()
        token = None
        if attempt is not None and attempt.read:
            saved = {o.id for o in objs if o is not None}
            token = reads.set([(i, v) for i, v in attempt.read.items() if i not in saved])
        try:
            if kwargs or not all(o is None or isinstance(o, Entity) for o in objs):
                recordings = super().save(*objs, **kwargs)
            else:
                processing = ProcessingEvent[UUID]()
                for aggregate in objs:
                    if aggregate is not None:
                        processing.events.extend(aggregate.collect_events())
                        processing.aggregates[aggregate.id] = aggregate
                recordings = self._record(processing)
                self._take_snapshots(processing)
        finally:
            if token is not None:
                reads.reset(token)
        if recordings and isinstance(self.repository, CheckedRepository):
            self.repository.saved(recordings[0].notification.id, recordings[-1].notification.id)
        return recordings

    def _take_snapshots(self, processing: ProcessingEvent[UUID]) -> None:
        """A snapshot where the library takes one (a save with an event at a multiple of the
        aggregate's interval), of the aggregate as saved: the library loads it again from
        the store (for a number series, up to 500 events) to take it."""
        for aggregate in processing.aggregates.values():
            snapshot = self.snapshot_of(cast(Entity, aggregate), processing.events)
            if snapshot is not None:
                self.snapshots.put([snapshot])  # type: ignore[union-attr]

    def snapshot_of(self, aggregate: Entity, events: list[Any]) -> Any:
        """The snapshot to take of `aggregate` now that `events` are saved, or None."""
        interval = self.snapshotting_intervals.get(type(aggregate))
        if interval is None or self.snapshots is None:
            return None
        if not any(
            e.originator_id == aggregate.id and e.originator_version % interval == 0 for e in events
        ):
            return None
        taker = getattr(type(aggregate), "Snapshot", None) or self.snapshot_class or Snapshot
        return taker.take(aggregate)

    def today(self) -> date:
        """The business date now, where the business is (decided in commands, never in apply)."""
        return datetime.now(self.timezone).date()

    def execute(self, decide: Callable[[], Result]) -> Result:
        ctx = context.current()
        lost = False
        before: dict[UUID, int] = {}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if lost:
                # Lost a race for the same records: wait a random moment (outside this
                # process's turn) before deciding again, so that the losers of one race do
                # not all meet again in the next (tests/reliability/test_concurrency.py).
                pause = min(RETRY_PAUSE * 2 ** (attempt - 2), MAX_RETRY_PAUSE)
                time.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not secrecy
                lost = False
            with self._turn:
                if ctx.idempotency_key:
                    earlier = self._earlier_answer(ctx)
                    if earlier is not None:
                        return earlier
                this = Attempt(before=before)
                token = _attempt.set(this)
                try:
                    return decide()
                except IntegrityError as error:
                    # Another command (perhaps in another process) saved one of our aggregates,
                    # changed one we read, or claimed the same unique key first. Re-deciding
                    # from fresh state is safe: nothing of ours was saved.
                    self._forget(this)
                    if attempt == MAX_ATTEMPTS:
                        raise Conflict(
                            "the same records were changed concurrently; try again"
                        ) from None
                    lost = not isinstance(error, StaleCache)  # (no race to stand back from)
                    before = this.read if this.from_cache else {}
                except DomainError:
                    self._forget(this)
                    # Refused on what this process remembered (PostgreSQL: others may have
                    # changed it since): refused only if the store's own state says so too.
                    if not (
                        this.from_cache
                        and attempt < MAX_ATTEMPTS
                        and (self._reads_checked or not self._still_current())
                    ):
                        raise
                except BaseException:
                    self._forget(this)
                    raise
                finally:
                    _attempt.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_in_write(self, count: Callable[[], int], head: Callable[[], int | None]) -> None:
        """In a save's write transaction (domain/sqlitestore.py): within a command, was what
        it took from the cache still the store's state? StaleCache if not."""
        attempt = _attempt.get()
        if attempt is not None:
            repository = self.repository
            assert isinstance(repository, CheckedRepository)
            repository.check_in_write(count(), head, attempt.from_cache)

    def _still_current(self) -> bool:
        """For a command that refused or recorded nothing: was what it took from the cache
        the store's state? (Always, where loads check the store first.)"""
        if not self._checked_at_save:
            return True
        repository = self.repository
        assert isinstance(repository, CheckedRepository)
        return repository.still_current()

    def _forget(self, attempt: Attempt) -> None:
        if self._shared_cache:
            cache = self.repository.cache
            assert cache is not None
            for aggregate_id in attempt.loaded:
                with contextlib.suppress(KeyError):
                    cache.get(aggregate_id, evict=True)

    def _earlier_answer(self, ctx: context.CommandContext) -> Result | None:
        assert ctx.idempotency_key is not None
        record_id = command_record_id(ctx.actor, ctx.idempotency_key)
        try:
            record: CommandRecord = self.repository.get(record_id)
        except AggregateNotFoundError:
            return None
        if record.fingerprint != ctx.fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {ctx.idempotency_key!r} was already used for another request"
            )
        return Result(
            id=record.result_id,
            version=record.result_version,
            extra=dict(record.result_extra),
            replayed=True,
        )

    def _load(self, aggregate_id: UUID) -> Entity:
        """An aggregate for the command being decided (AggregateNotFoundError if none)."""
        attempt = _attempt.get()
        if attempt is None:  # outside a command
            aggregate: Entity = self.repository.get(aggregate_id)
            return aggregate
        attempt.loaded.append(aggregate_id)
        cache = self.repository.cache
        cached = cache is not None and aggregate_id in cache.cache  # type: ignore[attr-defined]
        if (self._reads_checked or self._checked_at_save) and not attempt.from_cache:
            attempt.from_cache = cached
        aggregate = self.repository.get(aggregate_id)
        if self._reads_checked:  # only a store that checks them needs to know
            if cached and aggregate_id in self._contended:
                aggregate = self._fast_forward(aggregate)
            read = aggregate.version - len(aggregate.pending_events)
            attempt.read.setdefault(aggregate.id, read)
            if read > attempt.before.get(aggregate_id, read):
                # The previous attempt lost its race on this one: another process changed it.
                self._contend(aggregate_id)
        return aggregate

    def _fast_forward(self, aggregate: Entity) -> Entity:
        """A contended aggregate (from the cache) with the events others stored since."""
        if self._contended[aggregate.id] < time.monotonic():
            del self._contended[aggregate.id]
            return aggregate
        if aggregate.pending_events:  # changed by this command already: it knows it
            return aggregate
        newer = list(self.events.get(aggregate.id, gt=aggregate.version))
        if newer:
            moved = replay(aggregate, newer)
            assert moved is not None  # an aggregate's later events do not delete it
            aggregate = moved
            self.repository.cache.put(aggregate.id, aggregate)  # type: ignore[union-attr]
            self._contend(aggregate.id)
        return aggregate

    def _contend(self, aggregate_id: UUID) -> None:
        now = time.monotonic()
        if len(self._contended) >= CONTENDED_LIMIT:  # forget those no longer contended
            self._contended = {i: t for i, t in self._contended.items() if t >= now}
        self._contended[aggregate_id] = now + CONTENDED_FOR

    def _get(self, cls: type[A], aggregate_id: UUID, kind: str | None = None) -> A:
        try:
            aggregate = self._load(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(kind or cls.__name__.lower(), aggregate_id) from None
        if not isinstance(aggregate, cls):
            raise NotFound(kind or cls.__name__.lower(), aggregate_id)
        return aggregate

    def _find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate = self._load(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _series(self, code: str, year: int) -> NumberSeries:
        """The number series for `code` in `year`, to be saved with the document it numbers."""
        return self._find(NumberSeries, series_id(code, year)) or NumberSeries.start(code, year)

    def _save(self, primary: Entity, *others: Entity | None, **extra: Any) -> Result:
        ctx = context.current()
        if ctx.expected_version is not None:
            before = primary.version - len(primary.pending_events)
            if before != ctx.expected_version:
                raise VersionMismatch(ctx.expected_version, before)
        objs: list[Entity | None] = [primary, *others]
        if not any(o is not None and o.pending_events for o in objs):
            # nothing changed: nothing to record, not even the command (if that was decided
            # on the store's state: else decided again)
            attempt = _attempt.get()
            if attempt is not None and attempt.from_cache and not self._still_current():
                raise StaleCache("another process recorded events since this one last read them")
            return Result(id=primary.id, version=primary.version, extra=extra)
        if ctx.idempotency_key:
            objs.append(
                CommandRecord.record(
                    actor=ctx.actor,
                    key=ctx.idempotency_key,
                    fingerprint=ctx.fingerprint,
                    result_id=primary.id,
                    result_version=primary.version,
                    result_extra=extra,
                )
            )
        recordings = self.save(*objs)
        return Result(
            id=primary.id,
            version=primary.version,
            position=recordings[-1].notification.id if recordings else None,
            extra=extra,
        )
