"""The audit trail: one row per event (who, when, which command, what caused it) and an
index from business keys (document numbers, SKUs, e-mails, tax numbers) to the aggregates
they name — what `tekil audit history` and `trail` look things up in."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Index, Integer, String, Uuid

import domain.app  # noqa: F401 - every bounded context's events must be known here
from domain.base import Entity
from domain.crm.leads import Lead
from domain.crm.parties import Party
from domain.ids import uuid_from_hex
from domain.inventory.products import Product
from domain.numbering import NumberSeries
from projections.audit_sql import AuditOnPostgres, AuditSQL
from projections.decoding import event_class
from projections.engine import STORED_ID, Batch, Projection, RawEvent
from projections.eventlog import SharedLog
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
    version = 2
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
        # Keyed by position first, so that rows go in at the end of the table as the log is
        # read; looked up by the aggregate referred to through an index, which a rebuild
        # makes from the rows at once. (Keyed by the id, a rebuild inserted a row per
        # reference at a random place: each batch rewrote most of a key index of 60 MB at
        # a million events.)
        refs = self.table(
            "refs",
            Column("position", Integer, primary_key=True, autoincrement=False),
            Column("ref_id", Uuid, primary_key=True),
        )
        Index(f"{refs.name}_ref", refs.c.ref_id, refs.c.position)
        self.table(
            "keys",
            Column("key", String(260), primary_key=True),
            Column("aggregate_id", Uuid, primary_key=True),
            Column("kind", String(40), nullable=False),
        )

    # The statements making the rows in SQL, per database (made when first asked for).
    _sql: dict[str, AuditSQL | AuditOnPostgres] | None = None

    # Every event, so it takes them as stored (see RawEvent): what it copies needs no
    # decoding, and the rows are exactly those the decoded event gives (`_raw_row`).
    raw = True

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        if isinstance(event, RawEvent):
            if _raw_row(self, event, position, batch):
                return
            event = event.decoded()
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

    def fills(self, log: SharedLog) -> bool:
        # Every value the events may hold encoded is one `_raw_row` reads (see _SCALARS).
        return log.transcodings <= {"uuid_hex", *_SCALARS}

    def prepare(self, dbapi: Any, log: SharedLog, after: int, last: int) -> None:
        """The rows `_raw_row` makes, made by the database from the stored JSON (see
        audit_sql.py): on SQLite, a million-event audit trail, half of the work of a rebuild
        in Python, in 18 s instead of 39."""
        self._statements(log).make(dbapi, log.table, after, last)

    def fill(self, conn: Connection) -> list[int]:
        assert self._sql is not None
        return self._sql[conn.dialect.name].write(conn)

    def _statements(self, log: SharedLog) -> AuditSQL | AuditOnPostgres:
        if self._sql is None:
            self._sql = {}
        found = self._sql.get(log.dialect)
        if found is None:
            classes = {topic: event_class(topic) for topic in sorted(self.topics)}
            kinds: dict[str, list[str]] = {}
            for topic, cls in classes.items():
                kind = _key_kind(cls)
                if kind is not None:
                    kinds.setdefault(kind, []).append(topic)
            tables = {name: table.name for name, table in self.tables.items()}
            versioned = {
                t: v for t, c in classes.items() if (v := getattr(c, "class_version", 1)) != 1
            }
            found = self._sql[log.dialect] = (
                AuditOnPostgres(tables, list(classes), versioned, kinds)
                if log.dialect == "postgresql"
                else AuditSQL(tables, list(classes), versioned, kinds, _ID.findall)
            )
        return found


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


# -- the same rows from events as stored -------------------------------------------------------

# Transcodings (eventsourcing's and domain/app.py's) whose values hold no ids. Another one
# might (a value object with ids inside): an event using it is decoded instead.
_SCALARS = frozenset({"decimal_str", "datetime_iso", "date_iso"})


class _Decode(Exception):
    """This stored event must be decoded to be read exactly as its domain class reads it."""


# Every id (`STORED_ID`), and the kind of every encoded value: a quote inside a text value is
# escaped, so neither pattern can match inside one.
_ID = re.compile(STORED_ID)
_TYPE = re.compile(rb'"_type_":"([^"\\]*)"')
_READABLE = frozenset({b"uuid_hex", *(name.encode() for name in _SCALARS)})


def _raw_references(stored: bytes, own: str) -> set[str]:
    """`_references`, on the stored bytes: the hex of every id the event holds (the skipped
    fields hold none: a time, text metadata, a topic)."""
    if not _READABLE.issuperset(_TYPE.findall(stored)):
        raise _Decode
    found = set(map(bytes.decode, _ID.findall(stored)))
    found.discard(own)
    return found


_ids: dict[str, UUID] = {}


def _uuid(hex_digits: str) -> UUID:
    """An id from its hex digits, made once while it keeps coming back (an order, a customer,
    a product are named by event after event)."""
    found = _ids.get(hex_digits)
    if found is None:
        if len(_ids) >= 100_000:
            _ids.clear()
        found = _ids[hex_digits] = uuid_from_hex(hex_digits)
    return found


# Which of the four kinds of business key an event class gives (see `_keys`), by class.
_KEY_KINDS: dict[type, str | None] = {}


def _key_kind(cls: type) -> str | None:
    kind = _KEY_KINDS.get(cls, "")
    if kind == "":
        kind = _KEY_KINDS[cls] = next(
            (
                name
                for base, name in (
                    (NumberSeries.NumberIssued, "number"),
                    (Product.Defined, "sku"),
                    (Lead.Captured, "lead"),
                    (Party.Registered, "party"),
                )
                if issubclass(cls, base)
            ),
            None,
        )
    return kind


def _raw_keys(kind: str, state: dict[str, Any], originator_id: UUID) -> list[tuple[str, Any, str]]:
    """`_keys`, on the stored JSON."""
    if kind == "number":
        document = state["document_id"]
        if not (isinstance(document, dict) and document.get("_type_") == "uuid_hex"):
            raise _Decode
        return [(state["number"], UUID(document["_data_"]), "document")]
    if kind == "sku":
        return [(f"sku:{state['sku']}", originator_id, "product")]
    if kind == "lead":
        email = state.get("email")
        return [(f"email:{email}", originator_id, "lead")] if email else []
    keys = []
    if state.get("email"):
        keys.append((f"email:{state['email']}", originator_id, "party"))
    if state.get("tax_number"):
        keys.append((f"tax:{state['tax_number']}", originator_id, "party"))
    return keys


def _raw_row(audit: Audit, event: RawEvent, position: int, batch: Batch) -> bool:
    """Write the rows of a stored event without decoding it; False (nothing written) when it
    must be decoded: an older version of its class, or a value this cannot read."""
    state = event.state
    cls = event.cls
    if state.get("class_version", 1) != getattr(cls, "class_version", 1):
        return False  # stored by an older version of its class: only decoding upcasts it
    notification = event.notification
    originator_id = notification.originator_id
    try:
        stamp = state["timestamp"]
        if not (isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso"):
            return False
        recorded_at = datetime.fromisoformat(stamp["_data_"])
        refs = _raw_references(bytes(notification.state), originator_id.hex)
        kind = _key_kind(cls)
        keys = _raw_keys(kind, state, originator_id) if kind is not None else ()
    except (_Decode, KeyError, TypeError, ValueError):
        return False
    meta = state.get("meta") or {}
    tables = audit.tables
    batch.append(
        tables["events"],
        position=position,
        originator_id=originator_id,
        originator_version=int(notification.originator_version),
        event_type=cls.__qualname__,
        recorded_at=recorded_at,
        actor=meta.get("actor", "unknown"),
        command_id=meta.get("command_id", ""),
        correlation_id=meta.get("correlation_id", ""),
        causation_id=meta.get("causation_id", ""),
    )
    if refs:
        table = tables["refs"]
        for ref in refs:
            batch.append(table, ref_id=_uuid(ref), position=position)
    if keys:
        table = tables["keys"]
        for key, aggregate_id, kind in keys:
            if batch.get(table, (key, aggregate_id)) is None:
                batch.insert(table, key=key, aggregate_id=aggregate_id, kind=kind)
    return True
