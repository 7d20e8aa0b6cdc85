"""The base of every aggregate: each event it records carries the acting command's metadata."""

from __future__ import annotations

import uuid
from dataclasses import fields, replace
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot

from domain import context

# Namespace for ids derived from natural keys (SKU, tax number, document number, key ...).
TEKIL_NAMESPACE = UUID("3f1c5b2e-8f7a-4c1e-9b0d-7a6e2c4d9e10")


def natural_id(kind: str, key: str) -> UUID:
    """The id of the aggregate that owns a unique business key: same key, same id, race-free."""
    return uuid.uuid5(TEKIL_NAMESPACE, f"{kind}:{key}")


# Ids of the aggregates this process has named that gain events without end — a number
# series, a customer's receivables, a stock item — with how many events apart their
# snapshots are taken: only their loads look for a snapshot (domain/caching.py `Replaying`,
# domain/core.py `KnownSnapshots`), so no other load spends a query on it.
SNAPSHOTTED: dict[UUID, int] = {}


def snapshotted_id(kind: str, key: str, every: int) -> UUID:
    """`natural_id`, for an aggregate snapshotted every `every` events."""
    made = natural_id(kind, key)
    SNAPSHOTTED[made] = every
    return made


class SnapshotWithRows(Snapshot):
    """A snapshot of an aggregate whose state holds frozen dataclass values (FIFO layers, open
    items), which the store's JSON cannot: each attribute named in `rows` is kept as a list of
    rows (the values' fields in order) and made again on load. A dict keyed by one of the
    values' fields names that field (its keys are not kept twice)."""

    rows: ClassVar[dict[str, tuple[type[Any], str | None]]] = {}

    @classmethod
    def take(cls, aggregate: Any) -> Any:
        taken = super().take(aggregate)
        state = dict(taken.state)
        for name, (kind, _) in cls.rows.items():
            values = getattr(aggregate, name)
            if isinstance(values, dict):
                values = values.values()
            names = [f.name for f in fields(kind)]
            state[name] = [[getattr(v, n) for n in names] for v in values]
        return replace(taken, state=state)

    def mutate(self, _: None) -> Any:
        aggregate = super().mutate(None)
        for name, (kind, key) in self.rows.items():
            made = [kind(*row) for row in getattr(aggregate, name)]
            setattr(aggregate, name, {getattr(v, key): v for v in made} if key else made)
        return aggregate


class Entity(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, str]

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("meta", context.current().metadata())
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("meta", context.current().metadata())
        super().trigger_event(event_class, **kwargs)
