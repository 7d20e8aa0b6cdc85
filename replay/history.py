"""Where a figure came from: the history of one document (every event, who, when, why) and
the trail of who did what across the business, from the audit read model and the store."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from domain.app import Business
from domain.errors import NotFound
from projections.engine import Projection

_HIDDEN = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}


def plain(value: Any) -> Any:
    """An event's data as JSON: ids, amounts and dates as strings."""
    if isinstance(value, UUID | Decimal | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    return value


def resolve(conn: Connection, audit: Projection, key: str) -> list[tuple[UUID, str]]:
    """The aggregates a key names: an id, a document number, a SKU, an e-mail or a tax
    number."""
    text = key.strip()
    try:
        return [(UUID(text), "id")]
    except ValueError:
        pass
    keys = audit["keys"]
    candidates = [text.upper(), f"sku:{text.upper()}", f"email:{text.lower()}", f"tax:{text}"]
    rows = conn.execute(
        select(keys.c.aggregate_id, keys.c.kind, keys.c.key).where(keys.c.key.in_(candidates))
    ).all()
    if not rows:
        raise NotFound("document, SKU, e-mail or tax number", text)
    return sorted({(r.aggregate_id, r.kind) for r in rows}, key=lambda r: str(r[0]))


def _row(r: Any) -> dict[str, Any]:
    return {
        "position": r.position,
        "recorded_at": r.recorded_at.isoformat(),
        "actor": r.actor,
        "event": r.event_type,
        "aggregate_id": str(r.originator_id),
        "version": r.originator_version,
        "command_id": r.command_id,
        "correlation_id": r.correlation_id,
        "causation_id": r.causation_id,
    }


def history(business: Business, conn: Connection, audit: Projection, key: str) -> dict[str, Any]:
    """Every event of the aggregates `key` names, in order, with its data, and what else the
    same command recorded (the journal entry of an invoice, the stock it moved...); then the
    later events elsewhere that name it (the payment that settled an invoice...)."""
    found = resolve(conn, audit, key)
    events = audit["events"]
    rows = conn.execute(
        select(events)
        .where(events.c.originator_id.in_([a for a, _ in found]))
        .order_by(events.c.position)
    ).all()
    if not rows:
        raise NotFound("aggregate", key)
    stored = {}
    for aggregate_id, _ in found:
        for event in business.events.get(aggregate_id):
            stored[(aggregate_id, event.originator_version)] = event
    commands = {r.command_id for r in rows}
    siblings: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(
        select(events).where(events.c.command_id.in_(commands)).order_by(events.c.position)
    ).all():
        siblings.setdefault(r.command_id, []).append(_row(r))
    out = []
    for r in rows:
        event = stored.get((r.originator_id, r.originator_version))
        data = {k: plain(v) for k, v in vars(event).items() if k not in _HIDDEN} if event else {}
        item = _row(r)
        item["data"] = data
        item["recorded_with"] = [
            s for s in siblings.get(r.command_id, []) if s["position"] != r.position
        ]
        out.append(item)
    refs = audit["refs"]
    referenced_by = conn.execute(
        select(events)
        .join(refs, refs.c.position == events.c.position)
        .where(refs.c.ref_id.in_([a for a, _ in found]))
        .where(events.c.originator_id.not_in([a for a, _ in found]))
        .where(events.c.command_id.not_in(commands))
        .order_by(events.c.position)
        .limit(1000)
    ).all()
    return {
        "key": key,
        "aggregates": [{"id": str(a), "found_by": kind} for a, kind in found],
        "events": out,
        "referenced_by": [_row(r) for r in referenced_by],
    }


def trail(
    conn: Connection,
    audit: Projection,
    *,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Who did what, when, across the whole business (newest last)."""
    events = audit["events"]
    query = select(events).order_by(events.c.position)
    if actor:
        query = query.where(events.c.actor == actor)
    if since:
        query = query.where(events.c.recorded_at >= since)
    if until:
        query = query.where(events.c.recorded_at <= until)
    if event_type:
        # "Invoice.Issued", or "Issued" for every kind of document issued.
        column = events.c.event_type
        query = query.where(
            column == event_type if "." in event_type else column.like(f"%.{event_type}")
        )
    rows = conn.execute(query.limit(limit).offset(offset)).all()
    return {"events": [_row(r) for r in rows], "limit": limit, "offset": offset}
