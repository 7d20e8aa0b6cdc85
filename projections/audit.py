"""The audit trail: one row per event (who, when, which command, what caused it) and an
index from business keys (document numbers, SKUs, e-mails, tax numbers) to the aggregates
they name — what `tekil audit history` and `trail` look things up in."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Column, Integer, String, Uuid

import domain.app  # noqa: F401 - every bounded context's events must be known here
from domain.base import Entity
from domain.crm.leads import Lead
from domain.crm.parties import Party
from domain.inventory.products import Product
from domain.numbering import NumberSeries
from projections.engine import Batch, Projection
from projections.types import UtcDateTime


def every_event_class() -> tuple[type, ...]:
    """The event classes of every aggregate in the domain (as the aggregates hold them: the
    library redefines nested event classes on each aggregate class)."""
    found: list[type] = []
    aggregates = list(Entity.__subclasses__())
    while aggregates:
        aggregate = aggregates.pop()
        aggregates.extend(aggregate.__subclasses__())
        for name, value in vars(aggregate).items():
            if (
                isinstance(value, type)
                and issubclass(value, aggregate.Event)
                and name not in ("Event", "Created", "Snapshot")
            ):
                found.append(value)
    return tuple(sorted(found, key=lambda c: (c.__module__, c.__qualname__)))


class Audit(Projection):
    name = "audit"
    version = 1
    handles = every_event_class()

    def define_tables(self) -> None:
        self.table(
            "events",
            Column("position", Integer, primary_key=True, autoincrement=False),
            Column("originator_id", Uuid, nullable=False, index=True),
            Column("originator_version", Integer, nullable=False),
            Column("event_type", String(80), nullable=False, index=True),
            Column("recorded_at", UtcDateTime, nullable=False, index=True),
            Column("actor", String(100), nullable=False, index=True),
            Column("command_id", String(200), nullable=False, index=True),
            Column("correlation_id", String(200), nullable=False),
            Column("causation_id", String(200), nullable=False),
        )
        self.table(
            "refs",
            Column("ref_id", Uuid, primary_key=True),
            Column("position", Integer, primary_key=True, autoincrement=False),
        )
        self.table(
            "keys",
            Column("key", String(260), primary_key=True),
            Column("aggregate_id", Uuid, primary_key=True),
            Column("kind", String(40), nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        meta = getattr(event, "meta", None) or {}
        batch.append(
            self["events"],
            position=position,
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            event_type=type(event).__qualname__,
            recorded_at=event.timestamp,
            actor=meta.get("actor", "unknown"),
            command_id=meta.get("command_id", ""),
            correlation_id=meta.get("correlation_id", ""),
            causation_id=meta.get("causation_id", ""),
        )
        for ref in _references(event):
            batch.append(self["refs"], ref_id=ref, position=position)
        for key, aggregate_id, kind in _keys(event):
            if batch.get(self["keys"], (key, aggregate_id)) is None:
                batch.insert(self["keys"], key=key, aggregate_id=aggregate_id, kind=kind)


_SKIP = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}


def _references(event: Any) -> set[UUID]:
    """The ids of other aggregates an event names (the invoice a payment settles, the order an
    invoice bills, the source of a journal entry...)."""
    found: set[UUID] = set()

    def walk(value: Any) -> None:
        if isinstance(value, UUID):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for name, value in vars(event).items():
        if name not in _SKIP:
            walk(value)
    found.discard(event.originator_id)
    return found


def _keys(event: Any) -> list[tuple[str, Any, str]]:
    """The business keys an event gives its aggregate (or, for a number, the document)."""
    match event:
        case NumberSeries.NumberIssued():
            return [(event.number, event.document_id, "document")]
        case Product.Defined():
            return [(f"sku:{event.sku}", event.originator_id, "product")]
        case Lead.Captured() if event.email:
            return [(f"email:{event.email}", event.originator_id, "lead")]
        case Party.Registered():
            keys = []
            if event.email:
                keys.append((f"email:{event.email}", event.originator_id, "party"))
            if event.tax_number:
                keys.append((f"tax:{event.tax_number}", event.originator_id, "party"))
            return keys
    return []
