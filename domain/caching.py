"""The aggregate caches: aggregates stay in memory between commands. On SQLite the store
tells when anybody else wrote (then the cache is emptied), in each command's save or before
a load outside commands; on PostgreSQL the store checks each command's reads at save. See
docs/decisions/0001-one-store-and-commands.md, 0006 and 0009."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing.application import AggregateNotFoundError, LRUCache, Repository
from eventsourcing.persistence import IntegrityError

from domain.base import SNAPSHOTTED


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its runtime Protocol check of every event
    (`isinstance` against a Protocol: a quarter of loading an aggregate of a dozen events)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class Replaying(Repository):
    """A repository that rebuilds aggregates with `replay`; one that has snapshots (see
    domain/base.py `SNAPSHOTTED`) from its latest events first.

    The library asks the snapshot store first, then for the events after the snapshot: two
    queries (on PostgreSQL, two round trips) for every load, though most such aggregates —
    a customer's receivables, most stock items — have fewer events than the snapshot
    interval, and so no snapshot. Here the load asks for the aggregate's latest `every`
    events: fewer, and starting at its first, are all of it; else the latest snapshot is
    within them (snapshots are taken every `every` events), and only then is it asked for."""

    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("projector_func", replay)
        return super().get(aggregate_id, **kwargs)

    def _reconstruct_aggregate(self, aggregate_id: Any, version: Any, projector_func: Any) -> Any:
        every = SNAPSHOTTED.get(aggregate_id)
        if every is None or version is not None or self.snapshot_store is None:
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        recent = self.event_store.recorder.select_events(aggregate_id, desc=True, limit=every)
        if not recent:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} not found.")
        oldest = recent[-1].originator_version
        after = 0
        found: list[Any] = []
        if oldest > 1:
            found = list(self.snapshot_store.get(aggregate_id, desc=True, limit=1))
            after = found[0].originator_version if found else 0
            if after < oldest - 1:  # no snapshot as recent as that (one lost in a crash)
                return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        to_event = self.event_store.mapper.to_domain_event
        events = [to_event(s) for s in reversed(recent) if s.originator_version > after]
        return projector_func(None, [*found, *events])


class StaleCache(IntegrityError):
    """Another process recorded events since this one last knew the store, and the command
    being saved took aggregates from the cache: nothing was recorded; decide again."""


class CheckedRepository(Replaying):
    """A repository whose cache hands out its own objects (no copy, no re-reading of the store)
    — and that knows when somebody else wrote: a write by anyone else empties the cache.

    Outside a command, each load first checks the store's head. Inside one (`in_command`),
    loads take the cache as it is, and the check comes once, at the end: in the save's own
    write transaction (`check_in_write`, called by domain/sqlitestore.py), where nobody else
    can write until the commit, or — for a command that refuses or has nothing to record —
    by `still_current`. A command that took a stale aggregate from the cache is decided again
    from the store (domain/core.py), as on PostgreSQL (decision 0006)."""

    def __init__(
        self,
        *args: Any,
        head: Callable[[], int | None],
        others_wrote: Callable[[], int | None],
        in_command: Callable[[], bool],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._head = head
        self._seen: int | None = None
        # The store's count of commits by other connections when the head was last read
        # (domain/sqlitestore.py): while it stands still, nobody else has written, and the
        # head is where this process's own saves left it — no need to read it.
        self._others_wrote = others_wrote
        self._count: int | None = None
        self._in_command = in_command

    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        if self.cache is not None and kwargs.get("version") is None and not self._in_command():
            self._check()
        return super().get(aggregate_id, **kwargs)

    def _check(self) -> bool:
        """Empties the cache if anybody else recorded events since this process last knew
        the store; True if it was still current."""
        # The count is read before the head: a write that lands in between shows in the
        # head now, and in a changed count next time.
        count = self._others_wrote()
        if count is not None and count == self._count and self._seen is not None:
            return True
        return self._compare(self._head(), count)

    def _compare(self, head: int | None, count: int | None) -> bool:
        current = head == self._seen
        if not current:
            cache = self.cache
            assert isinstance(cache, LRUCache)  # (checked only where there is one)
            self.cache = LRUCache(maxsize=cache.maxsize)
            self._seen = head
        self._count = count
        return current

    def still_current(self) -> bool:
        """For a command that refused, or had nothing to record, on what it took from the
        cache: was that the store's state? (If not, the cache is emptied.)"""
        return self._check()

    def check_in_write(self, count: int, head: Callable[[], int | None], from_cache: bool) -> None:
        """In the save's write transaction, on the writing connection: `count` is its data
        version now, `head` reads the events table's head. Raises StaleCache (the save is
        rolled back) if others recorded events since and the command took from the cache."""
        if count == self._count and self._seen is not None:
            return
        if not self._compare(head(), count) and from_cache:
            raise StaleCache("another process recorded events since this one last read them")

    def saved(self, first: int, last: int) -> None:
        """This process recorded positions first..last: the cache still knows the store, if
        nobody wrote in between."""
        self._seen = last if self._seen is not None and first == self._seen + 1 else None


class CommandCache(Replaying):
    """The aggregate cache of a store that checks each command's reads at save (PostgreSQL,
    domain/pgstore.py): what it remembers may be behind the store, which only a command's save
    can tell. So commands get aggregates from the cache, and every other read (a job, a
    report, a test) goes to the store."""

    def __init__(self, *args: Any, in_command: Callable[[], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_command = in_command
        self._store = Replaying(event_store=self.event_store, snapshot_store=self.snapshot_store)

    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        if self._in_command():
            return super().get(aggregate_id, **kwargs)
        return self._store.get(aggregate_id, **kwargs)
