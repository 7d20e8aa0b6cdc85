"""A Business for generating big histories fast: commands run through the domain exactly as
they always do, but their events are written to the store many commands at a time.

Generating a million events one command per transaction is dominated by what a real
deployment does once per command anyway (a transaction, an fsync, the library's write path);
none of it changes what is recorded. Here each command is decided as usual (loading its
aggregates, checking its rules, recording its metadata), and its events are *encoded at once*
— the very bytes a per-command save would store — then inserted with other commands' events
in one transaction (`flush`). What the store ends up holding is what the same commands run one
by one would have recorded, in the same order, with contiguous positions, and with the
snapshots a save takes (a number series' every 500 numbers): only the transaction boundaries
(and so the timestamps' spacing) differ.

Only valid while this process is the only writer of the store (it keeps every aggregate it
saved in memory, and knows that an id it never saved does not exist):

* a command loads its aggregates from memory (they are current: every save of this process
  went through here), and an aggregate it never saw is absent;
* a command that fails leaves the aggregates it loaded half-changed: they are dropped from
  memory (as the application does with its own cache), and the next load of one of them
  first writes what is pending, then reads it back from the store;
* the position a command answers is known before the insert (SQLite allocates rowids one
  after the other, and only this process writes); `flush` checks it.

The business date (`today()`) can be set, so that a generated year has a calendar: quotes
expire, invoices fall due, payments come late. So can the clock that stamps the events
(`set_clock`): a generated year is then recorded as if it had happened day by day, and reports
by date, or `tekil audit as-of <day>`, see it unfold. The stamps only ever grow with the
positions, as a real store's do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import StoredEvent

from domain.app import Business
from domain.base import Entity
from domain.sqlitestore import TekilSQLiteRecorder


@dataclass(frozen=True)
class _Notification:
    id: int


@dataclass(frozen=True)
class _Recording:
    notification: _Notification


class AnotherWriter(RuntimeError):
    """Another process wrote to the store while this one was writing in batches."""


class _Memory:
    """Stands in for the application's repository (and its cache): every aggregate this
    process saved, as it is now."""

    def __init__(self, business: BatchedBusiness) -> None:
        self.business = business
        self.store = Repository(event_store=business.events)  # no cache: reads the store
        self.live: dict[UUID, Entity] = {}
        self.saved: set[UUID] = set()  # ids in the store (or pending): they exist
        self.cache = self  # what Core._forget_loaded evicts from
        self.fastforward = False
        self.deepcopy_from_cache = False
        self.reads = 0

    def get(self, aggregate_id: UUID, *, evict: bool = False, **kwargs: Any) -> Any:
        if evict:  # the cache's interface: drop a half-changed aggregate
            return self.live.pop(aggregate_id)
        if kwargs.get("version") is not None:
            self.business.flush()
            return self.store.get(aggregate_id, **kwargs)
        found = self.live.get(aggregate_id)
        if found is not None:
            return found
        if aggregate_id not in self.saved:
            raise AggregateNotFoundError(aggregate_id)
        # Dropped after a failed command: write what is pending, then read it back.
        self.business.flush()
        self.reads += 1
        found = self.store.get(aggregate_id)
        self.live[aggregate_id] = found
        return found

    def put(self, aggregate_id: UUID, aggregate: Any) -> None:
        if aggregate is not None:
            self.live[aggregate_id] = aggregate

    def __contains__(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.saved


class BatchedBusiness(Business):
    name = "Business"  # the same store (on PostgreSQL, its tables are named after it)

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._memory = _Memory(self)
        self._memory.saved.update(self._stored_ids())  # what others saved before (db init)
        self._repository = self._memory  # type: ignore[assignment]
        self._shared_cache = True  # a failed command drops what it loaded (Core)
        # The one writer of its store, in memory until it flushes: nothing to check at save.
        self._checked_at_save = False
        if isinstance(self.recorder, TekilSQLiteRecorder):
            self.recorder.in_write = None
        self._pending: list[StoredEvent] = []
        self._snapshots: list[StoredEvent] = []
        self._head = self.recorder.max_notification_id() or 0
        self._today: date | None = None
        self._clock: datetime | None = None
        self._tick = timedelta(0)
        self.flushes = 0

    def _stored_ids(self) -> set[UUID]:
        ids: set[UUID] = set()
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=10_000)
            ids.update(n.originator_id for n in page)
            if len(page) < 10_000:
                return ids
            start = page[-1].id + 1

    # -- the calendar -------------------------------------------------------------------------

    def set_today(self, day: date) -> None:
        self._today = day

    def today(self) -> date:
        return self._today if self._today is not None else super().today()

    def set_clock(self, start: datetime, tick: timedelta) -> None:
        """Stamp the events decided from now on from `start` (or just after the last stamp,
        if later), `tick` apart, instead of when they are decided."""
        if self._clock is not None:
            start = max(start, self._clock)
        self._clock, self._tick = start, max(tick, timedelta(microseconds=1))

    def _stamped(self, event: Any) -> Any:
        if self._clock is None:
            return event
        stamp, self._clock = self._clock, self._clock + self._tick
        return dataclasses.replace(event, timestamp=stamp)

    # -- saving -------------------------------------------------------------------------------

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError("BatchedBusiness.save takes aggregates only")
        first = self._head + len(self._pending) + 1
        for aggregate in objs:
            if aggregate is None:
                continue
            events = aggregate.collect_events()
            # Encoded now, as a save would: later commands may change what the event's
            # values refer to before they are written.
            self._pending.extend(self.mapper.to_stored_event(self._stamped(e)) for e in events)
            snapshot = self.snapshot_of(aggregate, events)
            if snapshot is not None:
                self._snapshots.append(self.mapper.to_stored_event(snapshot))
            self._memory.live[aggregate.id] = aggregate
            self._memory.saved.add(aggregate.id)
        last = self._head + len(self._pending)
        return [_Recording(_Notification(p)) for p in range(first, last + 1)]

    @property
    def pending(self) -> int:
        """How many events are decided and not yet written."""
        return len(self._pending)

    @property
    def head(self) -> int:
        """The position of the last event decided (written or pending)."""
        return self._head + len(self._pending)

    def flush(self) -> int:
        """Write the pending events in one transaction; returns how many."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        ids = self.recorder.insert_events(pending)
        expected = list(range(self._head + 1, self._head + len(pending) + 1))
        if ids is not None and list(ids) != expected:
            raise AnotherWriter(
                f"positions {ids[0]}..{ids[-1]} recorded, {expected[0]}..{expected[-1]} "
                "answered: another process wrote to the store"
            )
        self._head += len(pending)
        snapshots, self._snapshots = self._snapshots, []
        if snapshots and self.snapshots is not None:
            self.snapshots.recorder.insert_events(snapshots)
        self.flushes += 1
        return len(pending)
